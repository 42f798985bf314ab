//! [`Credential`]: how the client proves its identity to the token endpoint — a client
//! secret, a certificate, or a federated assertion read from a file (workload identity).

use std::path::{Path, PathBuf};

use crate::{CertificateCredential, ClientSecret, Error};

/// The `client_assertion_type` of JWT assertions.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The environment variable Kubernetes workload identity (and Azure's SDKs) use for the
/// federated token file.
pub const FEDERATED_TOKEN_FILE_ENV: &str = "AZURE_FEDERATED_TOKEN_FILE";

/// A client credential. `Debug` never shows a secret or a key.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Credential {
    /// A client secret, sent as `client_secret` in the form body.
    ClientSecret(ClientSecret),
    /// A certificate: each request carries a fresh PS256 client assertion.
    Certificate(CertificateCredential),
    /// A federated assertion (e.g. a Kubernetes service-account token) read from this file
    /// **on every request**, since the platform rotates it; sent as `client_assertion`.
    FederatedTokenFile(PathBuf),
}

/// What one request sends to authenticate.
pub(crate) enum Authentication<'a> {
    Secret(&'a str),
    Assertion(String),
}

impl Credential {
    /// A client-secret credential.
    pub fn client_secret(secret: impl Into<String>) -> Self {
        Credential::ClientSecret(ClientSecret::new(secret))
    }

    /// A certificate credential from one PEM file holding the certificate and the key.
    pub fn certificate_pem_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        CertificateCredential::from_pem_file(path).map(Credential::Certificate)
    }

    /// A federated-assertion credential read from `path` on every request.
    pub fn federated_token_file(path: impl Into<PathBuf>) -> Self {
        Credential::FederatedTokenFile(path.into())
    }

    /// The federated token file named by `AZURE_FEDERATED_TOKEN_FILE`, if set.
    pub fn federated_token_file_from_env() -> Option<Self> {
        std::env::var_os(FEDERATED_TOKEN_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(|v| Credential::FederatedTokenFile(v.into()))
    }

    /// A short name for logs: `client secret`, `certificate`, `federated token file`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ClientSecret(_) => "client secret",
            Credential::Certificate(_) => "certificate",
            Credential::FederatedTokenFile(_) => "federated token file",
        }
    }

    /// Fails early on a credential that can never work.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            Credential::ClientSecret(s) if s.is_empty() => {
                Err(Error::Config("the client secret is empty".into()))
            }
            _ => Ok(()),
        }
    }

    /// The secret value to scrub from messages, if any.
    pub(crate) fn redaction(&self) -> Option<&str> {
        match self {
            Credential::ClientSecret(s) => Some(s.expose_secret()),
            _ => None,
        }
    }

    /// Authentication for one request to `token_endpoint` (assertions are made fresh).
    pub(crate) async fn authenticate(
        &self,
        client_id: &str,
        token_endpoint: &str,
    ) -> Result<Authentication<'_>, Error> {
        match self {
            Credential::ClientSecret(s) => Ok(Authentication::Secret(s.expose_secret())),
            Credential::Certificate(c) => c
                .assertion(client_id, token_endpoint)
                .map(Authentication::Assertion),
            Credential::FederatedTokenFile(path) => {
                read_federated(path).await.map(Authentication::Assertion)
            }
        }
    }
}

/// Reads the federated token file. Errors name the file, never its contents.
async fn read_federated(path: &Path) -> Result<String, Error> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        Error::Credential(format!(
            "reading the federated token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Credential(format!(
            "the federated token file {} is empty",
            path.display()
        )));
    }
    if token.split('.').count() != 3 || token.chars().any(char::is_whitespace) {
        return Err(Error::Credential(format!(
            "the federated token file {} does not hold a JWT",
            path.display()
        )));
    }
    Ok(token.to_owned())
}
