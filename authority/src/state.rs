//! [`AuthorityState`]: the state folder (CA, signing keys, registrations) opened for use,
//! by a running server or offline by the CLI. Both see each other's changes on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ca::DevCa;
use crate::claims::{self, AccessTokenClaims, ClientAuth};
use crate::files::{self, PRIVATE, Watched};
use crate::keys::{self, KeyRotation, KeySet};
use crate::registrations::{Directory, REGISTRATIONS_FILE};
use crate::{ClientSettings, Error, Registrations, TlsIdentity, TokenLifetime, defaults};

/// File a serving authority writes with its bound address and base URL.
const SERVER_FILE: &str = "server.json";

/// The URLs of the tenant on an authority reachable at `base_url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// `https://host:port`.
    pub base_url: String,
    /// `https://host:port/{tenant id}`: the MSAL authority.
    pub authority: String,
    /// `https://host:port/{tenant id}/v2.0`: the `iss` of tokens.
    pub issuer: String,
    /// `{issuer}/.well-known/openid-configuration`.
    pub metadata_url: String,
    /// `https://host:port/{tenant id}/discovery/v2.0/keys`.
    pub jwks_uri: String,
    /// `https://host:port/{tenant id}/oauth2/v2.0/token`.
    pub token_endpoint: String,
}

impl Endpoints {
    fn new(base_url: &str, tenant_segment: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        let authority = format!("{base}/{tenant_segment}");
        Endpoints {
            base_url: base.to_owned(),
            issuer: format!("{authority}/v2.0"),
            metadata_url: format!("{authority}/v2.0/.well-known/openid-configuration"),
            jwks_uri: format!("{authority}/discovery/v2.0/keys"),
            token_endpoint: format!("{authority}/oauth2/v2.0/token"),
            authority,
        }
    }
}

/// What `serve` records in the state folder for the CLI.
#[derive(Serialize, Deserialize)]
struct ServerRecord {
    base_url: String,
    listen: String,
    pid: u32,
}

/// An opened state folder.
pub struct AuthorityState {
    dir: PathBuf,
    ca: DevCa,
    regs: Watched<Directory>,
    keys: Watched<KeySet>,
    created: bool,
}

