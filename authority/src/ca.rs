//! The development CA: created on first start in the state folder (`ca.pem`,
//! `ca-key.pem`), it signs the authority's own TLS certificate and, on request, others.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::files::{self, PRIVATE, PUBLIC};
use crate::{Error, Secret};

/// File name of the CA certificate that clients and servers trust.
pub(crate) const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// A certificate and its private key, both PEM, signed by the development CA.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    /// The leaf certificate followed by nothing else (the CA is in `ca.pem`).
    pub cert_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: Secret,
}

/// The CA: its certificate and an issuer able to sign with its key.
pub(crate) struct DevCa {
    cert_pem: String,
    cert_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// Fixed CA parameters: the issuer recreated from them and the stored key matches the
/// stored certificate (same subject, same key identifier).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dev-authority");
    dn.push(
        DnType::CommonName,
        "todo-authority development CA (DEVELOPMENT ONLY)",
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params
}

impl DevCa {
    /// Loads the CA from `dir`, creating it first if missing.
    pub(crate) fn load_or_create(dir: &Path) -> Result<Self, Error> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            let key = KeyPair::from_pem(&files::read_string(&key_path)?).map_err(Error::cert)?;
            let cert_pem = files::read_string(&cert_path)?;
            return Ok(DevCa {
                cert_pem,
                cert_path,
                issuer: Issuer::new(ca_params(), key),
            });
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(Error::cert)?;
        let params = ca_params();
        let cert = params.self_signed(&key).map_err(Error::cert)?;
        files::write_atomic(&key_path, key.serialize_pem().as_bytes(), PRIVATE)?;
        files::write_atomic(&cert_path, cert.pem().as_bytes(), PUBLIC)?;
        tracing::info!(ca = %cert_path.display(), "created a development CA");
        Ok(DevCa {
            cert_pem: cert.pem(),
            cert_path,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where the CA certificate is.
    pub(crate) fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Issues a server certificate (ECDSA P-256, 1 year) for `names` (DNS names or IPs).
    pub(crate) fn issue(&self, names: &[String]) -> Result<TlsIdentity, Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(Error::cert)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "dev-authority");
        dn.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("localhost"),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(Error::cert)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365);
        let cert = params.signed_by(&key, &self.issuer).map_err(Error::cert)?;
        Ok(TlsIdentity {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }

    /// A rustls server configuration (HTTP/2 and HTTP/1.1 by ALPN) for `names`.
    pub(crate) fn server_config(
        &self,
        names: &[String],
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        let identity = self.issue(names)?;
        let cert = pem_der(&identity.cert_pem)?;
        let key = pem_der(identity.key_pem.expose())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(cert),
                    CertificateDer::from(pem_der(&self.cert_pem)?),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The DER bytes of the first PEM block in `pem`.
pub(crate) fn pem_der(pem: &str) -> Result<Vec<u8>, Error> {
    pem_blocks(pem)
        .into_iter()
        .next()
        .map(|(_, der)| der)
        .ok_or_else(|| Error::Certificate("no PEM block found".into()))
}

/// All PEM blocks of `text` as (label, DER).
pub(crate) fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_owned();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            break;
        };
        let b64: String = body_start[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push((label, der));
        }
        rest = &body_start[end + end_marker.len()..];
    }
    out
}
