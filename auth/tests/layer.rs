//! End to end: a real tonic server protected by the layer, a tonic client,
//! a real socket.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use entra_auth::{Caller, ERROR_DOMAIN, Permissions, Requirement, Validator};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::ready_validator;
use crate::util::{DAEMON_ID, TestAuthority, app_claims, now, test_keys};

const CHECK: &str = "/grpc.health.v1.Health/Check";

type Seen = Arc<Mutex<Option<Caller>>>;

/// Serves tonic-health behind the auth layer; records the `Caller` that
/// reached the service.
async fn serve(validator: Validator, permissions: Permissions) -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let seen = Seen::default();
    let record = {
        let seen = seen.clone();
        tower::layer::layer_fn(move |inner| Record {
            inner,
            seen: seen.clone(),
        })
    };
    let stack = tower::ServiceBuilder::new()
        .layer(validator.layer(permissions))
        .layer(record);
    tokio::spawn(async move {
        // Keep the reporter alive with the server.
        let _reporter = _reporter;
        tonic::transport::Server::builder()
            .layer(stack)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (addr, seen)
}

/// Records the `Caller` extension of each request it passes on.
#[derive(Clone)]
struct Record<S> {
    inner: S,
    seen: Seen,
}

impl<S, B> tower::Service<http::Request<B>> for Record<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        *self.seen.lock().unwrap() = request.extensions().get::<Caller>().cloned();
        self.inner.call(request)
    }
}

async fn client(addr: SocketAddr) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

async fn check(addr: SocketAddr, authorization: &[&[u8]]) -> Result<(), Status> {
    let mut client = client(addr).await;
    let mut request = Request::new(HealthCheckRequest::default());
    for value in authorization {
        let value = MetadataValue::try_from(*value).expect("header-safe bytes");
        request.metadata_mut().append("authorization", value);
    }
    client.check(request).await.map(|_| ())
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

fn reason(status: &Status) -> String {
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.domain, ERROR_DOMAIN);
    info.reason
}

fn challenge(status: &Status) -> Option<&str> {
    status
        .metadata()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_through_the_layer() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await;
    let permissions = Permissions::new().no_public_services().rpc(
        CHECK,
        Requirement::roles(["Health.Read"]).or_scopes(["Health.Check"]),
    );
    let (addr, seen) = serve(validator.clone(), permissions).await;
    let issuer = authority.issuer();

    // No token: plain `Bearer` challenge.
    let status = check(addr, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(challenge(&status), Some("Bearer"));
    assert_eq!(reason(&status), "MISSING_TOKEN");
    assert!(
        seen.lock().unwrap().is_none(),
        "rejected calls never reach the service"
    );

    // Expired token: invalid_token with a description.
    let mut claims = app_claims(&issuer);
    claims["exp"] = json!(now() - 3600);
    claims["roles"] = json!(["Health.Read"]);
    let status = check(addr, &[&bearer(&k1.sign(&claims))])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let www = challenge(&status).unwrap();
    assert!(
        www.starts_with("Bearer error=\"invalid_token\", error_description=\"token expired"),
        "{www}"
    );
    assert_eq!(reason(&status), "TOKEN_EXPIRED");

    // Garbled headers.
    let status = check(addr, &[b"Bearer \xff\xfe"]).await.unwrap_err();
    assert_eq!(reason(&status), "INVALID_AUTHORIZATION_HEADER");
    let status = check(addr, &[b"Basic dXNlcjpwYXNz"]).await.unwrap_err();
    assert_eq!(reason(&status), "INVALID_AUTHORIZATION_HEADER");
    let valid = bearer(&k1.sign(&app_claims(&issuer)));
    let status = check(addr, &[&valid, &valid]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "INVALID_AUTHORIZATION_HEADER");

    // Valid token without the role: PERMISSION_DENIED naming what would do.
    let status = check(addr, &[&valid]).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("Health.Read"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("Health.Check"),
        "{}",
        status.message()
    );
    assert_eq!(reason(&status), "INSUFFICIENT_PERMISSION");

    // Valid token with the role: served, and the handler sees the Caller.
    let mut claims = app_claims(&issuer);
    claims["roles"] = json!(["Health.Read"]);
    let token = k1.sign(&claims);
    check(addr, &[&bearer(&token)]).await.unwrap();
    let caller = seen.lock().unwrap().clone().expect("Caller in extensions");
    assert_eq!(caller.azp, DAEMON_ID);
    assert!(caller.app_only);

    // An RPC missing from the table is denied even with a valid token.
    let mut client = client(addr).await;
    let mut request = Request::new(HealthCheckRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let status = client.watch(request).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status), "RPC_NOT_ALLOWED");
}

#[tokio::test]
async fn health_is_public_by_default_and_missing_keys_are_unavailable() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    authority.set_down(true);
    let validator = Validator::new(authority.config()).unwrap();

    // Public: reachable without a token even before keys load.
    let (addr, _) = serve(validator.clone(), Permissions::new()).await;
    check(addr, &[]).await.expect("health is public");

    // Protected, keys not loaded: UNAVAILABLE, not UNAUTHENTICATED.
    let permissions = Permissions::new()
        .no_public_services()
        .rpc(CHECK, Requirement::roles(["ToDoList.Read.All"]));
    let (addr, _) = serve(validator, permissions).await;
    let token = k1.sign(&app_claims(&authority.issuer()));
    let status = check(addr, &[&bearer(&token)]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason(&status), "KEYS_UNAVAILABLE");
    assert_eq!(challenge(&status), None);
}
