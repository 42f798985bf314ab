//! The `todo-authority` binary: `serve` on port 0 with an address file, and the offline
//! `token`, `rotate-keys` and `client-settings` commands against its state folder.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_todo-authority");

fn run(state: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn serve_and_the_offline_commands_share_one_state_folder() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let address_file = dir.path().join("address");
    let mut server = tokio::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(&state)
        .args(["serve", "--listen", "127.0.0.1:0", "--address-file"])
        .arg(&address_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut base = String::new();
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&address_file)
            && text.ends_with('\n')
        {
            base = text.trim().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        base.starts_with("https://127.0.0.1:"),
        "address file: {base:?}"
    );

    let ca = std::fs::read(state.join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();

    // client-settings as env lines.
    let env = run(&state, &["client-settings", "daemon"]);
    let get = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing"))
            .to_owned()
    };
    let authority = get("TODO_AUTHORITY");
    assert!(authority.starts_with(&base));
    let (client_id, secret, scope) = (
        get("TODO_CLIENT_ID"),
        get("TODO_CLIENT_SECRET"),
        get("TODO_SCOPE"),
    );
    let json: Value = serde_json::from_str(&run(
        &state,
        &["client-settings", "reader", "--format", "json"],
    ))
    .unwrap();
    assert!(json["AzureAd"]["ClientId"].is_string());

    // A secret from client-settings works against the served endpoint.
    let r = http
        .post(format!("{authority}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", &scope),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // `token` prints only a token whose issuer is the running server's.
    let token = run(&state, &["token"]);
    let token = token.trim();
    assert_eq!(token.lines().count(), 1);
    let c = claims(token);
    assert_eq!(c["iss"], format!("{authority}/v2.0"));
    assert_eq!(c["roles"], serde_json::json!(["ToDoList.ReadWrite.All"]));
    let c = claims(
        run(
            &state,
            &["token", "--client", "reader", "--lifetime-secs", "90"],
        )
        .trim(),
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 90);

    // rotate-keys from the CLI is visible to the running server.
    let before: Value = http
        .get(format!("{authority}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);
    let rotation: Value = serde_json::from_str(&run(&state, &["rotate-keys"])).unwrap();
    let after: Value = http
        .get(format!("{authority}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["keys"].as_array().unwrap().len(), 2);
    assert_eq!(after["keys"][0]["kid"], rotation["signing_kid"]);
    let r: Value = http
        .post(format!("{authority}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", &scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(r["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        Some(rotation["signing_kid"].as_str().unwrap()),
        header.kid.as_deref()
    );
    run(&state, &["rotate-keys", "--retire"]);
    let retired: Value = http
        .get(format!("{authority}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retired["keys"].as_array().unwrap().len(), 1);

    // The banner says DEVELOPMENT ONLY and never prints a secret.
    server.start_kill().unwrap();
    let out = server.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEVELOPMENT ONLY"), "{stderr}");
    assert!(!stderr.contains(&secret));
}

#[test]
fn issue_cert_writes_a_certificate_signed_by_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tls");
    run(
        dir.path(),
        &[
            "issue-cert",
            "--name",
            "localhost",
            "--out-dir",
            out.to_str().unwrap(),
        ],
    );
    let cert = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    assert!(cert.contains("BEGIN CERTIFICATE"));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}
