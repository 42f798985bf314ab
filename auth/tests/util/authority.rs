//! A real HTTPS dev authority serving OIDC discovery and a JWKS.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entra_auth::{Authority, Config};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::{CLIENT_ID, TENANT, TENANT_ID, TestKey};

/// A dev authority on `https://127.0.0.1:PORT/{tenant}/v2.0`.
///
/// Its issuer is `https://127.0.0.1:PORT/{TENANT_ID}/v2.0`, as Entra reports
/// the tenant GUID whatever tenant name the authority URL uses.
pub struct TestAuthority {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<State>,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    issuer: Mutex<String>,
    jwks: Mutex<Vec<Value>>,
    down: AtomicBool,
    delay_ms: AtomicU64,
    metadata_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

impl TestAuthority {
    /// Starts an authority publishing `keys` (JWKS keys without `issuer`).
    pub async fn start(keys: &[&TestKey]) -> Self {
        let (ca_pem, acceptor) = tls();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        *state.issuer.lock().unwrap() = format!("https://{addr}/{TENANT_ID}/v2.0");
        let authority = TestAuthority {
            addr,
            ca_pem,
            state: Arc::clone(&state),
            server: tokio::spawn(serve(listener, acceptor, state)),
        };
        authority.publish(keys);
        authority
    }

    /// The authority URL a server would be configured with.
    pub fn authority(&self) -> Authority {
        Authority::parse(&format!("https://{}/{TENANT}/v2.0", self.addr)).unwrap()
    }

    /// The issuer tokens must carry.
    pub fn issuer(&self) -> String {
        format!("https://{}/{TENANT_ID}/v2.0", self.addr)
    }

    /// PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A validator configuration for this authority with test-friendly timings:
    /// no background refresh during a test, fast retries.
    pub fn config(&self) -> Config {
        let mut config = Config::new(self.authority(), CLIENT_ID);
        config.ca_pem = Some(self.ca_pem.clone().into_bytes());
        config.refresh_interval = Duration::from_secs(3600);
        config.refresh_jitter = Duration::ZERO;
        config.retry_backoff_min = Duration::from_millis(50);
        config.retry_backoff_max = Duration::from_millis(200);
        config.http_timeout = Duration::from_secs(5);
        config
    }

    /// Replaces the published keys.
    pub fn publish(&self, keys: &[&TestKey]) {
        self.publish_jwks(keys.iter().map(|k| k.jwk(None)).collect());
    }

    /// Replaces the published JWKS entries verbatim.
    pub fn publish_jwks(&self, jwks: Vec<Value>) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    /// Sets the metadata `issuer` (e.g. a `{tenantid}` template).
    pub fn set_metadata_issuer(&self, issuer: &str) {
        *self.state.issuer.lock().unwrap() = issuer.to_owned();
    }

    /// Down: new connections are dropped and requests answer 503.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Delays every answer (to make concurrent fetches overlap).
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// JWKS documents served so far.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Metadata documents served so far.
    pub fn metadata_fetches(&self) -> usize {
        self.state.metadata_fetches.load(Ordering::SeqCst)
    }
}

impl Drop for TestAuthority {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn tls() -> (String, TlsAcceptor) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "entra-auth test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), TlsAcceptor::from(Arc::new(config)))
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        if state.down.load(Ordering::SeqCst) {
            drop(tcp);
            continue;
        }
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(answer(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn answer<B>(state: &State, req: Request<B>) -> Response<Full<Bytes>> {
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if state.down.load(Ordering::SeqCst) {
        return respond(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"}));
    }
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = req.uri().path();
    if let Some(tenant) = path.strip_suffix("/v2.0/.well-known/openid-configuration") {
        state.metadata_fetches.fetch_add(1, Ordering::SeqCst);
        let issuer = state.issuer.lock().unwrap().clone();
        return respond(
            StatusCode::OK,
            json!({
                "issuer": issuer,
                "jwks_uri": format!("https://{host}{tenant}/discovery/v2.0/keys"),
                "token_endpoint": format!("https://{host}{tenant}/oauth2/v2.0/token"),
                "id_token_signing_alg_values_supported": ["RS256"],
            }),
        );
    }
    if path.ends_with("/discovery/v2.0/keys") {
        state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        let keys = state.jwks.lock().unwrap().clone();
        return respond(StatusCode::OK, json!({ "keys": keys }));
    }
    respond(StatusCode::NOT_FOUND, json!({"error": "not_found"}))
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}
