//! Token-signing keys: RSA 2048 with a self-signed certificate each (as Entra publishes),
//! persisted in `signing-keys.json` so a running server and the CLI agree. The last key
//! signs; the one before it stays published until it is retired.

use std::path::Path;

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::EncodingKey;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::files::{self, PRIVATE};
use crate::{Error, Secret};

/// File name of the signing-key store in the state folder.
pub(crate) const KEYS_FILE: &str = "signing-keys.json";

/// The outcome of a rotation or retirement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    /// The `kid` that signs new tokens.
    pub signing_kid: String,
    /// Every `kid` published in the JWKS (the signing one last).
    pub published_kids: Vec<String>,
    /// `kid`s removed from the JWKS by this call.
    pub retired_kids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    created_at: i64,
    private_key_pem: Secret,
    certificate_pem: String,
}

/// One usable signing key.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    n: String,
    e: String,
    x5c: String,
}

/// The published keys; the last one signs.
pub(crate) struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// The key that signs new tokens.
    pub(crate) fn current(&self) -> &SigningKey {
        self.keys.last().expect("a key set is never empty")
    }

    /// The published `kid`s, signing one last.
    pub(crate) fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// The JWKS document, Entra-shaped.
    pub(crate) fn jwks(&self, issuer: &str) -> serde_json::Value {
        // Entra lists the newest keys first.
        let keys: Vec<_> = self
            .keys
            .iter()
            .rev()
            .map(|k| {
                serde_json::json!({
                    "kty": "RSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x5t": k.kid,
                    "n": k.n,
                    "e": k.e,
                    "x5c": [k.x5c],
                    "cloud_instance_name": "microsoftonline.com",
                    "issuer": issuer,
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn keys_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Keys {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn generate() -> Result<StoredKey, Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(Error::cert)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "dev-authority token signing key");
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(730);
    let cert = params.self_signed(&key).map_err(Error::cert)?;
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der());
    Ok(StoredKey {
        // Entra's kid is the certificate's SHA-1 thumbprint, base64url: the same as x5t.
        kid: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        created_at: now.unix_timestamp(),
        private_key_pem: Secret::new(key.serialize_pem()),
        certificate_pem: cert.pem(),
    })
}

fn load_stored(path: &Path) -> Result<Vec<StoredKey>, Error> {
    let text = files::read_string(path)?;
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| keys_error(path, e.to_string()))?;
    if file.keys.is_empty() {
        return Err(keys_error(path, "no keys"));
    }
    Ok(file.keys)
}

fn save(path: &Path, keys: Vec<StoredKey>) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(&KeyFile { keys }).expect("serialisable");
    files::write_atomic(path, &json, PRIVATE)
}

/// Parses the key file into usable keys.
pub(crate) fn load(path: &Path) -> Result<KeySet, Error> {
    let keys = load_stored(path)?
        .into_iter()
        .map(|k| {
            let der = crate::ca::pem_der(k.private_key_pem.expose())?;
            let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
                .map_err(|e| keys_error(path, format!("key {}: {e}", k.kid)))?;
            let public = pair.public_key();
            let cert_der = crate::ca::pem_der(&k.certificate_pem)?;
            Ok(SigningKey {
                encoding: EncodingKey::from_rsa_pem(k.private_key_pem.expose().as_bytes())?,
                n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                x5c: STANDARD.encode(cert_der),
                kid: k.kid,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(KeySet { keys })
}

/// Creates the key file with one key if it does not exist.
pub(crate) fn ensure(path: &Path) -> Result<(), Error> {
    if !path.exists() {
        save(path, vec![generate()?])?;
    }
    Ok(())
}

/// Publishes a new key that signs from now on, keeping only the previous signing key
/// beside it (older ones are retired).
pub(crate) fn rotate(path: &Path) -> Result<KeyRotation, Error> {
    let mut keys = load_stored(path)?;
    let split = keys.len() - 1;
    let retired: Vec<_> = keys.drain(..split).map(|k| k.kid).collect();
    keys.push(generate()?);
    finish(path, keys, retired)
}

/// Retires every key but the signing one.
pub(crate) fn retire(path: &Path) -> Result<KeyRotation, Error> {
    let mut keys = load_stored(path)?;
    let split = keys.len() - 1;
    let retired: Vec<_> = keys.drain(..split).map(|k| k.kid).collect();
    finish(path, keys, retired)
}

fn finish(
    path: &Path,
    keys: Vec<StoredKey>,
    retired_kids: Vec<String>,
) -> Result<KeyRotation, Error> {
    let rotation = KeyRotation {
        signing_kid: keys.last().expect("non-empty").kid.clone(),
        published_kids: keys.iter().map(|k| k.kid.clone()).collect(),
        retired_kids,
    };
    save(path, keys)?;
    Ok(rotation)
}
