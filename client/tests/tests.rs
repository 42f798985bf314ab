//! The daemon against the real system: the dev authority and the ToDo
//! server over HTTPS/HTTP2, started on free loopback ports by
//! [`todo_demo::System`]. The binary is run as a user would run it.

use std::{path::Path, process::Output};

use dev_authority::defaults;
use todo_demo::System;

/// The sample's transcript, with the daemon's object id.
fn expected_transcript(oid: &str) -> String {
    let item = |id: u32, message: &str| format!("ID: {id}\nUser ID: {oid}\nMessage: {message}\n");
    [
        "Posting a to-do...\nRetrieving to-do's from server...\nTo-do data:\n".to_owned(),
        item(1, "Bake bread"),
        "Posting a second to-do...\nRetrieving to-do's from server...\nTo-do data:\n".to_owned(),
        item(1, "Bake bread"),
        item(2, "Butter bread"),
        "Deleting a to-do...\nRetrieving to-do's from server...\nTo-do data:\n".to_owned(),
        item(2, "Butter bread"),
        "Editing a to-do...\nRetrieving to-do's from server...\nTo-do data:\n".to_owned(),
        item(2, "Eat bread"),
        "Deleting remaining to-do...\nRetrieving to-do's from server...\n".to_owned(),
        "There are no to-do's in server\n".to_owned(),
    ]
    .concat()
}

fn daemon_oid(system: &System, client: &str) -> String {
    system
        .authority
        .registrations()
        .client(client)
        .unwrap()
        .object_id
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_run_prints_the_samples_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let system = System::start(dir.path()).await.unwrap();
    let config = system.daemon_config(defaults::DAEMON_CLIENT).unwrap();
    let provider = entra_token_provider::TokenProvider::new(config.tokens.clone()).unwrap();
    let daemon = todo_client::Daemon::connect(&config, provider)
        .await
        .unwrap();
    let mut out = Vec::new();
    todo_client::script::scripted_run(&daemon, &mut out)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        expected_transcript(&daemon_oid(&system, defaults::DAEMON_CLIENT))
    );
    assert_eq!(
        system.authority.token_requests(),
        1,
        "one token for the whole run"
    );
    system.stop().await.unwrap();
}

/// Runs the `todo-client` binary with `args` and `env`.
fn todo_client(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_todo-client"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run todo-client")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "todo-client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Flags and environment for a registered client using its secret.
fn secret_env(system: &System, client: &str) -> (Vec<String>, Vec<(String, String)>) {
    let settings = system.authority.client_settings(client).unwrap();
    let ca = system.authority.ca_path().display().to_string();
    let args = vec![
        "--server".into(),
        system.server_url.clone(),
        "--server-ca-file".into(),
        ca.clone(),
        "--authority".into(),
        settings.authority.clone(),
        "--client-id".into(),
        settings.client_id.clone(),
        "--scope".into(),
        settings.scope.clone(),
        "--authority-ca-file".into(),
        ca,
    ];
    let env = vec![(
        "TODO_CLIENT_SECRET".to_owned(),
        settings.client_secret.unwrap().expose().to_owned(),
    )];
    (args, env)
}

