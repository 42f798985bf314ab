//! Prometheus metrics of the server: every call by service, method and
//! status code, and its latency.
//!
//! Names follow the common gRPC conventions (`grpc_server_handled_total`,
//! `grpc_server_handling_seconds`). Method labels come from a fixed list of
//! known services, so a caller sending random paths cannot grow the number
//! of time series. Without an installed recorder ([`install`]) every
//! recording is a no-op.

use std::{
    net::SocketAddr,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use tower::{Layer, Service};

/// Services whose method names are used as labels; any other path is
/// recorded as service and method `unknown`.
const KNOWN_SERVICES: [&str; 4] = [
    "todo.v1.ToDoService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Latency buckets in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Serves `/metrics` in the Prometheus text format on `listen` and makes
/// this process's recordings visible there.
pub fn install(listen: SocketAddr) -> Result<(), BuildError> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .install()
}

/// Records every call passing through it.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

/// The service built by [`MetricsLayer`].
#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = labels(request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            // Unary errors are trailers-only: the status is in the headers.
            // A response without one succeeded (its status is OK in trailers).
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0),
                Err(_) => tonic::Code::Internal as i32,
            };
            let code = code_label(tonic::Code::from_i32(code));
            metrics::counter!(
                "grpc_server_handled_total",
                "grpc_service" => service,
                "grpc_method" => method,
                "grpc_code" => code,
            )
            .increment(1);
            metrics::histogram!(
                "grpc_server_handling_seconds",
                "grpc_service" => service,
                "grpc_method" => method,
            )
            .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

/// The `grpc_code` label (the code's name, as `Debug` prints it), without
/// formatting or allocating on every call.
fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// `(service, method)` labels of a request path, bounded to known services.
fn labels(path: &str) -> (&'static str, &'static str) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (Some(service), Some(method)) = (parts.next(), parts.next()) else {
        return ("unknown", "unknown");
    };
    let Some(service) = KNOWN_SERVICES.iter().find(|s| **s == service) else {
        return ("unknown", "unknown");
    };
    (service, known_method(method))
}

/// Interns a method name of a known service; bounded because only a few
/// names exist per service (anything odd becomes `unknown`).
fn known_method(method: &str) -> &'static str {
    const METHODS: [&str; 9] = [
        "CreateToDo",
        "GetToDo",
        "ListToDos",
        "UpdateToDo",
        "DeleteToDo",
        "Check",
        "Watch",
        "List",
        "ServerReflectionInfo",
    ];
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_labels_match_debug_names() {
        for n in 0..=16 {
            let code = tonic::Code::from_i32(n);
            assert_eq!(code_label(code), format!("{code:?}"));
        }
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(
            labels("/todo.v1.ToDoService/GetToDo"),
            ("todo.v1.ToDoService", "GetToDo")
        );
        assert_eq!(
            labels("/todo.v1.ToDoService/Nope"),
            ("todo.v1.ToDoService", "unknown")
        );
        assert_eq!(labels("/evil.Service/x"), ("unknown", "unknown"));
        assert_eq!(labels("garbage"), ("unknown", "unknown"));
    }
}
