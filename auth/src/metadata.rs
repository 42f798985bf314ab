//! Fetching OIDC discovery metadata and the JWKS from the authority.

use std::collections::HashMap;

use jsonwebtoken::DecodingKey;
use reqwest::{Certificate, Client, Url, header};
use serde::Deserialize;
use serde_json::Value;

use crate::{Config, Error};

/// Largest metadata or JWKS document accepted.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_MODULUS_BYTES: usize = 256;

/// What one successful refresh produced: the issuer and the signing keys.
pub(crate) struct KeySet {
    /// Metadata `issuer`; may contain `{tenantid}`.
    pub(crate) issuer: String,
    pub(crate) keys: HashMap<String, SigningKey>,
    /// Bumped on every successful refresh (set by the key store).
    pub(crate) generation: u64,
}

/// One JWKS key usable for RS256.
pub(crate) struct SigningKey {
    pub(crate) key: DecodingKey,
    /// The key's own `issuer`, when the JWKS gives one.
    pub(crate) issuer: Option<String>,
}

/// Fetches metadata and keys over HTTPS.
pub(crate) struct Fetcher {
    client: Client,
    metadata_url: String,
}

impl Fetcher {
    pub(crate) fn new(config: &Config) -> Result<Self, Error> {
        let mut pem = config.ca_pem.clone().unwrap_or_default();
        if let Some(path) = &config.ca_file {
            let mut file = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            pem.push(b'\n');
            pem.append(&mut file);
        }
        let mut builder = Client::builder()
            .https_only(true)
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("entra-auth/", env!("CARGO_PKG_VERSION")));
        if !pem.is_empty() {
            let roots = Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Config(format!("CA certificates are not valid PEM: {e}")))?;
            if roots.is_empty() {
                return Err(Error::Config("CA file holds no certificate".into()));
            }
            builder = builder.tls_certs_merge(roots);
        }
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTPS client: {e}")))?;
        Ok(Fetcher {
            client,
            metadata_url: config.authority.metadata_url(),
        })
    }

    /// Discovery, then JWKS. Fails rather than return a set without keys.
    pub(crate) async fn fetch(&self) -> Result<KeySet, Error> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let discovery: Discovery = self.get_json(&self.metadata_url).await?;
        let jwks_url = Url::parse(&discovery.jwks_uri)
            .ok()
            .filter(|u| u.scheme() == "https")
            .ok_or_else(|| Error::Fetch {
                url: self.metadata_url.clone(),
                reason: "jwks_uri is not an https URL".into(),
            })?;
        if discovery.issuer.trim().is_empty() {
            return Err(Error::Fetch {
                url: self.metadata_url.clone(),
                reason: "issuer is empty".into(),
            });
        }
        let jwks: Jwks = self.get_json(jwks_url.as_str()).await?;
        let keys = jwks.signing_keys();
        if keys.is_empty() {
            return Err(Error::Fetch {
                url: jwks_url.to_string(),
                reason: "JWKS holds no usable RS256 key".into(),
            });
        }
        Ok(KeySet {
            issuer: discovery.issuer,
            keys,
            generation: 0,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Error> {
        let fail = |reason: String| Error::Fetch {
            url: url.to_owned(),
            reason,
        };
        let mut response = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(fail("document too large".into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(error_chain(&e)))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(fail("document too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("invalid JSON: {e}")))
    }
}

/// A JWKS document: `{"keys": [...]}`.
#[derive(Deserialize)]
pub(crate) struct Jwks {
    keys: Vec<Value>,
}

impl Jwks {
    /// The usable RS256 keys by `kid`; unusable entries are skipped.
    pub(crate) fn signing_keys(&self) -> HashMap<String, SigningKey> {
        let mut keys = HashMap::new();
        for jwk in &self.keys {
            match parse_jwk(jwk) {
                Ok((kid, key)) => {
                    keys.insert(kid, key);
                }
                Err(why) => tracing::debug!(%why, "skipping JWKS key"),
            }
        }
        keys
    }
}

/// Turns one JWKS entry into a key, or says why it is not usable.
fn parse_jwk(jwk: &Value) -> Result<(String, SigningKey), String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = field("kid").ok_or("no kid")?;
    if field("kty") != Some("RSA") {
        return Err(format!("key {kid} is not RSA"));
    }
    if field("use").is_some_and(|u| u != "sig") {
        return Err(format!("key {kid} is not for signatures"));
    }
    if field("alg").is_some_and(|a| a != "RS256") {
        return Err(format!("key {kid} is not for RS256"));
    }
    let (Some(n), Some(e)) = (field("n"), field("e")) else {
        return Err(format!("key {kid} has no n/e"));
    };
    let key = DecodingKey::from_rsa_components(n, e).map_err(|e| format!("key {kid}: {e}"))?;
    if let jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() {
        let len = n.iter().skip_while(|b| **b == 0).count();
        if len < MIN_MODULUS_BYTES {
            return Err(format!("key {kid} is shorter than 2048 bits"));
        }
    }
    let issuer = field("issuer").map(str::to_owned);
    Ok((kid.to_owned(), SigningKey { key, issuer }))
}

/// `reqwest` errors hide the useful part (e.g. a TLS failure) in the source chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
