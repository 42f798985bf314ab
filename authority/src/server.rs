//! The HTTPS server: the router (built in one function) and a TLS accept loop serving
//! HTTP/1.1 and HTTP/2 (ALPN) until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::aadsts::AadError;
use crate::assertion::ReplayCache;
use crate::faults::{FaultEndpoint, FaultKind};
use crate::stats::Counters;
use crate::{AuthorityState, Faults, TokenLifetime, admin, discovery, token};

/// Everything the handlers share.
pub(crate) struct Shared {
    pub(crate) state: AuthorityState,
    pub(crate) base_url: String,
    pub(crate) lifetime: TokenLifetime,
    pub(crate) replay: Option<ReplayCache>,
    pub(crate) faults: Faults,
    pub(crate) counters: Counters,
}

/// Applies the injected faults for `endpoint`: sleeps for delays, answers for errors.
pub(crate) async fn apply_faults(
    shared: &Shared,
    endpoint: FaultEndpoint,
    headers: &HeaderMap,
) -> Option<Response> {
    let decision = shared.faults.take(endpoint);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let error = match decision.error? {
        FaultKind::TooManyRequests { retry_after_secs } => AadError::throttled(retry_after_secs),
        FaultKind::Unavailable { retry_after_secs } => AadError::unavailable(retry_after_secs),
        FaultKind::Delay { .. } => return None,
    };
    Some(error.into_response(&shared.base_url, headers))
}

/// The whole HTTP surface.
pub(crate) fn router(shared: Arc<Shared>, with_admin: bool) -> Router {
    let mut router = Router::new()
        // OpenID discovery, as MSAL and validators fetch it.
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        // The signing keys.
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys))
        // The client-credentials token endpoint.
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(token::token).fallback(token::not_post),
        )
        // Published in discovery but not implemented: user sign-in is out of scope.
        .route("/{tenant}/oauth2/v2.0/authorize", any(not_supported))
        .route("/{tenant}/oauth2/v2.0/devicecode", any(not_supported))
        .route("/{tenant}/oauth2/v2.0/logout", any(not_supported))
        // Liveness for scripts and compose files.
        .route("/healthz", get(|| async { "ok" }));
    if with_admin {
        // Development-only controls.
        router = router.merge(admin::routes());
    }
    router.fallback(not_found).with_state(shared)
}

async fn not_supported(
    headers: HeaderMap,
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
) -> Response {
    AadError::malformed(
        "user sign-in (authorize, device code, logout) is not implemented by this development authority; use the client-credentials grant",
    )
    .into_response(&s.base_url, &headers)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found: this development authority serves /{tenant}/v2.0/.well-known/openid-configuration, /{tenant}/discovery/v2.0/keys and /{tenant}/oauth2/v2.0/token\n").into_response()
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then drains connections
/// (for at most 5 seconds).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses (JWKS, tokens) must not wait out Nagle's algorithm
        // against the client's delayed ACK (~40 ms).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}
