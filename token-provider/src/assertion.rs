//! [`CertificateCredential`]: a certificate and its RSA private key, signing client
//! assertions (`private_key_jwt`) the way Entra expects: PS256, header `x5t#S256` (base64url
//! SHA-256 of the DER certificate), optional `x5c`; claims `aud` = token endpoint,
//! `iss` = `sub` = client id, a unique `jti`, `nbf` = `iat` = now, `exp` = now + 10 minutes.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls::pki_types::CertificateDer;
use serde::Serialize;

use crate::{Error, PrivateKeyPem};

/// Lifetime of one assertion (Entra accepts at most 10 minutes).
const ASSERTION_LIFETIME_SECS: u64 = 600;

/// A certificate credential. `Debug` shows the thumbprint only, never the key.
#[derive(Clone)]
pub struct CertificateCredential {
    key: EncodingKey,
    x5t_s256: String,
    chain: Vec<String>,
    send_x5c: bool,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl CertificateCredential {
    /// From PEM text: the certificate first (then, optionally, its chain), and an
    /// unencrypted RSA private key (`PRIVATE KEY` or `RSA PRIVATE KEY`). Checks that the key
    /// belongs to the certificate. Both may be in the same text.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &PrivateKeyPem) -> Result<Self, Error> {
        let certs: Vec<Vec<u8>> = pem_blocks(certificate_pem)?
            .into_iter()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| b.der)
            .collect();
        let leaf = certs.first().ok_or_else(|| {
            Error::Credential("the certificate PEM holds no CERTIFICATE block".into())
        })?;
        let key = private_key(private_key_pem.expose_secret())?;
        check_key_matches(leaf, &key.pair)?;
        Ok(CertificateCredential {
            key: key.encoding,
            x5t_s256: URL_SAFE_NO_PAD.encode(digest(&SHA256, leaf)),
            chain: certs.iter().map(|c| STANDARD.encode(c)).collect(),
            send_x5c: false,
        })
    }

    /// From one PEM file holding the certificate (and chain) and the private key.
    /// A `.pfx`/`.p12` file is refused with instructions to convert it.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = read_pem(path)?;
        Self::from_pem(&text, &PrivateKeyPem::new(text.clone())).map_err(|e| in_file(e, path))
    }

    /// From a certificate PEM file and a separate private-key PEM file.
    pub fn from_pem_files(
        certificate: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let (cert_path, key_path) = (certificate.as_ref(), private_key.as_ref());
        let cert = read_pem(cert_path)?;
        let key = PrivateKeyPem::new(read_pem(key_path)?);
        Self::from_pem(&cert, &key).map_err(|e| in_file(e, cert_path))
    }

    /// Also send the certificate chain in the `x5c` header (needed for Entra's
    /// "subject name + issuer" authentication). Default: off.
    pub fn with_x5c(mut self, send: bool) -> Self {
        self.send_x5c = send;
        self
    }

    /// The certificate's SHA-256 thumbprint, base64url (the `x5t#S256` header).
    pub fn thumbprint_sha256(&self) -> &str {
        &self.x5t_s256
    }

    /// A fresh signed assertion for `client_id` at the token endpoint `audience`.
    pub(crate) fn assertion(&self, client_id: &str, audience: &str) -> Result<String, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".into());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        if self.send_x5c {
            header.x5c = Some(self.chain.clone());
        }
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Error::Credential(format!("signing the client assertion failed: {e}")))
    }
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.x5t_s256)
            .field("send_x5c", &self.send_x5c)
            .field("key", &"[redacted]")
            .finish()
    }
}

