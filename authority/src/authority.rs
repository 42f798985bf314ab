//! [`DevAuthority`]: a running authority (HTTPS server plus its state), for tests, the
//! one-command demo and the `todo-authority serve` command.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::assertion::ReplayCache;
use crate::server::{self, Shared};
use crate::stats::Counters;
use crate::{
    AccessTokenClaims, AuthorityState, ClientSettings, Config, Endpoints, Error, Faults,
    KeyRotation, Registrations, StateLocation, TlsIdentity, TokenStats,
};

/// A running development authority. Dropping it stops the server (use
/// [`DevAuthority::shutdown`] to wait for that) and deletes an ephemeral state folder.
pub struct DevAuthority {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    admin: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    // Declared last: dropped after the server is told to stop.
    _temp: Option<tempfile::TempDir>,
}

/// The host part of `https://host:port/...`, without brackets.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    (!host.is_empty()).then(|| host.to_owned())
}

impl DevAuthority {
    /// Opens (or creates) the state, binds the listener and starts serving HTTPS.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let (dir, temp) = match &config.state {
            StateLocation::Ephemeral => {
                let temp = tempfile::Builder::new()
                    .prefix("dev-authority-")
                    .tempdir()
                    .map_err(|e| {
                        Error::io("creating a temporary folder", std::env::temp_dir(), e)
                    })?;
                (temp.path().to_owned(), Some(temp))
            }
            StateLocation::Dir(dir) => (dir.clone(), None),
        };
        // Key generation is CPU-bound: keep it off the async workers.
        let state = tokio::task::spawn_blocking(move || AuthorityState::open(dir))
            .await
            .map_err(|e| Error::Config(format!("state setup panicked: {e}")))??;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen.to_string(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen.to_string(),
            source,
        })?;
        let base_url = config.base_url(local_addr);
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        names.extend(config.tls_names.iter().cloned());
        if let Some(host) = url_host(&base_url).filter(|h| !names.contains(h)) {
            names.push(host);
        }
        let tls = state.ca().server_config(&names)?;
        state.record_server(&base_url, local_addr)?;
        let admin = config.admin_enabled(local_addr);
        tracing::warn!(
            %base_url, admin,
            "DEVELOPMENT ONLY token authority: it issues tokens to anyone holding the secrets in its state folder; never use it in production"
        );
        if admin && !local_addr.ip().is_loopback() {
            tracing::warn!(%local_addr, "the admin surface is reachable from the network: anyone can mint tokens");
        }
        let shared = Arc::new(Shared {
            state,
            base_url,
            lifetime: config.token_lifetime,
            replay: config.reject_assertion_replay.then(ReplayCache::default),
            faults: Faults::default(),
            counters: Counters::default(),
        });
        let app = server::router(shared.clone(), admin);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, tls, app, async {
            let _ = stopped.await;
        }));
        Ok(DevAuthority {
            shared,
            local_addr,
            admin,
            stop: Some(stop),
            task: Some(task),
            _temp: temp,
        })
    }

    /// Stops accepting connections and waits for the server to finish (≤ 5 s of draining).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether `/_admin/…` is served.
    pub fn admin_enabled(&self) -> bool {
        self.admin
    }

    /// `https://host:port`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The tenant's URLs (authority, issuer, metadata, JWKS, token endpoint).
    pub fn endpoints(&self) -> Endpoints {
        self.shared.state.endpoints(&self.shared.base_url)
    }

    /// The MSAL authority: `https://host:port/{tenant id}`.
    pub fn authority_url(&self) -> String {
        self.endpoints().authority
    }

    /// The issuer of tokens: `https://host:port/{tenant id}/v2.0`.
    pub fn issuer(&self) -> String {
        self.endpoints().issuer
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> String {
        self.endpoints().token_endpoint
    }

    /// The tenant id (`tid`).
    pub fn tenant_id(&self) -> uuid::Uuid {
        self.registrations().tenant.id
    }

    /// The tenant domain (`….onmicrosoft.com`), usable in URLs instead of the id.
    pub fn tenant_domain(&self) -> String {
        self.registrations().tenant.domain
    }

    /// The CA certificate (PEM) to trust.
    pub fn ca_pem(&self) -> &str {
        self.shared.state.ca_pem()
    }

    /// The CA certificate file.
    pub fn ca_path(&self) -> &Path {
        self.shared.state.ca_path()
    }

    /// The state folder.
    pub fn state_dir(&self) -> &Path {
        self.shared.state.dir()
    }

    /// The offline view of the state folder.
    pub fn state(&self) -> &AuthorityState {
        &self.shared.state
    }

    /// The current registrations.
    pub fn registrations(&self) -> Registrations {
        self.shared.state.registrations()
    }

    /// Changes the registrations (checked, written to the file, applied at once).
    pub fn update_registrations(
        &self,
        change: impl FnOnce(&mut Registrations),
    ) -> Result<(), Error> {
        self.shared.state.update_registrations(change)
    }

    /// Ready-to-use settings for a client (by name, e.g. [`crate::defaults::DAEMON_CLIENT`],
    /// or client id): authority, client id, secret, scope, CA path.
    pub fn client_settings(&self, client: &str) -> Result<ClientSettings, Error> {
        self.shared
            .state
            .client_settings(&self.shared.base_url, client)
    }

    /// Mints an access token for `client` on `api` (names or ids) without a request; it is
    /// not counted in [`DevAuthority::token_requests`].
    pub fn mint_token(&self, client: &str, api: &str) -> Result<String, Error> {
        self.shared
            .state
            .mint_token(&self.shared.base_url, client, api, self.shared.lifetime)
    }

    /// The claims [`DevAuthority::mint_token`] would sign; change them and use
    /// [`DevAuthority::sign_claims`] for negative tests.
    pub fn claims_for(&self, client: &str, api: &str) -> Result<AccessTokenClaims, Error> {
        self.shared
            .state
            .claims_for(&self.shared.base_url, client, api, self.shared.lifetime)
    }

    /// Signs arbitrary claims with the current signing key. DEVELOPMENT ONLY: for tests of
    /// validators (expired tokens, wrong audience, missing roles…).
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, Error> {
        self.shared.state.sign_claims(claims)
    }

    /// Signs a header and a payload given as JSON text, byte for byte (each base64url
    /// encoded as is), with the current signing key: RS256 whatever the header's `alg`
    /// says, so the header may carry anything (`jku`, an odd `kid`, …) and the payload
    /// duplicate claims or wrong JSON types. DEVELOPMENT AND TESTS ONLY: for
    /// hostile-input tests of validators. Use [`DevAuthority::signing_kid`] for a `kid`
    /// that names the key.
    pub fn sign_raw(&self, header_json: &str, payload_json: &str) -> Result<String, Error> {
        self.shared.state.sign_raw(header_json, payload_json)
    }

    /// Publishes a new signing key next to the current one and signs with it from now on;
    /// any older key is retired.
    pub fn rotate_keys(&self) -> Result<KeyRotation, Error> {
        self.shared.state.rotate_keys()
    }

    /// Retires all published keys except the signing one.
    pub fn retire_previous_keys(&self) -> Result<KeyRotation, Error> {
        self.shared.state.retire_previous_keys()
    }

    /// The `kid` that signs new tokens.
    pub fn signing_kid(&self) -> String {
        self.shared.state.published_kids().pop().unwrap_or_default()
    }

    /// Fault injection for the endpoints.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Token-endpoint requests received since start or [`DevAuthority::reset_stats`].
    pub fn token_requests(&self) -> u64 {
        self.shared.counters.snapshot().token_requests
    }

    /// All token-endpoint counters.
    pub fn stats(&self) -> TokenStats {
        self.shared.counters.snapshot()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.shared.counters.reset();
    }

    /// A TLS certificate for another development server (e.g. the gRPC API) signed by this
    /// authority's CA, so one `ca.pem` trusts both.
    pub fn issue_tls_identity(&self, names: &[&str]) -> Result<TlsIdentity, Error> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        self.shared.state.issue_tls_identity(&names)
    }
}

impl Drop for DevAuthority {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for DevAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuthority")
            .field("base_url", &self.shared.base_url)
            .field("state_dir", &self.shared.state.dir())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_host_handles_names_ipv4_and_ipv6() {
        assert_eq!(
            super::url_host("https://localhost:8443").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            super::url_host("https://127.0.0.1:1/x").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            super::url_host("https://[::1]:8443").as_deref(),
            Some("::1")
        );
    }
}