impl AuthorityState {
    /// Opens `dir`, creating on first use the CA, a signing key and the default
    /// registrations (random ids and secrets, file mode 0600).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir: PathBuf = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        // Absolute, so printed paths (CA, certificates) work from any directory.
        let dir = std::path::absolute(&dir).map_err(|e| Error::io("resolving", &dir, e))?;
        let ca = DevCa::load_or_create(&dir)?;
        let keys_path = dir.join(keys::KEYS_FILE);
        keys::ensure(&keys_path)?;
        let keys = Watched::open(keys_path, keys::load)?;
        let regs_path = dir.join(REGISTRATIONS_FILE);
        let created = !regs_path.exists();
        if created {
            let regs = defaults::create(&dir)?;
            let text = format!("{}{}", defaults::FILE_HEADER, regs.to_toml());
            files::write_atomic(&regs_path, text.as_bytes(), PRIVATE)?;
        }
        let state_dir = dir.clone();
        let regs = Watched::open(regs_path, move |p| Directory::load(p, &state_dir))?;
        Ok(AuthorityState {
            dir,
            ca,
            regs,
            keys,
            created,
        })
    }

    /// Whether this call created the default registrations (first start).
    pub fn first_start(&self) -> bool {
        self.created
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The registrations file.
    pub fn registrations_path(&self) -> &Path {
        self.regs.path()
    }

    /// The CA certificate (PEM) that clients and servers must trust.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Where the CA certificate is (`{state}/ca.pem`).
    pub fn ca_path(&self) -> &Path {
        self.ca.cert_path()
    }

    /// The current registrations.
    pub fn registrations(&self) -> Registrations {
        self.regs.get().regs.clone()
    }

    pub(crate) fn directory(&self) -> Arc<Directory> {
        self.regs.get()
    }

    pub(crate) fn keys(&self) -> Arc<KeySet> {
        self.keys.get()
    }

    pub(crate) fn ca(&self) -> &DevCa {
        &self.ca
    }

    /// Changes the registrations: checks them, writes the file (0600) and applies them.
    pub fn update_registrations(
        &self,
        change: impl FnOnce(&mut Registrations),
    ) -> Result<(), Error> {
        let mut regs = self.registrations();
        change(&mut regs);
        let directory = Directory::new(regs, &self.dir, self.regs.path())?;
        let text = format!("{}{}", defaults::FILE_HEADER, directory.regs.to_toml());
        files::write_atomic(self.regs.path(), text.as_bytes(), PRIVATE)?;
        self.regs.set(directory);
        Ok(())
    }

    /// The tenant's endpoints on an authority at `base_url`.
    pub fn endpoints(&self, base_url: &str) -> Endpoints {
        Endpoints::new(base_url, &self.regs.get().regs.tenant.id.to_string())
    }

    /// Endpoints with the tenant named by `segment` (GUID or domain) in the URL paths.
    pub(crate) fn endpoints_for_segment(&self, base_url: &str, segment: &str) -> Endpoints {
        Endpoints::new(base_url, segment)
    }

    /// The claims a token request by `client` for `api` would get (secret authentication).
    pub fn claims_for(
        &self,
        base_url: &str,
        client: &str,
        api: &str,
        lifetime: TokenLifetime,
    ) -> Result<AccessTokenClaims, Error> {
        let dir = self.directory();
        let client = dir
            .regs
            .client(client)
            .ok_or_else(|| Error::UnknownClient(client.into()))?;
        let api = dir
            .regs
            .api(api)
            .ok_or_else(|| Error::UnknownApi(api.into()))?;
        Ok(self.build_claims(
            base_url,
            &dir.regs,
            client,
            api,
            ClientAuth::Secret,
            lifetime,
        ))
    }

    pub(crate) fn build_claims(
        &self,
        base_url: &str,
        regs: &Registrations,
        client: &crate::ClientApp,
        api: &crate::Api,
        auth: ClientAuth,
        lifetime: TokenLifetime,
    ) -> AccessTokenClaims {
        let issuer = self.endpoints(base_url).issuer;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        AccessTokenClaims::build(
            regs,
            client,
            api,
            &issuer,
            auth,
            now,
            lifetime_secs(lifetime),
        )
    }

    /// Mints an access token for a registered client and API without any request.
    pub fn mint_token(
        &self,
        base_url: &str,
        client: &str,
        api: &str,
        lifetime: TokenLifetime,
    ) -> Result<String, Error> {
        self.sign_claims(&self.claims_for(base_url, client, api, lifetime)?)
    }

    /// Signs arbitrary claims with the current signing key (RS256, `kid`, `typ: JWT`).
    /// For negative tests of validators (expired, wrong audience, …): DEVELOPMENT ONLY.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, Error> {
        claims::sign(&self.keys(), claims)
    }

    /// Signs a header and a payload given as JSON text, byte for byte, with the current
    /// signing key (RS256, whatever the header's `alg` says). DEVELOPMENT AND TESTS ONLY:
    /// for hostile-input tests of validators (`jku` headers, duplicate claims, wrong types).
    pub fn sign_raw(&self, header_json: &str, payload_json: &str) -> Result<String, Error> {
        claims::sign_raw(&self.keys(), header_json, payload_json)
    }

    /// Publishes a new signing key next to the current one and signs with it from now on;
    /// a key published before that is retired.
    pub fn rotate_keys(&self) -> Result<KeyRotation, Error> {
        let rotation = keys::rotate(self.keys.path())?;
        self.keys.set(keys::load(self.keys.path())?);
        Ok(rotation)
    }

    /// Retires every published key except the signing one.
    pub fn retire_previous_keys(&self) -> Result<KeyRotation, Error> {
        let rotation = keys::retire(self.keys.path())?;
        self.keys.set(keys::load(self.keys.path())?);
        Ok(rotation)
    }

    /// The published key ids; the signing one is last.
    pub fn published_kids(&self) -> Vec<String> {
        self.keys().kids()
    }

    /// The JWKS document as served.
    pub fn jwks(&self, base_url: &str) -> serde_json::Value {
        self.keys().jwks(&self.endpoints(base_url).issuer)
    }

    /// A TLS certificate for other development servers (e.g. the gRPC API), signed by the CA.
    pub fn issue_tls_identity(&self, names: &[String]) -> Result<TlsIdentity, Error> {
        self.ca.issue(names)
    }

    /// Ready-to-use settings for `client` on an authority at `base_url`.
    pub fn client_settings(&self, base_url: &str, client: &str) -> Result<ClientSettings, Error> {
        ClientSettings::new(self, base_url, client)
    }

    /// Records where a server listens, for the CLI (`server.json`).
    pub(crate) fn record_server(
        &self,
        base_url: &str,
        listen: std::net::SocketAddr,
    ) -> Result<(), Error> {
        let record = ServerRecord {
            base_url: base_url.to_owned(),
            listen: listen.to_string(),
            pid: std::process::id(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("serialisable");
        files::write_atomic(&self.dir.join(SERVER_FILE), &json, files::PUBLIC)
    }

    /// The base URL the last `serve` on this folder recorded, if any.
    pub fn recorded_base_url(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(SERVER_FILE)).ok()?;
        serde_json::from_str::<ServerRecord>(&text)
            .ok()
            .map(|r| r.base_url)
    }
}

/// Token lifetime in seconds.
pub(crate) fn lifetime_secs(lifetime: TokenLifetime) -> i64 {
    match lifetime {
        TokenLifetime::EntraLike => rand::rng().random_range(3600..=5400),
        TokenLifetime::Fixed(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1),
    }
}
