//! The server stack, built in one place: limits, TLS, the authentication
//! layer, and the routes (ToDo service, health, reflection).

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tonic::{
    body::Body,
    service::Routes,
    transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::ServingStatus;
use tower::{ServiceBuilder, util::BoxCloneServiceLayer};

use crate::{
    limits::{ClientRateLimit, DeadlineLayer, ShedLayer},
    metrics::MetricsLayer,
    service::ToDoApi,
    store::Store,
};
use todo_proto::v1::to_do_service_server::ToDoServiceServer;

/// Largest request message accepted (64 KiB); larger ones are OUT_OF_RANGE (tonic's code for it).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response message sent (a full page of long descriptions fits).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Largest HTTP/2 header list accepted: room for a 250 KB token, so that an
/// oversized token is refused by the token check with a clear reason.
pub const MAX_HEADER_LIST_BYTES: u32 = 320 * 1024;
/// Concurrent HTTP/2 streams per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// Longest time a call may take before it is ended with DEADLINE_EXCEEDED,
/// unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls in flight before new ones are shed, unless configured.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 1024;

/// Health service name that reports liveness: SERVING while the process
/// serves at all, whatever its dependencies do.
pub const LIVENESS_SERVICE: &str = "liveness";

/// The gRPC health service name of the ToDo service.
pub const SERVICE_NAME: &str = "todo.v1.ToDoService";

/// The authentication layer wrapped around every route: it must put an
/// [`entra_auth::Caller`] into each request it lets through, and answer
/// every other request itself.
pub type AuthLayer =
    BoxCloneServiceLayer<Routes, http::Request<Body>, http::Response<Body>, Infallible>;

/// The production authentication layer: Entra token validation with
/// `validator`, then the per-RPC `permissions` table.
pub fn entra_layer(
    validator: &entra_auth::Validator,
    permissions: entra_auth::Permissions,
) -> AuthLayer {
    BoxCloneServiceLayer::new(validator.layer(permissions))
}

/// Reports whether everything a call needs is ready (for example: signing
/// keys loaded). Polled by the health service.
pub type ReadinessCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// How the server listens, apart from the socket itself.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Serve TLS with this certificate chain and key; plain HTTP/2 when `None`.
    pub tls: Option<Identity>,
    /// Mutual TLS: require client certificates issued by this CA (only with
    /// [`ServeOptions::tls`]). Default: none (tokens alone authenticate).
    pub client_ca: Option<Certificate>,
    /// Extra readiness condition beyond the store answering; `None` means
    /// always ready.
    pub ready: Option<ReadinessCheck>,
    /// How often readiness is re-evaluated (default 1 s).
    pub readiness_interval: Option<Duration>,
    /// Most calls in flight across all connections before new ones are shed
    /// with RESOURCE_EXHAUSTED (default [`DEFAULT_MAX_CONCURRENT_CALLS`]).
    pub max_concurrent_calls: Option<usize>,
    /// Per-client (`azp`) rate limit of ToDo calls: calls per second and
    /// burst. Default: none.
    pub client_rate_limit: Option<(f64, u32)>,
    /// Longest a call may run before it is ended with DEADLINE_EXCEEDED
    /// (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub request_timeout: Option<Duration>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("tls", &self.tls.is_some())
            .field("mutual_tls", &self.client_ca.is_some())
            .field("readiness_interval", &self.readiness_interval)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("client_rate_limit", &self.client_rate_limit)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Serves the ToDo API on `listener` until `shutdown` completes, then stops
/// accepting and waits for in-flight calls to finish.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    auth: AuthLayer,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
        .await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    let readiness = tokio::spawn(track_readiness(
        health,
        Arc::clone(&store),
        options.ready.clone(),
        options.readiness_interval.unwrap_or(Duration::from_secs(1)),
    ));

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(todo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(todo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");

    let rate_limit = options
        .client_rate_limit
        .map(|(per_second, burst)| Arc::new(ClientRateLimit::new(per_second, burst)));
    let todo = ToDoServiceServer::new(ToDoApi::new(store).with_rate_limit(rate_limit))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);

    let routes = Routes::new(todo)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let service = ServiceBuilder::new()
        // Count every call, shed ones included.
        .layer(MetricsLayer)
        // Answer RESOURCE_EXHAUSTED at once beyond the cap: no unbounded queue.
        .layer(ShedLayer::new(
            options
                .max_concurrent_calls
                .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS),
        ))
        // Admitted calls get a deadline (the token check included).
        .layer(DeadlineLayer::new(
            options.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT),
        ))
        // Every route, health and reflection included, sits behind the
        // authentication layer; it decides which paths are public.
        .layer(auth)
        .service(routes);

    // The deadline is DeadlineLayer's (DEADLINE_EXCEEDED with the limit in
    // the message); tonic's own `timeout` would answer CANCELLED.
    let mut server = Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let Some(identity) = options.tls {
        let mut tls = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = options.client_ca {
            tls = tls.client_ca_root(ca);
        }
        server = server.tls_config(tls)?;
    }
    // `serve_with_incoming*` ignores the builder's TCP settings: set
    // TCP_NODELAY on accepted sockets here, or Nagle's algorithm meets the
    // client's delayed ACK and holds small responses back for ~40 ms.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let result = server
        .serve_with_incoming_shutdown(service, incoming, shutdown)
        .await;
    readiness.abort();
    result
}

/// Keeps the health service in step with readiness: SERVING only while the
/// store answers and the extra check (signing keys loaded) passes.
async fn track_readiness(
    health: tonic_health::server::HealthReporter,
    store: Arc<dyn Store>,
    ready: Option<ReadinessCheck>,
    interval: Duration,
) {
    let mut last = None;
    loop {
        let store_ok =
            match tokio::time::timeout(interval.max(Duration::from_secs(1)), store.ping()).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "store is not ready");
                    false
                }
                Err(_) => false,
            };
        let serving = store_ok && ready.as_ref().is_none_or(|check| check());
        if last != Some(serving) {
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status(SERVICE_NAME, status).await;
            health.set_service_status("", status).await;
            tracing::info!(serving, "health status changed");
            last = Some(serving);
        }
        tokio::time::sleep(interval).await;
    }
}
