//! Client assertions (`private_key_jwt`): a JWT signed with a certificate registered for
//! the client, PS256 with `x5t#S256` or RS256 with `x5t`. Checks signature, `aud`,
//! `iss`/`sub`, lifetime (at most 10 minutes) and `jti` replay.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;

use crate::aadsts::AadError;
use crate::registrations::RegisteredCert;

/// The only accepted `client_assertion_type`.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest accepted assertion lifetime (exp − nbf/iat), seconds.
const MAX_LIFETIME: i64 = 600;
/// Clock skew tolerated on `exp` and `nbf`, seconds.
const SKEW: i64 = 300;
/// Bound on remembered `jti`s; expired ones are dropped first.
const REPLAY_CAPACITY: usize = 100_000;

#[derive(Deserialize)]
struct AssertionHeader {
    alg: String,
    #[serde(default)]
    x5t: Option<String>,
    #[serde(rename = "x5t#S256", default)]
    x5t_s256: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct AssertionClaims {
    aud: Option<Audience>,
    iss: Option<String>,
    sub: Option<String>,
    // NumericDate may be fractional (MSAL Python sends floats).
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    jti: Option<String>,
}

/// Whole seconds of a NumericDate.
fn secs(value: Option<f64>) -> Option<i64> {
    value.filter(|v| v.is_finite()).map(|v| v.floor() as i64)
}

/// What a verified assertion leaves for the replay check.
pub(crate) struct VerifiedAssertion {
    pub(crate) jti: String,
    pub(crate) exp: i64,
}

/// base64url, with or without padding (MSAL Python pads thumbprints).
fn b64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn same_client(claim: Option<&str>, client_id: &uuid::Uuid) -> bool {
    claim
        .and_then(|c| uuid::Uuid::parse_str(c).ok())
        .is_some_and(|c| &c == client_id)
}

/// Verifies `assertion` for `client_id` against its `certs`; `audiences` are the accepted
/// token-endpoint URLs.
pub(crate) fn verify(
    assertion: &str,
    client_id: &uuid::Uuid,
    certs: &[RegisteredCert],
    audiences: &[String],
    now: i64,
) -> Result<VerifiedAssertion, AadError> {
    let malformed = || AadError::bad_assertion("The client assertion is not a well-formed JWT.");
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header: AssertionHeader = b64url(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    let signature = b64url(s).ok_or_else(malformed)?;

    // Which registered certificate signed it.
    let (cert, presented) = if let Some(t) = &header.x5t_s256 {
        let t = b64url(t).ok_or_else(malformed)?;
        (certs.iter().find(|c| c.sha256 == t), hex(&t))
    } else if let Some(t) = &header.x5t {
        let t = b64url(t).ok_or_else(malformed)?;
        (certs.iter().find(|c| c.sha1 == t), hex(&t))
    } else {
        return Err(AadError::bad_assertion(
            "The client assertion header has neither 'x5t#S256' nor 'x5t'.",
        ));
    };
    let cert = cert.ok_or_else(|| {
        AadError::bad_assertion(&format!(
            "The certificate with identifier used to sign the client assertion is not registered on application. Thumbprint of key used by client: '{presented}'"
        ))
    })?;

    let algorithm = match header.alg.as_str() {
        "PS256" => webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        "RS256" => webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        other => {
            return Err(AadError::bad_assertion(&format!(
                "The client assertion algorithm '{other}' is not supported; use PS256 or RS256."
            )));
        }
    };
    let der = CertificateDer::from(cert.der.as_slice());
    let end_entity = webpki::EndEntityCert::try_from(&der)
        .map_err(|_| AadError::bad_assertion("The registered certificate cannot be parsed."))?;
    let signed = &assertion[..h.len() + 1 + p.len()];
    end_entity
        .verify_signature(algorithm, signed.as_bytes(), &signature)
        .map_err(|_| AadError::bad_assertion("Client assertion contains an invalid signature."))?;

    let claims: AssertionClaims = b64url(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;

    let aud_ok = match &claims.aud {
        Some(Audience::One(a)) => audiences.iter().any(|x| x == a.trim_end_matches('/')),
        Some(Audience::Many(v)) => v
            .iter()
            .any(|a| audiences.iter().any(|x| x == a.trim_end_matches('/'))),
        None => false,
    };
    if !aud_ok {
        return Err(AadError::bad_assertion(&format!(
            "The client assertion audience (aud) must be the token endpoint '{}'.",
            audiences.first().map(String::as_str).unwrap_or_default()
        )));
    }
    if !same_client(claims.iss.as_deref(), client_id)
        || !same_client(claims.sub.as_deref(), client_id)
    {
        return Err(AadError::assertion_subject());
    }
    let exp = secs(claims.exp)
        .ok_or_else(|| AadError::assertion_time("The assertion has no 'exp' claim."))?;
    if exp + SKEW < now {
        return Err(AadError::assertion_time(&format!(
            "Current time: {now}, expiry time of assertion {exp}."
        )));
    }
    let nbf = secs(claims.nbf);
    if let Some(nbf) = nbf
        && nbf - SKEW > now
    {
        return Err(AadError::assertion_time(&format!(
            "Current time: {now}, assertion valid from {nbf}."
        )));
    }
    let start = nbf.or(secs(claims.iat)).unwrap_or(now);
    if exp - start > MAX_LIFETIME {
        return Err(AadError::assertion_time(&format!(
            "The assertion lifetime ({}s) exceeds the maximum of {MAX_LIFETIME}s.",
            exp - start
        )));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| AadError::bad_assertion("The client assertion has no 'jti' claim."))?;
    Ok(VerifiedAssertion { jti, exp })
}

/// Remembers used `(client, jti)` pairs until their assertion expires.
#[derive(Default)]
pub(crate) struct ReplayCache {
    seen: Mutex<HashMap<(uuid::Uuid, String), i64>>,
}

impl ReplayCache {
    /// Records the assertion; an error if it was already used.
    pub(crate) fn check(
        &self,
        client_id: uuid::Uuid,
        verified: &VerifiedAssertion,
        now: i64,
    ) -> Result<(), AadError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= REPLAY_CAPACITY {
            seen.retain(|_, exp| *exp + SKEW >= now);
        }
        if seen.len() >= REPLAY_CAPACITY {
            return Err(AadError::bad_assertion(
                "Too many outstanding client assertions.",
            ));
        }
        match seen.entry((client_id, verified.jti.clone())) {
            std::collections::hash_map::Entry::Occupied(_) => Err(AadError::bad_assertion(
                "The client assertion was already used (jti replay).",
            )),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(verified.exp);
                Ok(())
            }
        }
    }
}
