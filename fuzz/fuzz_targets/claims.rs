//! Hostile headers and claims under a VALID signature: the input is
//! `header JSON` `\n` `claims JSON` (or only claims, with the usual header),
//! which the harness signs with the fixture key before validation. This
//! reaches the checks that come after the signature (times, issuer, tenant,
//! audience, roles, JSON types), which random tokens never reach.
//!
//! Seeds: the header and claims of real dev-authority tokens and variants
//! (`corpus/claims/seed-*`).

#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use todo_fuzz::{SIGNING_KEY_PEM, check_outcome, settings, validator};

fn key() -> &'static EncodingKey {
    static KEY: OnceLock<EncodingKey> = OnceLock::new();
    KEY.get_or_init(|| EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes()).expect("fixture key"))
}

fuzz_target!(|data: &[u8]| {
    let s = settings();
    let default_header = format!(r#"{{"typ":"JWT","alg":"RS256","kid":"{}"}}"#, s.kid);
    let (header, claims) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (default_header.as_bytes(), data),
    };
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature =
        jsonwebtoken::crypto::sign(signed.as_bytes(), key(), Algorithm::RS256).expect("sign");
    check_outcome(validator().validate(&format!("{signed}.{signature}"), s.now));
});
