//! The state folder: first-start defaults, file modes, persistence across restarts, and
//! changes made on disk (by the CLI or an editor) reaching a running server.

use std::os::unix::fs::PermissionsExt;

use dev_authority::{AuthorityState, Config, DevAuthority, Registrations, defaults};

use crate::util::{daemon, http, post_token};

#[tokio::test]
async fn first_start_writes_the_sample_registration_privately() {
    let dir = tempfile::tempdir().unwrap();
    let authority = DevAuthority::start(Config::with_state_dir(dir.path()))
        .await
        .unwrap();
    let regs = authority.registrations();
    let api = regs.api(defaults::TODO_API).unwrap();
    assert_eq!(api.display_name, "ToDoList API");
    assert_eq!(
        api.app_roles,
        [defaults::READ_ROLE, defaults::READ_WRITE_ROLE]
    );
    assert!(api.emit_idtyp);
    assert_eq!(api.app_id_uri, format!("api://{}", api.client_id));
    let daemon = regs.client(defaults::DAEMON_CLIENT).unwrap();
    assert_eq!(regs.roles(daemon, api), [defaults::READ_WRITE_ROLE]);
    let reader = regs.client(defaults::READER_CLIENT).unwrap();
    assert_eq!(regs.roles(reader, api), [defaults::READ_ROLE]);

    for (file, mode) in [
        ("registrations.toml", 0o600),
        ("ca-key.pem", 0o600),
        ("signing-keys.json", 0o600),
        (defaults::DAEMON_KEY_FILE, 0o600),
        ("ca.pem", 0o644),
    ] {
        let meta = std::fs::metadata(dir.path().join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    assert_eq!(
        std::fs::read_to_string(authority.ca_path()).unwrap(),
        authority.ca_pem()
    );
    assert!(format!("{:?}", authority.client_settings("daemon").unwrap()).contains("[redacted]"));
    authority.shutdown().await;
}

#[tokio::test]
async fn a_restart_keeps_tenant_ca_keys_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let first = DevAuthority::start(Config::with_state_dir(dir.path()))
        .await
        .unwrap();
    let (tenant, ca, kid, regs) = (
        first.tenant_id(),
        first.ca_pem().to_owned(),
        first.signing_kid(),
        first.registrations(),
    );
    first.shutdown().await;
    let second = DevAuthority::start(Config::with_state_dir(dir.path()))
        .await
        .unwrap();
    assert_eq!(second.tenant_id(), tenant);
    assert_eq!(second.ca_pem(), ca);
    assert_eq!(second.signing_kid(), kid);
    assert_eq!(second.registrations(), regs);
    // The restarted server's new TLS certificate chains to the same CA.
    let (id, secret, scope) = daemon(&second);
    let r = post_token(
        &second,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(r.0, 200);
}

#[tokio::test]
async fn changes_on_disk_reach_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let authority = DevAuthority::start(Config::with_state_dir(dir.path()))
        .await
        .unwrap();
    // Another process (the CLI) rotates keys in the same folder.
    let offline = AuthorityState::open(dir.path()).unwrap();
    let rotation = offline.rotate_keys().unwrap();
    let jwks: serde_json::Value = http(&authority)
        .get(authority.endpoints().jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(kids.contains(&rotation.signing_kid));
    assert_eq!(authority.signing_kid(), rotation.signing_kid);

    // An edited registrations file: a new secret for the reader.
    let path = dir.path().join("registrations.toml");
    let mut regs = Registrations::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    regs.clients[1]
        .secrets
        .push(dev_authority::Secret::new("added-by-hand").into());
    std::fs::write(&path, regs.to_toml()).unwrap();
    let id = regs.clients[1].client_id.to_string();
    let scope = regs.apis[0].default_scope();
    let r = post_token(
        &authority,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "added-by-hand"),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.2);

    // A broken edit keeps the last good registrations.
    std::fs::write(&path, "this is [not toml").unwrap();
    let r = post_token(
        &authority,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "added-by-hand"),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(r.0, 200);
}

#[test]
fn the_example_registrations_file_is_valid() {
    let text = include_str!("../registrations.example.toml");
    let regs = Registrations::from_toml(text).expect("example parses");
    regs.validate().expect("example is consistent");
    assert!(regs.client("daemon").is_some());
}

#[test]
fn invalid_registrations_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let state = AuthorityState::open(dir.path()).unwrap();
    let err = state
        .update_registrations(|r| r.clients[0].grants[0].roles.push("Not.A.Role".into()))
        .unwrap_err();
    assert!(err.to_string().contains("Not.A.Role"), "{err}");
    let err = state
        .update_registrations(|r| {
            let dup = r.clients[0].clone();
            r.clients.push(dup)
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("twice") || err.to_string().contains("two clients"),
        "{err}"
    );
}
