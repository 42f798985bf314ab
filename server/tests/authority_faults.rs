//! Faults of the authority while the server runs (issue #8): a key rollover
//! the server could not see because the authority went down, and an outage
//! longer than a token's lifetime. (An authority that is down when the server
//! starts is `auth::server_waits_for_an_authority_that_starts_late`.)
//!
//! The outcomes are the table in docs/failure-modes.md.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use dev_authority::{DevAuthority, Fault, FaultEndpoint, defaults};
use todo_proto::v1::{ListToDosRequest, to_do_service_client::ToDoServiceClient};
use tonic::{Code, Status};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

use crate::auth::{api_client_id, bearer, protected_server, validation_config, wait_serving};
use crate::util::create;

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The `exp` claim of a token (read, not verified).
fn exp(token: &str) -> i64 {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_i64().unwrap()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn health(channel: tonic::transport::Channel) -> ServingStatus {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "todo.v1.ToDoService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Daemon settings for `client` of `authority`, failing fast when the
/// authority cannot be reached.
fn daemon_config(
    authority: &DevAuthority,
    server: std::net::SocketAddr,
) -> todo_client::DaemonConfig {
    let settings = authority.client_settings(defaults::DAEMON_CLIENT).unwrap();
    todo_client::DaemonConfig {
        server: format!("http://{server}"),
        server_ca_file: None,
        tls_client_identity: None,
        tokens: entra_token_provider::Config::new(
            entra_auth::Authority::parse(&settings.authority).unwrap(),
            settings.client_id.clone(),
            entra_token_provider::Credential::client_secret(
                settings.client_secret.as_ref().unwrap().expose(),
            ),
            settings.scope.clone(),
        )
        .with_ca_pem(authority.ca_pem().as_bytes().to_vec())
        .with_retry(
            entra_token_provider::RetryPolicy::attempts(2)
                .with_backoff(Duration::from_millis(50), Duration::from_millis(100)),
        ),
    }
}

/// The authority publishes a new key and signs with it, then its JWKS
/// endpoint fails (HTTP 503) before the server has fetched the new key;
/// discovery and the token endpoint keep working, so clients still get
/// tokens, signed with the new key.
///
/// Decision: a token naming a key the server cannot fetch is refused
/// UNAVAILABLE / `KEYS_UNAVAILABLE` (fail closed, retryable), not
/// UNAUTHENTICATED: the token is most likely valid, the fault is the
/// server's dependency, and a client that re-authenticates would only get
/// another token with the same key. Old-key tokens keep working; once the
/// authority answers, the new key is fetched by the next call that needs it
/// (after the retry backoff, not the 5-minute forced-refresh rate limit), and
/// the daemon, which retries UNAVAILABLE, rides the outage out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rollover_during_an_authority_outage_fails_closed_then_recovers() {
    let authority = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .unwrap();
    // Forced-refresh rate limit: the default (5 min). Retry backoff 100–500 ms.
    let server = protected_server(validation_config(
        &authority.authority_url(),
        &api_client_id(&authority),
        authority.ca_pem(),
    ))
    .await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let mut client = ToDoServiceClient::new(channel.clone());
    let old = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    let old_unused = authority
        .mint_token(defaults::READER_CLIENT, defaults::TODO_API)
        .unwrap();
    let seeded = client
        .create_to_do(bearer(&old, create("before the rollover")))
        .await
        .unwrap()
        .into_inner();
    let old_kid = authority.signing_kid();

    authority.rotate_keys().unwrap();
    authority
        .faults()
        .inject(Fault::unavailable().on(FaultEndpoint::Keys));
    assert_ne!(authority.signing_kid(), old_kid);
    let new = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();

    // New key: refused, retryable, never UNAUTHENTICATED or a write.
    for _ in 0..3 {
        let refused = client
            .create_to_do(bearer(&new, create("during the outage")))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        assert_eq!(reason(&refused), "KEYS_UNAVAILABLE", "{refused:?}");
        assert!(refused.metadata().get("www-authenticate").is_none());
        assert!(refused.message().contains("retry"), "{}", refused.message());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Old key: still verifies (a token the server has not seen before).
    client
        .list_to_dos(bearer(&old_unused, ListToDosRequest::default()))
        .await
        .expect("old-key tokens keep working during the outage");
    assert_eq!(health(channel.clone()).await, ServingStatus::Serving);
    let listed = client
        .list_to_dos(bearer(&old, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .todos;
    assert_eq!(listed, vec![seeded], "nothing was written");

    // The daemon gets a new-key token (the token endpoint is up) and retries
    // UNAVAILABLE with backoff (about 10 s): it rides out a short outage.
    let daemon = todo_client::Daemon::connect(
        &daemon_config(&authority, server.addr),
        entra_token_provider::TokenProvider::new(daemon_config(&authority, server.addr).tokens)
            .unwrap(),
    )
    .await
    .unwrap();
    let add = tokio::spawn(async move { daemon.add("after the outage").await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if add.is_finished() {
        panic!("the daemon gave up during the outage: {:?}", add.await);
    }

    authority.faults().clear();
    let added = tokio::time::timeout(Duration::from_secs(15), add)
        .await
        .expect("daemon finishes once the authority is back")
        .unwrap()
        .expect("the daemon's call succeeds after the outage");
    assert_eq!(added.description, "after the outage");
    client
        .list_to_dos(bearer(&new, ListToDosRequest::default()))
        .await
        .expect("the new key is known");
    authority.shutdown().await;
}

/// The authority goes away (its process stops) for longer than a token
/// lives. Tokens already issued keep validating on the cached keys until they
/// expire, then are UNAUTHENTICATED / `TOKEN_EXPIRED`; the server stays ready
/// (its keys are fine); a daemon cannot get a new token and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authority_outage_longer_than_a_token_lifetime() {
    let authority = DevAuthority::start(
        dev_authority::Config::ephemeral().token_lifetime(Duration::from_secs(8)),
    )
    .await
    .unwrap();
    let mut config = validation_config(
        &authority.authority_url(),
        &api_client_id(&authority),
        authority.ca_pem(),
    );
    // No skew, so expiry is visible within the test; the server refreshes
    // (and fails to) every 300 ms during the outage.
    config.clock_skew = Duration::ZERO;
    config.refresh_interval = Duration::from_millis(300);
    config.refresh_jitter = Duration::ZERO;
    let server = protected_server(config).await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let mut client = ToDoServiceClient::new(channel.clone());
    let tokens: Vec<String> = (0..3)
        .map(|_| {
            authority
                .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
                .unwrap()
        })
        .collect();
    let seeded = client
        .create_to_do(bearer(&tokens[0], create("before the outage")))
        .await
        .unwrap()
        .into_inner();
    let daemon_config = daemon_config(&authority, server.addr);
    // To look at the store at the end: a long-lived token of the same key.
    let mut long_lived = authority
        .claims_for(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    long_lived.exp = long_lived.iat + 3600;
    let long_lived = authority.sign_claims(&long_lived).unwrap();
    let expires = tokens.iter().map(|t| exp(t)).max().unwrap();

    authority.shutdown().await;
    tokio::time::sleep(Duration::from_millis(700)).await; // a few failed refreshes
    for token in &tokens[1..] {
        assert!(unix_now() < expires, "the test machine is too slow");
        client
            .list_to_dos(bearer(token, ListToDosRequest::default()))
            .await
            .expect("issued tokens validate on the last known keys");
    }
    assert_eq!(health(channel.clone()).await, ServingStatus::Serving);

    // Past expiry (no skew): refused as expired, nothing written.
    let wait = (expires + 1 - unix_now()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    for token in &tokens {
        let refused = client
            .create_to_do(bearer(token, create("with an expired token")))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert_eq!(reason(&refused), "TOKEN_EXPIRED", "{refused:?}");
    }
    assert_eq!(
        health(channel.clone()).await,
        ServingStatus::Serving,
        "the server itself is fine"
    );

    // A daemon cannot get a new token: it says so, naming what failed.
    let provider = entra_token_provider::TokenProvider::new(daemon_config.tokens.clone()).unwrap();
    let daemon = todo_client::Daemon::connect(&daemon_config, provider)
        .await
        .unwrap();
    let error = daemon.list().await.unwrap_err();
    assert!(
        matches!(error, todo_client::DaemonError::Token(_)),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("could not get an access token:") && message.contains("unavailable"),
        "{message}"
    );

    let listed = client
        .list_to_dos(bearer(&long_lived, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .todos;
    assert_eq!(listed, vec![seeded], "nothing was written");
}