fn in_file(e: Error, path: &Path) -> Error {
    match e {
        Error::Credential(m) => Error::Credential(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Reads a PEM file; a PKCS#12 file gets a clear "unsupported" message.
pub(crate) fn read_pem(path: &Path) -> Result<String, Error> {
    let pkcs12 = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"));
    let unsupported = || {
        Error::Credential(format!(
            "{}: PKCS#12 (.pfx/.p12) certificates are not supported; convert it to one PEM \
             file holding the certificate and the key, e.g. `openssl pkcs12 -in cert.pfx \
             -out cert.pem -nodes` (keep the result private: mode 0600)",
            path.display()
        ))
    };
    if pkcs12 {
        return Err(unsupported());
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Credential(format!("reading {}: {e}", path.display())))?;
    match String::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN ") => Ok(text),
        Ok(_) => Err(Error::Credential(format!(
            "{}: not a PEM file (no -----BEGIN line)",
            path.display()
        ))),
        Err(_) => Err(unsupported()),
    }
}

/// One PEM block.
struct Block {
    label: String,
    /// The block's own text (BEGIN to END), for parsers that want PEM.
    text: String,
    der: Vec<u8>,
}

/// Splits PEM text into blocks. Errors never quote the text (it may hold a key).
fn pem_blocks(text: &str) -> Result<Vec<Block>, Error> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if !line.contains(':') {
                body.push_str(line);
            }
        }
        if !closed {
            return Err(Error::Credential(format!(
                "PEM block {label} has no END line"
            )));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| Error::Credential(format!("PEM block {label} is not valid base64")))?;
        let text = format!(
            "-----BEGIN {label}-----\n{}\n{end}\n",
            body.as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        );
        blocks.push(Block {
            label: label.to_owned(),
            text,
            der,
        });
    }
    Ok(blocks)
}

struct ParsedKey {
    encoding: EncodingKey,
    pair: RsaKeyPair,
}

fn private_key(pem: &str) -> Result<ParsedKey, Error> {
    let blocks = pem_blocks(pem)?;
    if blocks.iter().any(|b| b.label == "ENCRYPTED PRIVATE KEY") {
        return Err(Error::Credential(
            "the private key is encrypted, which is not supported: decrypt it with \
             `openssl pkcs8 -in key.pem -out key-plain.pem` and keep that file private (0600)"
                .into(),
        ));
    }
    if blocks.iter().any(|b| b.label == "EC PRIVATE KEY") {
        return Err(Error::Credential(
            "the private key is an EC key; Entra client assertions need an RSA key".into(),
        ));
    }
    let block = blocks
        .iter()
        .find(|b| b.label == "PRIVATE KEY" || b.label == "RSA PRIVATE KEY")
        .ok_or_else(|| Error::Credential("no PRIVATE KEY or RSA PRIVATE KEY block found".into()))?;
    let pair = if block.label == "PRIVATE KEY" {
        RsaKeyPair::from_pkcs8(&block.der)
    } else {
        RsaKeyPair::from_der(&block.der)
    }
    .map_err(|e| Error::Credential(format!("the private key is not a usable RSA key ({e})")))?;
    let encoding = EncodingKey::from_rsa_pem(block.text.as_bytes()).map_err(|e| {
        Error::Credential(format!("the private key cannot be used for signing ({e})"))
    })?;
    Ok(ParsedKey { encoding, pair })
}

/// Signs a probe with the key and verifies it with the certificate's public key, so a
/// mismatched pair fails here, with a clear message, instead of as AADSTS700027.
fn check_key_matches(cert_der: &[u8], pair: &RsaKeyPair) -> Result<(), Error> {
    const PROBE: &[u8] = b"entra-token-provider: does this key belong to the certificate?";
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| Error::Credential(format!("the certificate cannot be parsed ({e})")))?;
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PSS_SHA256, &SystemRandom::new(), PROBE, &mut signature)
        .map_err(|_| Error::Credential("the private key cannot sign".into()))?;
    cert.verify_signature(
        webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        PROBE,
        &signature,
    )
    .map_err(|_| {
        Error::Credential(
            "the private key does not belong to the certificate (or the certificate's key is \
             not RSA 2048+)"
                .into(),
        )
    })
}
