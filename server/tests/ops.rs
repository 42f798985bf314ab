//! What operators rely on: the real `todo-server` binary's metrics, audit
//! log, liveness and graceful stop; load shedding, per-call deadlines,
//! streams per connection and per-client rate limits in front of the store.

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use dev_authority::{DevAuthority, defaults};
use todo_proto::v1::to_do_service_client::ToDoServiceClient;
use todo_server::store::{NewToDo, Store, StoreError, ToDoRecord, Visibility};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::util::{APP_OID, TestServer, as_caller, create, sqlite_store};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exposes_metrics_audit_log_liveness_and_stops_gracefully() {
    let authority = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .unwrap();
    let api = authority
        .registrations()
        .api(defaults::TODO_API)
        .unwrap()
        .client_id
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let log_path = dir.path().join("server.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_todo-server"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .args([
            "--database",
            &format!("sqlite://{}", dir.path().join("todo.db").display()),
        ])
        .args([
            "--authority",
            &format!("{}/v2.0", authority.authority_url()),
        ])
        .args(["--client-id", &api])
        .arg("--authority-ca-file")
        .arg(authority.ca_path())
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start todo-server");

    let channel = {
        let mut attempt = 0;
        loop {
            match tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(e) => {
                    attempt += 1;
                    assert!(attempt < 100, "server did not start: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let mut health = HealthClient::new(channel.clone());
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    assert_eq!(
        health
            .check(check("liveness"))
            .await
            .unwrap()
            .into_inner()
            .status(),
        ServingStatus::Serving
    );
    let mut ready = false;
    for _ in 0..100 {
        let status = health.check(check("")).await.unwrap().into_inner().status();
        if status == ServingStatus::Serving {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "readiness never turned SERVING");

    let token = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    let mut client = ToDoServiceClient::new(channel);
    let mut request = tonic::Request::new(create("audited"));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let created = client.create_to_do(request).await.unwrap().into_inner();
    let refused = client
        .create_to_do(tonic::Request::new(create("anonymous")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let metrics = tokio::task::spawn_blocking(move || http_get(metrics_port, "/metrics"))
        .await
        .unwrap();
    for needle in [
        r#"grpc_server_handled_total{grpc_service="todo.v1.ToDoService",grpc_method="CreateToDo",grpc_code="Ok"} 1"#,
        r#"grpc_server_handled_total{grpc_service="todo.v1.ToDoService",grpc_method="CreateToDo",grpc_code="Unauthenticated"} 1"#,
        r#"grpc_server_handling_seconds_bucket{grpc_service="todo.v1.ToDoService",grpc_method="CreateToDo""#,
        r#"entra_auth_rejections_total{reason="MISSING_TOKEN"} 1"#,
        r#"entra_auth_key_refreshes_total{outcome="ok"}"#,
        r#"entra_auth_token_cache_misses_total 1"#,
        "entra_auth_keys_last_refresh_timestamp_seconds",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in:\n{metrics}");
    }

    // SIGTERM: drains and exits 0.
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = server.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = exited.unwrap_or_else(|| {
        let _ = server.kill();
        panic!("todo-server did not stop on SIGTERM")
    });
    assert!(status.success(), "{status:?}");

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains(&token), "the token must never reach the log");
    let audit: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["target"] == "audit")
        .collect();
    assert_eq!(audit.len(), 1, "one audit line for the one change:\n{log}");
    let fields = &audit[0]["fields"];
    let daemon = authority
        .registrations()
        .client(defaults::DAEMON_CLIENT)
        .unwrap()
        .clone();
    assert_eq!(fields["action"], "create");
    assert_eq!(fields["outcome"], "ok");
    assert_eq!(fields["todo_id"], created.id);
    assert_eq!(fields["azp"], daemon.client_id.to_string());
    assert_eq!(fields["oid"], daemon.object_id.to_string());
    assert_eq!(fields["tid"], authority.tenant_id().to_string());
    assert_eq!(fields["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    authority.shutdown().await;
}

/// A store whose creates take `delay` before they write anything, to hold
/// calls in flight; it records how many were in flight at most.
struct SlowStore {
    inner: Arc<dyn Store>,
    delay: Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl SlowStore {
    async fn new(delay: Duration) -> (Arc<Self>, tempfile::TempDir) {
        let (inner, dir) = sqlite_store().await;
        let store = SlowStore {
            inner,
            delay,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        };
        (Arc::new(store), dir)
    }
}

/// Counts a create in flight for as long as it lives (dropped on cancel too).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for SlowStore {
    async fn create(&self, new: NewToDo) -> Result<ToDoRecord, StoreError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.in_flight);
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.create(new).await
    }
    async fn get(&self, id: i64, v: Visibility) -> Result<ToDoRecord, StoreError> {
        self.inner.get(id, v).await
    }
    async fn list(
        &self,
        v: Visibility,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ToDoRecord>, StoreError> {
        self.inner.list(v, after, limit).await
    }
    async fn update_description(
        &self,
        id: i64,
        v: Visibility,
        d: String,
        e: Option<String>,
    ) -> Result<ToDoRecord, StoreError> {
        self.inner.update_description(id, v, d, e).await
    }
    async fn delete(&self, id: i64, v: Visibility, e: Option<String>) -> Result<(), StoreError> {
        self.inner.delete(id, v, e).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_cap_are_shed_at_once() {
    let (store, _dir) = SlowStore::new(Duration::from_millis(500)).await;
    let server = TestServer::start_with(
        store.clone(),
        todo_server::ServeOptions {
            max_concurrent_calls: Some(3),
            ..Default::default()
        },
    )
    .await;
    let channel = server.channel().await;
    let caller = format!("app:{APP_OID}");
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let mut client = ToDoServiceClient::new(channel.clone());
            let caller = caller.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let result = client
                    .create_to_do(as_caller(&caller, create(&format!("c{i}"))))
                    .await;
                (result, started.elapsed())
            })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            (Ok(_), _) => ok += 1,
            (Err(status), elapsed) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("concurrent calls"),
                    "{}",
                    status.message()
                );
                assert!(
                    elapsed < Duration::from_millis(400),
                    "shed at once, not queued"
                );
                shed += 1;
            }
        }
    }
    assert_eq!((ok, shed), (3, 7));
    // Only the admitted calls wrote anything.
    assert_eq!(store.list(Visibility::All, 0, 100).await.unwrap().len(), 3);
    server.stop().await;
}

/// A request message over the server's limit (`MAX_REQUEST_BYTES`, 64 KiB)
/// is refused before it is decoded, writes nothing, and leaves the
/// connection usable; one just under the limit reaches the service, whose
/// own field check answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_and_write_nothing() {
    let (store, _dir) = SlowStore::new(Duration::ZERO).await;
    let server = TestServer::start_with(store.clone(), todo_server::ServeOptions::default()).await;
    let mut client = server.client().await;
    let caller = format!("app:{APP_OID}");

    let huge = "x".repeat(todo_server::app::MAX_REQUEST_BYTES + 1);
    let status = client
        .create_to_do(as_caller(&caller, create(&huge)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("too large") && status.message().contains("65536"),
        "{}",
        status.message()
    );

    let under = "x".repeat(todo_server::app::MAX_REQUEST_BYTES - 64);
    let status = client
        .create_to_do(as_caller(&caller, create(&under)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("at most 1024"),
        "{}",
        status.message()
    );

    // The same connection still serves, and only this create was written.
    client
        .create_to_do(as_caller(&caller, create("after the big ones")))
        .await
        .unwrap();
    let stored = store.list(Visibility::All, 0, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].description, "after the big ones");
    server.stop().await;
}

/// A call that outlives the server's deadline ends with DEADLINE_EXCEEDED
/// naming the limit, writes nothing, and leaves fast calls alone; a client's
/// own shorter deadline applies too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_deadline_end_and_write_nothing() {
    let (store, _dir) = SlowStore::new(Duration::from_secs(5)).await;
    let server = TestServer::start_with(
        store.clone(),
        todo_server::ServeOptions {
            request_timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let caller = format!("app:{APP_OID}");

    let started = Instant::now();
    let status = client
        .create_to_do(as_caller(&caller, create("too slow")))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("300 ms"), "{}", status.message());
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "ended at the limit, not after the store's 5 s: {elapsed:?}"
    );

    // The client's own deadline, shorter than the server's, is honoured.
    let mut request = as_caller(&caller, create("client deadline"));
    request.set_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let status = client.create_to_do(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(290), "{status:?}");

    // Fast calls pass; the cancelled creates never reached the database.
    let listed = client
        .list_to_dos(as_caller(
            &caller,
            todo_proto::v1::ListToDosRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.todos.is_empty(), "{listed:?}");
    assert_eq!(store.in_flight.load(Ordering::SeqCst), 0, "creates dropped");
    assert!(store.list(Visibility::All, 0, 10).await.unwrap().is_empty());
    server.stop().await;
}

/// One connection carries at most 256 calls at once: the server says so in
/// its HTTP/2 SETTINGS, and a client with 300 calls on one connection gets
/// 256 served concurrently and the rest as streams free up, all of them OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_connection_are_capped() {
    let (store, _dir) = SlowStore::new(Duration::from_millis(400)).await;
    let server = TestServer::start_with(store.clone(), Default::default()).await;

    // What the server announces, read by a bare HTTP/2 client.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (_send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut ping = connection.ping_pong().expect("ping handle");
    tokio::select! {
        pong = ping.ping(h2::Ping::opaque()) => {
            pong.expect("pong");
        }
        result = &mut connection => panic!("connection ended: {result:?}"),
    }
    // The SETTINGS frame precedes the server's answer to the ping.
    assert_eq!(
        connection.max_concurrent_send_streams(),
        todo_server::app::MAX_CONCURRENT_STREAMS as usize
    );

    // What a tonic client on one connection experiences.
    let channel = server.channel().await;
    let caller = format!("app:{APP_OID}");
    const CALLS: usize = 300;
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let mut client = ToDoServiceClient::new(channel.clone());
            let request = as_caller(&caller, create(&format!("s{i}")));
            tokio::spawn(async move { client.create_to_do(request).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every call is served");
    }
    assert_eq!(
        store.peak.load(Ordering::SeqCst),
        todo_server::app::MAX_CONCURRENT_STREAMS as usize,
        "the per-connection stream limit, not the global cap (1024), bounds one connection"
    );
    assert_eq!(
        store.list(Visibility::All, 0, 1000).await.unwrap().len(),
        CALLS
    );
    server.stop().await;
}

#[tokio::test]
async fn per_client_rate_limit() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start_with(
        store,
        todo_server::ServeOptions {
            client_rate_limit: Some((0.5, 3)),
            ..Default::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let caller = format!("app:{APP_OID}");
    for i in 0..3 {
        client
            .create_to_do(as_caller(&caller, create(&format!("ok {i}"))))
            .await
            .unwrap();
    }
    let limited = client
        .create_to_do(as_caller(&caller, create("too many")))
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert!(
        limited.message().contains("rate limit"),
        "{}",
        limited.message()
    );
    server.stop().await;
}

fn spawn_server(
    port: u16,
    db: &std::path::Path,
    authority: &DevAuthority,
    api: &str,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_todo-server"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", &format!("sqlite://{}", db.display())])
        .args([
            "--authority",
            &format!("{}/v2.0", authority.authority_url()),
        ])
        .args(["--client-id", api])
        .arg("--authority-ca-file")
        .arg(authority.ca_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start todo-server")
}

/// The server is killed (`kill -9`) and restarted while the daemon creates
/// to-dos: the daemon rides it out, and its retries create nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_survives_a_server_crash_without_duplicates() {
    let authority = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .unwrap();
    let api = authority
        .registrations()
        .api(defaults::TODO_API)
        .unwrap()
        .client_id
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("todo.db");
    let port = free_port();
    let mut server = spawn_server(port, &db, &authority, &api);

    let settings = authority.client_settings(defaults::DAEMON_CLIENT).unwrap();
    let config = todo_client::DaemonConfig {
        server: format!("http://127.0.0.1:{port}"),
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
        .with_ca_pem(authority.ca_pem().as_bytes().to_vec()),
    };
    let provider = entra_token_provider::TokenProvider::new(config.tokens.clone()).unwrap();
    let mut daemon = None;
    for _ in 0..100 {
        if let Ok(d) = todo_client::Daemon::connect(&config, provider.clone()).await {
            daemon = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let daemon = daemon.expect("server started");

    const TOTAL: usize = 150;
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            for i in 0..TOTAL {
                daemon.add(&format!("item {i}")).await?;
                let _ = acked_tx.send(i);
            }
            Ok::<_, todo_client::DaemonError>(())
        })
    };
    for _ in 0..40 {
        acked_rx.recv().await.expect("writer stopped early");
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut restarted = spawn_server(port, &db, &authority, &api);
    writer
        .await
        .unwrap()
        .expect("the daemon rides out the restart");

    let todos = daemon.list().await.unwrap();
    let mut descriptions: Vec<_> = todos.iter().map(|t| t.description.clone()).collect();
    descriptions.sort();
    descriptions.dedup();
    assert_eq!(descriptions.len(), todos.len(), "no to-do created twice");
    assert_eq!(todos.len(), TOTAL, "every create landed exactly once");
    let _ = restarted.kill();
    let _ = restarted.wait();
    authority.shutdown().await;
}
