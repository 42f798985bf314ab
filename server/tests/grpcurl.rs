//! The real `grpcurl` (v1.8.6, which speaks reflection v1alpha only) lists,
//! describes and calls the service through server reflection.

use std::process::Output;

use crate::util::{APP_OID, TEST_CALLER, TestServer, sqlite_store, tool};

fn grpcurl(args: &[&str]) -> Output {
    let bin = tool("TODO_TEST_GRPCURL", "grpcurl");
    std::process::Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "grpcurl failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let addr = server.addr.to_string();
    let caller = format!("{TEST_CALLER}: app:{APP_OID}");

    let addr2 = addr.clone();
    let caller2 = caller.clone();
    tokio::task::spawn_blocking(move || {
        let addr = addr2;
        let caller = caller2;
        let services = stdout(&grpcurl(&["-plaintext", &addr, "list"]));
        for expected in [
            "todo.v1.ToDoService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(services.lines().any(|l| l == expected), "{services}");
        }

        let described = stdout(&grpcurl(&[
            "-plaintext",
            &addr,
            "describe",
            "todo.v1.ToDoService",
        ]));
        for rpc in [
            "rpc CreateToDo ( .todo.v1.CreateToDoRequest ) returns ( .todo.v1.ToDo );",
            "rpc ListToDos ( .todo.v1.ListToDosRequest ) returns ( .todo.v1.ListToDosResponse );",
            "rpc DeleteToDo ( .todo.v1.DeleteToDoRequest ) returns ( .google.protobuf.Empty );",
        ] {
            assert!(described.contains(rpc), "{described}");
        }
        let message = stdout(&grpcurl(&["-plaintext", &addr, "describe", "todo.v1.ToDo"]));
        assert!(message.contains("string etag = 6;"), "{message}");

        let created = stdout(&grpcurl(&[
            "-plaintext",
            "-H",
            &caller,
            "-d",
            r#"{"todo": {"description": "from grpcurl"}}"#,
            &addr,
            "todo.v1.ToDoService/CreateToDo",
        ]));
        let created: serde_json::Value = serde_json::from_str(&created).expect("JSON");
        assert_eq!(created["id"], "1");
        assert_eq!(created["description"], "from grpcurl");
        assert_eq!(created["owner"], APP_OID);

        let listed = stdout(&grpcurl(&[
            "-plaintext",
            "-H",
            &caller,
            "-d",
            "{}",
            &addr,
            "todo.v1.ToDoService/ListToDos",
        ]));
        let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
        assert_eq!(listed["todos"][0]["description"], "from grpcurl");

        let missing = grpcurl(&[
            "-plaintext",
            "-H",
            &caller,
            "-d",
            r#"{"id": 42}"#,
            &addr,
            "todo.v1.ToDoService/GetToDo",
        ]);
        assert!(!missing.status.success());
        let err = String::from_utf8_lossy(&missing.stderr);
        assert!(
            err.contains("NotFound") && err.contains("to-do 42 not found"),
            "{err}"
        );

        let health = stdout(&grpcurl(&[
            "-plaintext",
            "-d",
            r#"{"service": ""}"#,
            &addr,
            "grpc.health.v1.Health/Check",
        ]));
        assert!(health.contains("SERVING"), "{health}");
    })
    .await
    .unwrap();
    server.stop().await;
}
