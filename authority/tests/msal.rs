//! A stock Microsoft client library, MSAL for Python, acquires tokens unchanged: with a
//! client secret, and with a certificate (SHA-1 thumbprint → RS256/x5t; public
//! certificate → PS256/x5t#S256). Needs `pip install msal` (see the README).

use std::process::Stdio;

use dev_authority::defaults;
use tokio::io::AsyncWriteExt as _;

use crate::util::{start, verify};

const SCRIPT: &str = r#"
import json, sys
try:
    import msal
except ImportError as e:
    print("MSAL_MISSING: %s" % e, file=sys.stderr)
    sys.exit(3)
cfg = json.load(sys.stdin)
key = open(cfg["key_path"]).read()
cert = open(cfg["cert_path"]).read()
def acquire(authority, credential):
    app = msal.ConfidentialClientApplication(
        cfg["client_id"], authority=authority, client_credential=credential,
        instance_discovery=False)
    return app.acquire_token_for_client(scopes=[cfg["scope"]])
out = {
    "secret": acquire(cfg["authority"], cfg["secret"]),
    "secret_by_domain": acquire(cfg["authority_by_domain"], cfg["secret"]),
    "thumbprint": acquire(cfg["authority"], {"private_key": key, "thumbprint": cfg["thumbprint"]}),
    "public_certificate": acquire(cfg["authority"], {"private_key": key, "public_certificate": cert}),
    "wrong_secret": acquire(cfg["authority"], "not-the-secret"),
}
print(json.dumps(out))
"#;

fn python() -> String {
    std::env::var("TODO_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[tokio::test]
async fn msal_python_gets_tokens_with_a_secret_and_with_a_certificate() {
    let python = python();
    let probe = std::process::Command::new(&python)
        .args(["-c", "import msal"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "MSAL for Python is not importable by `{python}` (set TODO_TEST_PYTHON to choose another interpreter): pip install msal, or run the README test command. {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run `{python}` ({e}); set TODO_TEST_PYTHON: pip install msal, or run the README test command"
        ),
    }

    let authority = start().await;
    let settings = authority.client_settings(defaults::DAEMON_CLIENT).unwrap();
    let cfg = serde_json::json!({
        "authority": settings.authority,
        "authority_by_domain": format!("{}/{}", authority.base_url(), authority.tenant_domain()),
        "client_id": settings.client_id,
        "secret": settings.client_secret.as_ref().unwrap().expose(),
        "scope": settings.scope,
        "key_path": settings.private_key_path.as_ref().unwrap(),
        "cert_path": settings.certificate_path.as_ref().unwrap(),
        "thumbprint": settings.certificate_thumbprint.as_ref().unwrap(),
    });
    let mut child = tokio::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .env("REQUESTS_CA_BUNDLE", authority.ca_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(cfg.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("MSAL finishes in time")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed: {stderr}");
    let results: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} / {stderr}", String::from_utf8_lossy(&out.stdout)));

    for (case, azpacr) in [
        ("secret", "1"),
        ("secret_by_domain", "1"),
        ("thumbprint", "2"),
        ("public_certificate", "2"),
    ] {
        let result = &results[case];
        let token = result["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: no token: {result}"));
        assert_eq!(result["token_type"], "Bearer", "{case}");
        let (_, claims) = verify(&authority, token).await;
        assert_eq!(claims.azpacr, azpacr, "{case}");
        assert_eq!(claims.azp, settings.client_id, "{case}");
        assert_eq!(
            claims.roles,
            Some(vec![defaults::READ_WRITE_ROLE.to_owned()]),
            "{case}"
        );
    }
    let wrong = &results["wrong_secret"];
    assert_eq!(wrong["error"], "invalid_client", "{wrong}");
    assert_eq!(wrong["error_codes"], serde_json::json!([7000215]));
    // Every MSAL acquisition hit the token endpoint once: 5 requests.
    assert_eq!(authority.token_requests(), 5);
}
