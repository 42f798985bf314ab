//! The tonic integration through a real gRPC server (tonic-health on 127.0.0.1:0) behind a
//! gate that rejects chosen tokens with UNAUTHENTICATED, either trailers-only (grpc-status
//! in the headers) or in trailers after a 200.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use dev_authority::defaults;
use entra_token_provider::{BearerLayer, Credential, TokenProvider, retry_unauthenticated_once};
use futures::future::BoxFuture;
use http_body_util::{BodyExt as _, Empty};
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::util;

/// How the gate rejects.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reject {
    TrailersOnly,
    InTrailers,
}

/// What the gate saw and which tokens it rejects.
#[derive(Clone, Default)]
struct Gate {
    seen: Arc<Mutex<Vec<String>>>,
    rejected: Arc<Mutex<Vec<(String, Reject)>>>,
    reject_all: Arc<std::sync::atomic::AtomicBool>,
}

impl Gate {
    fn reject(&self, token: &str, how: Reject) {
        self.rejected.lock().unwrap().push((token.to_owned(), how));
    }
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct GateService<S> {
    gate: Gate,
    inner: S,
}

impl<S> tower::Layer<S> for Gate {
    type Service = GateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            gate: self.clone(),
            inner,
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for GateService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let token = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        self.gate.seen.lock().unwrap().push(token.clone());
        let rejected = self
            .gate
            .rejected
            .lock()
            .unwrap()
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, how)| *how)
            .or_else(|| {
                let all = self
                    .gate
                    .reject_all
                    .load(std::sync::atomic::Ordering::SeqCst);
                all.then_some(Reject::TrailersOnly)
            });
        let response = match rejected {
            None if token.is_empty() => {
                Some(tonic::Status::unauthenticated("no token").into_http())
            }
            None => None,
            Some(Reject::TrailersOnly) => {
                Some(tonic::Status::unauthenticated("token revoked").into_http())
            }
            Some(Reject::InTrailers) => {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", "16".parse().unwrap());
                trailers.insert("grpc-message", "token%20revoked".parse().unwrap());
                let body = Empty::<Bytes>::new().with_trailers(async move { Some(Ok(trailers)) });
                Some(
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(tonic::body::Body::new(body))
                        .unwrap(),
                )
            }
        };
        match response {
            Some(response) => Box::pin(async move { Ok(response) }),
            None => Box::pin(self.inner.call(request)),
        }
    }
}

/// Starts tonic-health behind `gate` on 127.0.0.1:0; returns a channel to it.
async fn serve(gate: Gate) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .layer(gate)
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rejected_token_is_replaced_and_the_call_retried_once() {
    let authority = util::start().await;
    let provider = util::secret_provider(&authority);
    let gate = Gate::default();
    let channel = tower::ServiceBuilder::new()
        .layer(BearerLayer::new(provider.clone()))
        .service(serve(gate.clone()).await);
    let client = HealthClient::new(channel);
    let check = || {
        let mut client = client.clone();
        async move { client.check(HealthCheckRequest::default()).await }
    };

    // Every call carries the token; the first waits for it, later ones use the cache.
    check().await.expect("authorised call");
    check().await.expect("authorised call");
    let t1 = provider.token().await.unwrap();
    assert_eq!(gate.seen(), vec![t1.expose_secret().to_owned(); 2]);
    assert_eq!(authority.token_requests(), 1);

    for (round, how) in [Reject::TrailersOnly, Reject::InTrailers]
        .into_iter()
        .enumerate()
    {
        let old = provider.token().await.unwrap();
        gate.reject(old.expose_secret(), how);
        let before = gate.seen().len();
        retry_unauthenticated_once(&provider, check)
            .await
            .unwrap_or_else(|s| panic!("{how:?}: retry with a fresh token failed: {s}"));
        let fresh = provider.token().await.unwrap();
        assert!(!fresh.same_token(&old), "{how:?}");
        assert_eq!(
            gate.seen()[before..],
            [
                old.expose_secret().to_owned(),
                fresh.expose_secret().to_owned()
            ],
            "{how:?}: rejected once, then retried with the fresh token"
        );
        assert_eq!(authority.token_requests(), 2 + round as u64);
    }

    // Without the helper the call fails, but the layer has dropped the token: the next
    // call succeeds with a fresh one.
    let old = provider.token().await.unwrap();
    gate.reject(old.expose_secret(), Reject::TrailersOnly);
    let status = check().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    check().await.expect("the next call fetched a fresh token");
    assert_eq!(authority.token_requests(), 4);

    // Retried only once: if the fresh token is rejected too, the error comes back.
    gate.reject_all
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = gate.seen().len();
    let status = retry_unauthenticated_once(&provider, check)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(gate.seen().len(), seen + 2, "exactly one retry");
    assert_eq!(
        authority.token_requests(),
        5,
        "one fresh token for the one retry"
    );
}

#[tokio::test]
async fn token_failures_become_statuses_and_are_not_retried() {
    let authority = util::start().await;
    let config = util::config(
        &authority,
        defaults::DAEMON_CLIENT,
        Credential::client_secret("not-the-secret-0123456789"),
    );
    let provider = TokenProvider::new(config).unwrap();
    let gate = Gate::default();
    let channel = tower::ServiceBuilder::new()
        .layer(BearerLayer::new(provider.clone()))
        .service(serve(gate.clone()).await);
    let client = HealthClient::new(channel);
    let status = retry_unauthenticated_once(&provider, || {
        let mut client = client.clone();
        async move { client.check(HealthCheckRequest::default()).await }
    })
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("AADSTS7000215"),
        "{}",
        status.message()
    );
    assert!(
        !status.message().contains("not-the-secret"),
        "{}",
        status.message()
    );
    assert_eq!(
        authority.token_requests(),
        1,
        "a credential error is not retried"
    );
    assert!(
        gate.seen().is_empty(),
        "no call reached the server without a token"
    );
}
