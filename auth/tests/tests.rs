//! Integration tests of entra-auth against a real HTTPS test authority.
//!
//! Everything is real: TLS, HTTP, RSA keys, a tonic server and client over a
//! socket. Helpers live in `util` so other crates can copy the pattern.

// Helpers are `pub` so they read like a library; the test crate exports nothing.
#![allow(unreachable_pub)]

mod util;

mod claims;
mod keys;
mod layer;

use std::time::Duration;

use entra_auth::{Config, Validator};

/// A validator for `config` whose keys are loaded (fails the test after 10 s).
pub async fn ready_validator(config: Config) -> Validator {
    let validator = Validator::new(config).expect("valid config");
    tokio::time::timeout(Duration::from_secs(10), validator.wait_ready())
        .await
        .expect("keys load within 10 s");
    validator
}
