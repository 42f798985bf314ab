//! Test helpers: a real HTTPS dev authority and real RS256 tokens.
//!
//! - [`authority::TestAuthority`] serves OIDC discovery and a JWKS over TLS on
//!   `127.0.0.1:0`, with a CA and server certificate made by rcgen. Tests can
//!   change the published keys, take it down, slow it down and count fetches.
//! - [`tokens::TestKey`] is an RSA-2048 key (made once per process) that
//!   signs tokens; [`tokens::app_claims`] gives valid app-only claims.

// Explicit paths so the bench can include this file with `#[path]` too.
#[path = "util/authority.rs"]
pub mod authority;
#[path = "util/tokens.rs"]
pub mod tokens;

pub use authority::TestAuthority;
pub use tokens::{TestKey, app_claims, now, test_keys};

/// Application (client) id of the API under test.
pub const CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
/// Client id of the calling daemon.
pub const DAEMON_ID: &str = "0b7b3e4c-3f7a-4d9e-8a55-2a4f0c3c9d11";
/// Tenant id (`tid`) the test authority issues for.
pub const TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// Tenant as written in the authority URL.
pub const TENANT: &str = "contoso.onmicrosoft.com";
/// Object id of the daemon's service principal.
pub const DAEMON_OID: &str = "3a6e6f2e-41d8-4d2a-9d0e-7f3c2b1a0e99";