fn run(args: &[String], extra: &[&str], env: &[(String, String)]) -> Output {
    let mut all: Vec<&str> = extra.to_vec();
    all.extend(args.iter().map(String::as_str));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    todo_client(&all, &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_does_single_operations() {
    let dir = tempfile::tempdir().unwrap();
    let system = System::start(dir.path()).await.unwrap();
    let (args, env) = secret_env(&system, defaults::DAEMON_CLIENT);
    let oid = daemon_oid(&system, defaults::DAEMON_CLIENT);

    let ran = tokio::task::spawn_blocking(move || {
        let added = stdout(&run(&args, &["add", "Bake bread"], &env));
        assert_eq!(
            added,
            format!("ID: 1\nUser ID: {oid}\nMessage: Bake bread\n")
        );
        let got = stdout(&run(&args, &["get", "1"], &env));
        assert_eq!(got, added);
        let updated = stdout(&run(&args, &["update", "1", "Eat bread"], &env));
        assert!(updated.ends_with("Message: Eat bread\n"), "{updated}");
        let listed = stdout(&run(&args, &["list"], &env));
        assert_eq!(
            listed,
            format!("To-do data:\nID: 1\nUser ID: {oid}\nMessage: Eat bread\n")
        );
        let deleted = stdout(&run(&args, &["delete", "1"], &env));
        assert_eq!(deleted, "Deleted to-do 1\n");
        let missing = stderr(&run(&args, &["get", "1"], &env));
        assert!(
            missing.contains("NotFound") && missing.contains("to-do 1 not found"),
            "{missing}"
        );
        let empty = stdout(&run(&args, &["list"], &env));
        assert_eq!(empty, "There are no to-do's in server\n");
        let token = stdout(&run(&args, &["token"], &env));
        assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
        // The secret never shows up in what the daemon prints.
        let secret = &env[0].1;
        assert!(!token.contains(secret.as_str()));
    });
    ran.await.unwrap();
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_uses_a_certificate_and_the_samples_appsettings() {
    let dir = tempfile::tempdir().unwrap();
    let system = System::start(dir.path()).await.unwrap();
    let settings = system
        .authority
        .client_settings(defaults::DAEMON_CLIENT)
        .unwrap();
    let ca = system.authority.ca_path().display().to_string();
    let state = system.authority.state_dir().to_path_buf();
    let cert = state.join(defaults::DAEMON_CERT_FILE).display().to_string();
    let key = state.join(defaults::DAEMON_KEY_FILE).display().to_string();
    let base = system.authority.base_url().to_owned();
    let tenant = system.authority.tenant_id().to_string();
    let server = system.server_url.clone();
    let appsettings = dir.path().join("appsettings.json");
    write_sample_appsettings(
        &appsettings,
        &format!("{base}/"),
        &tenant,
        &settings.client_id,
        settings.client_secret.as_ref().unwrap().expose(),
        &server,
        &settings.scope,
    );
    let oid = daemon_oid(&system, defaults::DAEMON_CLIENT);

    tokio::task::spawn_blocking(move || {
        let common = ["--server-ca-file", &ca, "--authority-ca-file", &ca];
        // Everything from the sample's file (secret credential, BaseUrl, scope).
        let config = appsettings.display().to_string();
        let mut args = vec!["--config", config.as_str(), "add", "from appsettings"];
        args.extend(common);
        let added = stdout(&todo_client(&args, &[]));
        assert!(added.contains("Message: from appsettings"), "{added}");

        // The file, with a certificate given on the command line instead.
        let mut args = vec![
            "--config",
            config.as_str(),
            "--certificate",
            &cert,
            "--private-key",
            &key,
            "list",
        ];
        args.extend(common);
        let listed = stdout(&todo_client(&args, &[]));
        assert_eq!(
            listed,
            format!("To-do data:\nID: 1\nUser ID: {oid}\nMessage: from appsettings\n")
        );
    })
    .await
    .unwrap();
    assert_eq!(system.authority.token_requests(), 2);
    system.stop().await.unwrap();
}

fn write_sample_appsettings(
    path: &Path,
    instance: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
    base_url: &str,
    scope: &str,
) {
    // The shape of the sample's ToDoListClient/appsettings.json.
    let json = serde_json::json!({
        "AzureAd": {
            "Instance": instance,
            "TenantId": tenant,
            "ClientId": client_id,
            "ClientCredentials": [
                { "SourceType": "ClientSecret", "ClientSecret": secret }
            ]
        },
        "DownstreamApi": {
            "BaseUrl": base_url,
            "RelativePath": "api/todolist",
            "Scopes": [scope]
        },
        "Logging": { "LogLevel": { "Default": "Information" } }
    });
    std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let system = System::start(dir.path()).await.unwrap();
    let (daemon_args, daemon_env) = secret_env(&system, defaults::DAEMON_CLIENT);
    let (reader_args, reader_env) = secret_env(&system, defaults::READER_CLIENT);

    tokio::task::spawn_blocking(move || {
        // The read-only client may list but not add: 403 names the role.
        stdout(&run(&reader_args, &["list"], &reader_env));
        let denied = stderr(&run(&reader_args, &["add", "nope"], &reader_env));
        assert!(denied.contains("PERMISSION_DENIED"), "{denied}");
        assert!(denied.contains("ToDoList.ReadWrite.All"), "{denied}");

        // A wrong secret: the AADSTS code and a hint, never the secret.
        let wrong = vec![(
            "TODO_CLIENT_SECRET".to_owned(),
            "not-the-secret-xyz".to_owned(),
        )];
        let bad = stderr(&run(&daemon_args, &["list"], &wrong));
        assert!(bad.contains("7000215"), "{bad}");
        assert!(!bad.contains("not-the-secret-xyz"), "{bad}");

        // A scope that is not `/.default` is refused before any request.
        let mut args = daemon_args.clone();
        let at = args.iter().position(|a| a == "--scope").unwrap();
        args[at + 1] = "api://x/ToDoList.Read".into();
        let scope = stderr(&run(&args, &["list"], &daemon_env));
        assert!(scope.contains("/.default"), "{scope}");

        // No server: says so, and how to fix it.
        let mut args = daemon_args.clone();
        let at = args.iter().position(|a| a == "--server").unwrap();
        args[at + 1] = "https://localhost:1".into();
        let down = stderr(&run(&args, &["list"], &daemon_env));
        assert!(
            down.contains(
                "could not reach the to-do server at https://localhost:1; is it running?"
            ),
            "{down}"
        );

        // No credential at all.
        let none = stderr(&run(&daemon_args, &["list"], &[]));
        assert!(none.contains("TODO_CLIENT_SECRET"), "{none}");
    })
    .await
    .unwrap();
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_token_is_replaced_once_and_the_401_explained() {
    let dir = tempfile::tempdir().unwrap();
    let system = System::start(dir.path()).await.unwrap();
    // Register a second API and grant the daemon a role on it: its tokens
    // are genuine but meant for another audience.
    let other_uri = "api://other-api".to_owned();
    system
        .authority
        .update_registrations(|r| {
            let mut api = r.apis[0].clone();
            api.name = "other".into();
            api.client_id = uuid_like();
            api.app_id_uri = other_uri.clone();
            r.apis.push(api);
            for client in &mut r.clients {
                let mut grant = client.grants[0].clone();
                grant.api = other_uri.clone();
                client.grants.push(grant);
            }
        })
        .unwrap();
    let (mut args, env) = secret_env(&system, defaults::DAEMON_CLIENT);
    let at = args.iter().position(|a| a == "--scope").unwrap();
    args[at + 1] = format!("{other_uri}/.default");
    let before = system.authority.token_requests();
    let out = tokio::task::spawn_blocking(move || stderr(&run(&args, &["list"], &env)))
        .await
        .unwrap();
    assert!(out.contains("UNAUTHENTICATED"), "{out}");
    assert!(
        out.to_lowercase().contains("audience"),
        "shows the server's description: {out}"
    );
    assert_eq!(
        system.authority.token_requests() - before,
        2,
        "one token, then exactly one fresh token after the 401"
    );
    system.stop().await.unwrap();
}

fn uuid_like() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}
