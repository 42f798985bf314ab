//! Scale-out on PostgreSQL: several stateless server processes share one
//! database, and a database outage is survived without restarts.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use todo_proto::v1::{GetToDoRequest, ToDo, UpdateToDoRequest};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::Code;
use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};

use crate::{
    crash::{client, start_child},
    util::{APP_OID, PgSchema, TestServer, as_caller, create, postgres_url, wait_for_health},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_database() {
    let Some(base) = postgres_url() else {
        return;
    };
    let schema = PgSchema::create(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let a = start_child(&schema.url(), dir.path());
    let b = start_child(&schema.url(), dir.path());
    let mut ca = client(a.port).await;
    let mut cb = client(b.port).await;
    let caller = format!("app:{APP_OID}");

    // Written through one replica, read through the other.
    let created = ca
        .create_to_do(as_caller(&caller, create("shared")))
        .await
        .unwrap()
        .into_inner();
    let read = cb
        .get_to_do(as_caller(&caller, GetToDoRequest { id: created.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);

    // 50 conflicting updates with the same etag, spread over both replicas:
    // the database lets exactly one win.
    let updates: Vec<_> = (0..50)
        .map(|i| {
            let mut client = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            let caller = caller.clone();
            let etag = created.etag.clone();
            tokio::spawn(async move {
                client
                    .update_to_do(as_caller(
                        &caller,
                        UpdateToDoRequest {
                            todo: Some(ToDo {
                                id: created.id,
                                description: format!("writer {i}"),
                                etag,
                                ..Default::default()
                            }),
                            update_mask: None,
                        },
                    ))
                    .await
            })
        })
        .collect();
    let (mut won, mut aborted) = (0, 0);
    for update in updates {
        match update.await.unwrap() {
            Ok(_) => won += 1,
            Err(status) if status.code() == Code::Aborted => aborted += 1,
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    assert_eq!((won, aborted), (1, 49));

    // Concurrent creates through both replicas never collide.
    let creates: Vec<_> = (0..200)
        .map(|i| {
            let mut client = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            let caller = caller.clone();
            tokio::spawn(async move {
                client
                    .create_to_do(as_caller(&caller, create(&format!("c{i}"))))
                    .await
                    .map(|r| r.into_inner().id)
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for create in creates {
        let id = create.await.unwrap().expect("create");
        assert!(ids.insert(id), "id {id} assigned twice");
    }
    assert_eq!(ids.len(), 200);
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore: a
/// database outage without disturbing other tests that share the server.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let up = Arc::clone(&up);
            let links = Arc::clone(&links);
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound); // refused: the database is "down"
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        Self {
            addr,
            up,
            links,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_unavailable_then_recovers() {
    let Some(base) = postgres_url() else {
        return;
    };
    let schema = PgSchema::create(&base).await;
    let config: tokio_postgres::Config = base.parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let url = format!(
        "postgres://{}@{}/{}?options=-csearch_path%3D{}",
        config.get_user().unwrap_or("postgres"),
        proxy.addr,
        config.get_dbname().unwrap_or("postgres"),
        schema.name
    );
    let store = todo_server::store::PostgresStore::open(
        &url,
        &todo_server::store::PostgresOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(1),
        },
    )
    .await
    .unwrap();
    let server = TestServer::start_with(
        Arc::new(store),
        todo_server::ServeOptions {
            readiness_interval: Some(Duration::from_millis(100)),
            ..Default::default()
        },
    )
    .await;
    let mut todo = server.client().await;
    let mut health = HealthClient::new(server.channel().await);
    let caller = format!("app:{APP_OID}");
    let before = todo
        .create_to_do(as_caller(&caller, create("before the outage")))
        .await
        .unwrap()
        .into_inner();
    wait_for_health(&mut health, "todo.v1.ToDoService", ServingStatus::Serving).await;

    proxy.cut();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let status = todo
            .create_to_do(as_caller(&caller, create("during the outage")))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("PostgreSQL"),
            "{}",
            status.message()
        );
        assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
        let status = todo
            .get_to_do(as_caller(&caller, GetToDoRequest { id: before.id }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    wait_for_health(
        &mut health,
        "todo.v1.ToDoService",
        ServingStatus::NotServing,
    )
    .await;

    proxy.restore();
    // Recovers by itself: no restart, no reconfiguration.
    let mut recovered = None;
    for _ in 0..50 {
        match todo
            .create_to_do(as_caller(&caller, create("after the outage")))
            .await
        {
            Ok(r) => {
                recovered = Some(r.into_inner());
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let after = recovered.expect("the server recovers once the database is back");
    assert!(after.id > before.id);
    for _ in 0..20 {
        todo.get_to_do(as_caller(&caller, GetToDoRequest { id: before.id }))
            .await
            .expect("every call succeeds after recovery");
    }
    wait_for_health(&mut health, "todo.v1.ToDoService", ServingStatus::Serving).await;
    server.stop().await;
}
