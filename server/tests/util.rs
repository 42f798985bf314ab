//! Shared test helpers: a server on an ephemeral port, a stand-in for the
//! authentication layer, and tool lookup.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use entra_auth::Caller;
use todo_proto::v1::to_do_service_client::ToDoServiceClient;
use todo_server::{AuthLayer, ServeOptions, store::Store};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;
use tower::util::{BoxCloneServiceLayer, MapRequestLayer};

/// Header read by [`test_auth_layer`]: `app:<oid>` or `user:<oid>`.
pub(crate) const TEST_CALLER: &str = "x-test-caller";

/// An app-only caller's object id.
pub(crate) const APP_OID: &str = "11111111-1111-4111-8111-111111111111";
/// A user's object id.
pub(crate) const ALICE: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
/// Another user's object id.
pub(crate) const BOB: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

/// Stands in for the Entra layer in these tests (token validation has its
/// own tests): turns the [`TEST_CALLER`] header into a [`Caller`]. A request
/// without it carries no caller, which the service must refuse.
pub(crate) fn test_auth_layer() -> AuthLayer {
    BoxCloneServiceLayer::new(MapRequestLayer::new(
        |mut req: http::Request<tonic::body::Body>| {
            let caller = req
                .headers()
                .get(TEST_CALLER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(':'))
                .map(|(kind, oid)| Caller {
                    oid: oid.to_owned(),
                    tid: "00000000-0000-4000-8000-000000000000".to_owned(),
                    azp: "test-client".to_owned(),
                    roles: vec!["ToDoList.ReadWrite.All".to_owned()],
                    scopes: Vec::new(),
                    app_only: kind == "app",
                });
            if let Some(caller) = caller {
                req.extensions_mut().insert(caller);
            }
            req
        },
    ))
}

/// A server running in this process.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    /// Starts a server over `store` with the test authentication layer.
    pub(crate) async fn start(store: Arc<dyn Store>) -> Self {
        Self::start_with(store, ServeOptions::default()).await
    }

    /// Starts a server with explicit options.
    pub(crate) async fn start_with(store: Arc<dyn Store>, options: ServeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(todo_server::serve(
            listener,
            store,
            test_auth_layer(),
            options,
            async {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            shutdown: Some(tx),
            task,
        }
    }

    /// A plaintext HTTP/2 channel to the server.
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    /// A ToDo client.
    pub(crate) async fn client(&self) -> ToDoServiceClient<Channel> {
        ToDoServiceClient::new(self.channel().await)
    }

    /// Asks the server to stop and waits until it has drained.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.expect("join").expect("serve");
    }
}

/// Wraps a message in a request made by `caller` (`app:<oid>` / `user:<oid>`).
pub(crate) fn as_caller<T>(caller: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert(TEST_CALLER, caller.parse().expect("ascii"));
    request
}

/// A create request for `description`.
pub(crate) fn create(description: &str) -> todo_proto::v1::CreateToDoRequest {
    todo_proto::v1::CreateToDoRequest {
        todo: Some(todo_proto::v1::ToDo {
            description: description.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Polls the health service until `service` reports `want` (10 s at most).
pub(crate) async fn wait_for_health(
    health: &mut tonic_health::pb::health_client::HealthClient<Channel>,
    service: &str,
    want: tonic_health::pb::health_check_response::ServingStatus,
) {
    let mut last = None;
    for _ in 0..100 {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status();
        if status == want {
            return;
        }
        last = Some(status);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("health of {service:?} stayed {last:?}, expected {want:?}");
}

/// A SQLite store in a fresh temporary folder (kept alive by the returned guard).
pub(crate) async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = todo_server::store::SqliteStore::open(dir.path().join("todo.db"))
        .await
        .expect("open sqlite");
    (Arc::new(store), dir)
}

/// Finds an external tool: the path in `env_var`, else `name` on PATH. Fails
/// the test with instructions when it is missing: these tests never pass by
/// skipping.
pub(crate) fn tool(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} is required by this test but was not found (set {env_var} or put it on \
             PATH); the README's test command, scripts/test.sh, installs it"
        )
    })
}

/// The repository's root folder.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Environment variable naming the PostgreSQL server the tests use, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`.
pub(crate) const POSTGRES_URL_ENV: &str = "TODO_TEST_POSTGRES_URL";

/// The PostgreSQL test server's URL. Without it the PostgreSQL tests skip
/// with a message, except in CI (`CI` set), where they fail.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{POSTGRES_URL_ENV} must be set in CI: the PostgreSQL tests may not skip there")
        }
        _ => {
            eprintln!(
                "SKIPPED: {POSTGRES_URL_ENV} is not set, so this PostgreSQL test did not run \
                 (scripts/test.sh sets it when a server answers on 127.0.0.1:5432)"
            );
            None
        }
    }
}

/// A schema of its own on the test PostgreSQL server; dropped with the guard.
pub(crate) struct PgSchema {
    base_url: String,
    pub(crate) name: String,
}

impl PgSchema {
    /// Creates a fresh, uniquely named schema.
    pub(crate) async fn create(base_url: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "todo_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        );
        let (client, conn) = tokio_postgres::connect(base_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {base_url}: {e}"));
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        Self {
            base_url: base_url.to_owned(),
            name,
        }
    }

    /// A database URL whose connections use only this schema.
    pub(crate) fn url(&self) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}options=-csearch_path%3D{}",
            self.base_url, self.name
        )
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.base_url.clone();
        let name = self.name.clone();
        // Runs on its own thread: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A PostgreSQL store in a fresh schema, or `None` where no test server is
/// configured (outside CI).
pub(crate) async fn postgres_store() -> Option<(Arc<dyn Store>, PgSchema)> {
    let base = postgres_url()?;
    let schema = PgSchema::create(&base).await;
    let store = todo_server::store::PostgresStore::open(
        &schema.url(),
        &todo_server::store::PostgresOptions::default(),
    )
    .await
    .expect("open PostgreSQL store");
    Some((Arc::new(store), schema))
}
