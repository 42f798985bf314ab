//! Crash safety: every acknowledged create is present after `kill -9` of the
//! server process and a restart on the same database file.
//!
//! The server process is this test binary run again with only
//! [`crash_child`] selected: it serves a real SQLite store on a real socket
//! until it is killed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use todo_proto::v1::{
    CreateToDoRequest, ListToDosRequest, ToDo, to_do_service_client::ToDoServiceClient,
};

use crate::util::{APP_OID, as_caller};

const DB_ENV: &str = "TODO_CRASH_CHILD_DB";
const PORT_FILE_ENV: &str = "TODO_CRASH_CHILD_PORT_FILE";

/// The server half; does nothing unless started by [`start_child`].
#[tokio::test]
#[ignore = "started as a child process by start_child"]
async fn crash_child() {
    let (Some(db), Some(port_file)) = (std::env::var_os(DB_ENV), std::env::var_os(PORT_FILE_ENV))
    else {
        return;
    };
    let db = db.into_string().expect("UTF-8 database URL");
    let store = todo_server::store::open(&db, &Default::default())
        .await
        .expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tmp = PathBuf::from(&port_file).with_extension("tmp");
    std::fs::write(&tmp, port.to_string()).unwrap();
    std::fs::rename(&tmp, &port_file).unwrap();
    todo_server::serve(
        listener,
        store,
        crate::util::test_auth_layer(),
        Default::default(),
        std::future::pending(),
    )
    .await
    .unwrap();
}

/// A server in a process of its own.
pub(crate) struct ChildServer {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts [`crash_child`] in a new process serving the database `db_url`
/// (`sqlite://…` or `postgres://…`); `dir` holds its port file.
pub(crate) fn start_child(db_url: &str, dir: &Path) -> ChildServer {
    let port_file = dir.join(format!("port-{}", rand_suffix()));
    let mut server = ChildServer {
        child: Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash::crash_child", "--ignored", "--nocapture"])
            .env(DB_ENV, db_url)
            .env(PORT_FILE_ENV, &port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child server"),
        port: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let port = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        if let Some(port) = port {
            server.port = port;
            return server;
        }
        // On failure, dropping `server` kills the child.
        assert!(Instant::now() < deadline, "child server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub(crate) async fn client(port: u16) -> ToDoServiceClient<tonic::transport::Channel> {
    ToDoServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_9_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("todo.db").display());
    kill_9_keeps_acknowledged_creates(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_9_postgres() {
    let Some(base) = crate::util::postgres_url() else {
        return;
    };
    let schema = crate::util::PgSchema::create(&base).await;
    let dir = tempfile::tempdir().unwrap();
    kill_9_keeps_acknowledged_creates(&schema.url(), dir.path()).await;
}

async fn kill_9_keeps_acknowledged_creates(db: &str, dir: &Path) {
    let caller = format!("app:{APP_OID}");

    let mut server = start_child(db, dir);
    let channel = client(server.port).await;

    // 16 writers create as fast as they can; the server is killed mid-burst.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let mut client = channel.clone();
            let acked = acked_tx.clone();
            let caller = caller.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let description = format!("writer {w} item {i}");
                    let request = CreateToDoRequest {
                        todo: Some(ToDo {
                            description: description.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    match client.create_to_do(as_caller(&caller, request)).await {
                        Ok(reply) => {
                            let _ = acked.send((reply.into_inner().id, description));
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    drop(acked_tx);

    let mut acked = BTreeMap::new();
    while acked.len() < 300 {
        let (id, description) = acked_rx.recv().await.expect("writers stopped early");
        acked.insert(id, description);
    }
    server.child.kill().expect("kill -9"); // SIGKILL on Unix
    server.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    while let Ok((id, description)) = acked_rx.try_recv() {
        acked.insert(id, description);
    }

    let mut restarted = start_child(db, dir);
    let mut client = client(restarted.port).await;
    let mut stored = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_to_dos(as_caller(
                &caller,
                ListToDosRequest {
                    page_size: 1000,
                    page_token: token,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        stored.extend(page.todos.into_iter().map(|t| (t.id, t.description)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();

    let lost: Vec<_> = acked
        .iter()
        .filter(|(id, description)| stored.get(id) != Some(description))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(stored.len() >= acked.len());
}
