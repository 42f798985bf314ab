//! The server behind real Entra token validation, with tokens from the real
//! dev authority over HTTPS: what each kind of caller may do, and what the
//! answers say when it may not.

use std::{sync::Arc, time::Duration};

use dev_authority::{DevAuthority, defaults};
use todo_proto::v1::{
    CreateToDoRequest, ListToDosRequest, ToDo, to_do_service_client::ToDoServiceClient,
};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

use crate::util::sqlite_store;

/// A server behind real Entra validation (see [`protected_server`]).
pub(crate) struct Protected {
    pub(crate) addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Protected {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Protected {
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }
}

pub(crate) fn validation_config(
    authority_url: &str,
    api_client_id: &str,
    ca_pem: &str,
) -> entra_auth::Config {
    let mut config = entra_auth::Config::new(
        entra_auth::Authority::parse(authority_url).expect("authority"),
        api_client_id,
    );
    config.ca_pem = Some(ca_pem.as_bytes().to_vec());
    config.retry_backoff_min = Duration::from_millis(100);
    config.retry_backoff_max = Duration::from_millis(500);
    config
}

/// A server validating tokens of `authority` with the default permission table.
pub(crate) async fn protected_server(config: entra_auth::Config) -> Protected {
    let (store, dir) = sqlite_store().await;
    let validator = entra_auth::Validator::new(config).expect("validator");
    let auth =
        todo_server::app::entra_layer(&validator, todo_server::config::default_permissions());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let ready = {
        let validator = validator.clone();
        Arc::new(move || validator.is_ready())
    };
    tokio::spawn(todo_server::serve(
        listener,
        store,
        auth,
        todo_server::ServeOptions {
            ready: Some(ready),
            readiness_interval: Some(Duration::from_millis(50)),
            ..Default::default()
        },
        async {
            let _ = rx.await;
        },
    ));
    Protected {
        addr,
        stop: Some(tx),
        _dir: dir,
    }
}

pub(crate) fn api_client_id(authority: &DevAuthority) -> String {
    authority
        .registrations()
        .api(defaults::TODO_API)
        .expect("default API")
        .client_id
        .to_string()
}

pub(crate) fn bearer<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

fn create(description: &str) -> CreateToDoRequest {
    CreateToDoRequest {
        todo: Some(ToDo {
            description: description.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) async fn wait_serving(channel: Channel) {
    let mut health = HealthClient::new(channel);
    for _ in 0..200 {
        let status = health
            .check(HealthCheckRequest {
                service: "todo.v1.ToDoService".into(),
            })
            .await
            .expect("health is public")
            .into_inner()
            .status();
        if status == ServingStatus::Serving {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server never became SERVING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_what_each_client_may_do() {
    let authority = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .expect("dev authority");
    let server = protected_server(validation_config(
        &authority.authority_url(),
        &api_client_id(&authority),
        authority.ca_pem(),
    ))
    .await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let mut client = ToDoServiceClient::new(channel);

    // The read-write daemon: full CRUD, owner = its service principal.
    let daemon_token = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    let daemon_oid = authority
        .registrations()
        .client(defaults::DAEMON_CLIENT)
        .unwrap()
        .object_id
        .to_string();
    let created = client
        .create_to_do(bearer(&daemon_token, create("Bake bread")))
        .await
        .expect("daemon may create")
        .into_inner();
    assert_eq!(created.owner, daemon_oid);

    // The read-only client may list but not write.
    let reader_token = authority
        .mint_token(defaults::READER_CLIENT, defaults::TODO_API)
        .unwrap();
    let listed = client
        .list_to_dos(bearer(&reader_token, ListToDosRequest::default()))
        .await
        .expect("reader may list")
        .into_inner();
    assert_eq!(listed.todos, vec![created.clone()]);
    let denied = client
        .create_to_do(bearer(&reader_token, create("not allowed")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("ToDoList.ReadWrite.All"),
        "names the accepted role: {}",
        denied.message()
    );

    // No token: UNAUTHENTICATED with a plain Bearer challenge.
    let anonymous = client
        .list_to_dos(Request::new(ListToDosRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(
        anonymous.metadata().get("www-authenticate").unwrap(),
        "Bearer"
    );

    // Garbage: UNAUTHENTICATED with invalid_token and a reason.
    let garbage = client
        .list_to_dos(bearer("not.a.jwt", ListToDosRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
    let challenge = garbage
        .metadata()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(garbage.get_details_error_info().is_some());

    // Nothing the refused calls sent was stored.
    let all = client
        .list_to_dos(bearer(&daemon_token, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.todos.len(), 1);
    authority.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_another_authority_are_rejected() {
    let ours = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .unwrap();
    let theirs = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .unwrap();
    let server = protected_server(validation_config(
        &ours.authority_url(),
        &api_client_id(&ours),
        ours.ca_pem(),
    ))
    .await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let mut client = ToDoServiceClient::new(channel);
    let foreign = theirs
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    let status = client
        .create_to_do(bearer(&foreign, create("intruder")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let reason = status.get_details_error_info().expect("ErrorInfo").reason;
    assert!(
        ["UNKNOWN_SIGNING_KEY", "INVALID_ISSUER", "INVALID_AUDIENCE"].contains(&reason.as_str()),
        "{reason}"
    );
    assert!(
        !status.message().contains(&foreign),
        "never echoes the token"
    );
    ours.shutdown().await;
    theirs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_waits_for_an_authority_that_starts_late() {
    // Learn a free port and fix the authority's identity in a state folder,
    // then stop it: the server starts while the authority is down.
    let state = tempfile::tempdir().unwrap();
    let first = DevAuthority::start(dev_authority::Config::with_state_dir(state.path()))
        .await
        .unwrap();
    let addr = first.local_addr();
    let url = first.authority_url();
    let api = api_client_id(&first);
    let ca = first.ca_pem().to_owned();
    let token = first
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    first.shutdown().await;

    let server = protected_server(validation_config(&url, &api, &ca)).await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    let mut client = ToDoServiceClient::new(channel.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = health
        .check(HealthCheckRequest {
            service: "todo.v1.ToDoService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::NotServing, "no keys yet");
    let refused = client
        .list_to_dos(bearer(&token, ListToDosRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::Unavailable,
        "fails closed, retryable: {refused:?}"
    );

    let again =
        DevAuthority::start(dev_authority::Config::with_state_dir(state.path()).listen(addr))
            .await
            .unwrap();
    wait_serving(channel).await;
    client
        .list_to_dos(bearer(&token, ListToDosRequest::default()))
        .await
        .expect("works once the authority is back");
    again.shutdown().await;
}

/// A stock Microsoft client library (MSAL for Python) gets a token from the
/// dev authority with a secret and with a certificate, and the server
/// accepts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_tokens_are_accepted() {
    let python = std::env::var("TODO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let authority = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .unwrap();
    let server = protected_server(validation_config(
        &authority.authority_url(),
        &api_client_id(&authority),
        authority.ca_pem(),
    ))
    .await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let mut client = ToDoServiceClient::new(channel);

    let settings = authority.client_settings(defaults::DAEMON_CLIENT).unwrap();
    let cert_path = authority.state_dir().join(defaults::DAEMON_CERT_FILE);
    let key_path = authority.state_dir().join(defaults::DAEMON_KEY_FILE);
    let script = r#"
import os, sys, msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes
cert_pem = open(os.environ["CERT"], "rb").read()
thumbprint = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA1()).hex()
credentials = {
    "secret": os.environ["SECRET"],
    "certificate": {"private_key": open(os.environ["KEY"]).read(), "thumbprint": thumbprint,
                    "public_certificate": cert_pem.decode()},
}
app = msal.ConfidentialClientApplication(
    os.environ["CLIENT_ID"], authority=os.environ["AUTHORITY"],
    client_credential=credentials[sys.argv[1]], instance_discovery=False)
result = app.acquire_token_for_client(scopes=[os.environ["SCOPE"]])
if "access_token" not in result:
    sys.exit("MSAL failed: %s %s" % (result.get("error"), result.get("error_description")))
print(result["access_token"])
"#;
    for kind in ["secret", "certificate"] {
        let out = std::process::Command::new(&python)
            .args(["-c", script, kind])
            .env("AUTHORITY", &settings.authority)
            .env("CLIENT_ID", &settings.client_id)
            .env("SCOPE", &settings.scope)
            .env("SECRET", settings.client_secret.as_ref().unwrap().expose())
            .env("CERT", &cert_path)
            .env("KEY", &key_path)
            .env("REQUESTS_CA_BUNDLE", authority.ca_path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        assert!(
            out.status.success(),
            "MSAL ({kind}) failed (is msal installed? scripts/test.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let created = client
            .create_to_do(bearer(&token, create(&format!("via MSAL ({kind})"))))
            .await
            .unwrap_or_else(|s| panic!("the server refused MSAL's {kind} token: {s:?}"))
            .into_inner();
        assert_eq!(created.description, format!("via MSAL ({kind})"));
    }
    authority.shutdown().await;
}

/// The authority rotates its signing key while calls are running: tokens
/// signed with the new key are accepted within the same request (one forced
/// key refresh), and no call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rollover_under_load_fails_no_call() {
    let authority = Arc::new(
        DevAuthority::start(dev_authority::Config::ephemeral())
            .await
            .unwrap(),
    );
    let server = protected_server(validation_config(
        &authority.authority_url(),
        &api_client_id(&authority),
        authority.ca_pem(),
    ))
    .await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let old_kid = authority.signing_kid();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let authority = Arc::clone(&authority);
            let stop = Arc::clone(&stop);
            let mut client = ToDoServiceClient::new(channel.clone());
            tokio::spawn(async move {
                let (mut calls, mut failures) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::SeqCst) || calls < 50 {
                    // A fresh token each time: after the rotation they carry the new kid.
                    let token = authority
                        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
                        .unwrap();
                    if let Err(status) = client
                        .list_to_dos(bearer(&token, ListToDosRequest::default()))
                        .await
                    {
                        failures.push(status);
                    }
                    calls += 1;
                }
                (calls, failures)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    authority.rotate_keys().unwrap();
    assert_ne!(authority.signing_kid(), old_kid, "signs with the new key");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = 0;
    for worker in workers {
        let (calls, failures) = worker.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed calls during rollover: {failures:?}"
        );
        total += calls;
    }
    assert!(total >= 200, "{total} calls");
}
