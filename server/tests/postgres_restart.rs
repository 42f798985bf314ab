//! A real PostgreSQL restart under a running server: calls fail with
//! UNAVAILABLE while the database is down, health says NOT_SERVING, and
//! everything works again afterwards without restarting the server.
//!
//! This is a test binary of its own because it stops the machine's
//! PostgreSQL: cargo runs test binaries one after another, so no other
//! test is using the database meanwhile. It needs `pg_ctlcluster` and the
//! right to use it (root, as in CI); elsewhere it skips with a message.

#[allow(dead_code)]
#[path = "util.rs"]
mod util;

use std::{process::Command, sync::Arc, time::Duration};

use todo_proto::v1::{CreateToDoRequest, ListToDosRequest, ToDo};
use tonic::Code;
use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
use util::{APP_OID, PgSchema, TestServer, as_caller, postgres_url};

/// `pg_ctlcluster VERSION main ACTION`.
fn pg_ctl(action: &str) -> bool {
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        return false;
    };
    let Some(version) = versions
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
    else {
        return false;
    };
    let mut command = Command::new("pg_ctlcluster");
    command.args(["--skip-systemctl-redirect", &version, "main", action]);
    if action == "stop" {
        command.args(["--", "-m", "fast"]);
    }
    command.status().is_ok_and(|s| s.success())
}

/// Starts PostgreSQL again even if the test fails half-way.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        pg_ctl("start");
    }
}

fn can_control_postgres() -> bool {
    Command::new("pg_ctlcluster").arg("--help").output().is_ok()
        && std::fs::metadata("/etc/postgresql").is_ok()
        && Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_a_postgres_restart() {
    let Some(base) = postgres_url() else {
        return;
    };
    if !can_control_postgres() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to restart PostgreSQL (root with pg_ctlcluster)"
        );
        eprintln!("SKIPPED: cannot restart PostgreSQL here (needs root and pg_ctlcluster)");
        return;
    }
    let schema = PgSchema::create(&base).await;
    let store = todo_server::store::PostgresStore::open(
        &schema.url(),
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
    let create = |text: &str| CreateToDoRequest {
        todo: Some(ToDo {
            description: text.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    todo.create_to_do(as_caller(&caller, create("before")))
        .await
        .unwrap();
    util::wait_for_health(&mut health, "todo.v1.ToDoService", ServingStatus::Serving).await;

    let restart = Restart;
    assert!(pg_ctl("stop"), "pg_ctlcluster stop failed");
    let status = todo
        .create_to_do(as_caller(&caller, create("during")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    util::wait_for_health(
        &mut health,
        "todo.v1.ToDoService",
        ServingStatus::NotServing,
    )
    .await;

    assert!(pg_ctl("start"), "pg_ctlcluster start failed");
    drop(restart);
    let mut after = None;
    for _ in 0..100 {
        match todo.create_to_do(as_caller(&caller, create("after"))).await {
            Ok(r) => {
                after = Some(r.into_inner());
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    after.expect("calls succeed again once PostgreSQL is back");
    let all = todo
        .list_to_dos(as_caller(&caller, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let texts: Vec<_> = all.todos.iter().map(|t| t.description.as_str()).collect();
    assert_eq!(texts, ["before", "after"]);
    util::wait_for_health(&mut health, "todo.v1.ToDoService", ServingStatus::Serving).await;
    server.stop().await;
}
