//! Hostile key sets: a JWKS document as the authority would serve it, parsed
//! as the key store parses it; when it yields keys, a real token is checked
//! against them (odd `kty`/`n`/`e`/`use`/`alg`/`issuer` values must neither
//! panic nor produce anything but a clean refusal or the real key's answer).
//!
//! Seeds: the dev authority's JWKS and variants (`corpus/jwks/seed-*`).

#![no_main]

use entra_auth::fuzzing::{StaticValidator, jwks_key_count};
use entra_auth::{Authority, Config};
use libfuzzer_sys::fuzz_target;
use todo_fuzz::{check_outcome, settings};

const TOKEN: &str = include_str!("../fixtures/daemon.token");

fuzz_target!(|data: &[u8]| {
    if jwks_key_count(data).unwrap_or(0) == 0 {
        return;
    }
    let s = settings();
    let config = Config::new(Authority::parse(&s.authority).unwrap(), s.client_id.clone());
    let validator = StaticValidator::new(&config, &s.issuer, data).expect("parsed above");
    check_outcome(validator.validate(TOKEN.trim(), s.now));
});
