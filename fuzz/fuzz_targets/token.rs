//! Hostile bearer tokens: the `authorization` header as the server's layer
//! reads it, then every check of entra-auth (size, JWS parts, header, `kid`,
//! RS256 signature, claims) against a fixed key set at a fixed time.
//!
//! Seeds: real dev-authority tokens and malformed variants
//! (`corpus/token/seed-*`, made by `examples/gen_corpus.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use todo_fuzz::{check_outcome, settings, validator};

fuzz_target!(|data: &[u8]| {
    let now = settings().now;
    // The input as the token itself.
    if let Ok(token) = std::str::from_utf8(data) {
        check_outcome(validator().validate(token, now));
    }
    // The input as the whole header value ("Bearer …", any scheme, any bytes
    // HTTP allows), parsed exactly as the tower layer does.
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        match entra_auth::fuzzing::bearer(&headers) {
            Ok(token) => check_outcome(validator().validate(token, now)),
            Err(error) => check_outcome(Err(error)),
        }
    }
});
