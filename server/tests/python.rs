//! Python stubs generated from `proto/` with grpcio-tools call the server:
//! the path every other language takes.

use crate::util::{APP_OID, TestServer, repo_root, sqlite_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stubs_do_crud() {
    let python = std::env::var("TODO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let out_dir = tempfile::tempdir().unwrap();
    let root = repo_root();

    let addr = server.addr.to_string();
    let out_path = out_dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let generated = std::process::Command::new(&python)
            .current_dir(&root)
            .args(["-m", "grpc_tools.protoc", "-Iproto"])
            .arg(format!("--python_out={}", out_path.display()))
            .arg(format!("--grpc_python_out={}", out_path.display()))
            .arg("proto/todo/v1/todo.proto")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        assert!(
            generated.status.success(),
            "generating Python stubs failed (is grpcio-tools installed? the README's test \
             command, scripts/test.sh, installs it): {}",
            String::from_utf8_lossy(&generated.stderr)
        );
        assert!(out_path.join("todo/v1/todo_pb2_grpc.py").is_file());

        let run = std::process::Command::new(&python)
            .arg(root.join("server/tests/python/crud.py"))
            .arg(&addr)
            .arg(format!("app:{APP_OID}"))
            .env("PYTHONPATH", &out_path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "Python client failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(stdout.contains("python crud ok"), "{stdout}");
    })
    .await
    .unwrap();
    server.stop().await;
}
