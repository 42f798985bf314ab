//! Makes the fuzz fixtures and seed corpora from a real dev authority:
//! `fixtures/` (its JWKS, its throwaway signing key, the validation settings
//! and a valid token) and `corpus/<target>/seed-*` (real tokens, malformed
//! variants, encoded requests).
//!
//! Run from the repository root (a normal build, no fuzzing flags):
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```
//!
//! It replaces every fixture and seed at once, so they always agree.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dev_authority::{DevAuthority, defaults};
use prost::Message;
use prost_types::FieldMask;
use serde_json::{Value, json};
use todo_proto::v1::{
    CreateToDoRequest, DeleteToDoRequest, GetToDoRequest, ListToDosRequest, ToDo, UpdateToDoRequest,
};

#[tokio::main]
async fn main() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let authority = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .expect("dev authority");
    let api = authority
        .registrations()
        .api(defaults::TODO_API)
        .expect("default API")
        .client_id
        .to_string();
    let kid = authority.signing_kid();
    let now = time_now() + 60;

    // === fixtures ===
    let jwks = authority.state().jwks(authority.base_url());
    write(&out.join("fixtures/jwks.json"), &pretty(&jwks));
    let stored: Value = serde_json::from_slice(
        &std::fs::read(authority.state_dir().join("signing-keys.json")).expect("key file"),
    )
    .expect("key file JSON");
    let pem = stored["keys"]
        .as_array()
        .and_then(|keys| keys.last())
        .and_then(|key| key["private_key_pem"].as_str())
        .expect("private_key_pem");
    write(&out.join("fixtures/signing-key.pem"), pem.as_bytes());
    let settings = json!({
        "authority": authority.authority_url(),
        "issuer": authority.issuer(),
        "client_id": api,
        "kid": kid,
        "now": now,
    });
    write(&out.join("fixtures/validation.json"), &pretty(&settings));
    let daemon = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    write(&out.join("fixtures/daemon.token"), daemon.as_bytes());

    // === token: whole tokens and header values ===
    let claims = serde_json::to_value(
        authority
            .claims_for(defaults::DAEMON_CLIENT, defaults::TODO_API)
            .unwrap(),
    )
    .unwrap();
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": kid});
    let signed = |header: &Value, claims: &Value| {
        authority
            .sign_raw(&header.to_string(), &claims.to_string())
            .unwrap()
    };
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = claims.clone();
        edit(c.as_object_mut().unwrap());
        c
    };
    let header_with = |key: &str, value: Value| {
        let mut h = header.clone();
        h[key] = value;
        h
    };
    let reader = authority
        .mint_token(defaults::READER_CLIENT, defaults::TODO_API)
        .unwrap();
    let (signed_part, signature) = daemon.rsplit_once('.').unwrap();
    let unsigned = |h: &Value| format!("{}.{}.", b64(h.to_string()), b64(claims.to_string()));
    let hs256 = {
        let secret = jwks["keys"][0]["n"].as_str().unwrap().as_bytes();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap()
    };
    let tokens: Vec<(&str, String)> = vec![
        ("daemon", daemon.clone()),
        ("reader", reader.clone()),
        ("bearer-daemon", format!("Bearer {daemon}")),
        ("bearer-lowercase", format!("bearer {reader}")),
        ("basic-scheme", "Basic ZGFlbW9uOnNlY3JldA==".into()),
        ("bearer-empty", "Bearer ".into()),
        (
            "expired",
            signed(
                &header,
                &with(&|c| {
                    c.insert("exp".into(), json!(now - 3600));
                }),
            ),
        ),
        (
            "not-yet-valid",
            signed(
                &header,
                &with(&|c| {
                    c.insert("nbf".into(), json!(now + 3600));
                }),
            ),
        ),
        (
            "exp-string",
            signed(
                &header,
                &with(&|c| {
                    c.insert("exp".into(), json!((now + 3600).to_string()));
                }),
            ),
        ),
        (
            "exp-float",
            signed(
                &header,
                &with(&|c| {
                    c.insert("exp".into(), json!(now as f64 + 3600.5));
                }),
            ),
        ),
        (
            "other-audience",
            signed(
                &header,
                &with(&|c| {
                    c.insert("aud".into(), json!("00000003-0000-0000-c000-000000000000"));
                }),
            ),
        ),
        (
            "audience-array",
            signed(
                &header,
                &with(&|c| {
                    c.insert("aud".into(), json!(["other", api.clone()]));
                }),
            ),
        ),
        (
            "other-tenant",
            signed(
                &header,
                &with(&|c| {
                    let other = "72f988bf-86f1-41af-91ab-2d7cd011db47";
                    let iss = c["iss"]
                        .as_str()
                        .unwrap()
                        .replace(&c["tid"].as_str().unwrap().to_owned(), other);
                    c.insert("tid".into(), json!(other));
                    c.insert("iss".into(), json!(iss));
                }),
            ),
        ),
        (
            "roles-string",
            signed(
                &header,
                &with(&|c| {
                    c.insert("roles".into(), json!("ToDoList.ReadWrite.All"));
                }),
            ),
        ),
        (
            "no-roles",
            signed(
                &header,
                &with(&|c| {
                    c.remove("roles");
                }),
            ),
        ),
        (
            "duplicate-aud",
            authority
                .sign_raw(
                    &header.to_string(),
                    &claims
                        .to_string()
                        .replacen('{', "{\"aud\":\"someone-else\",", 1),
                )
                .unwrap(),
        ),
        ("alg-none", unsigned(&header_with("alg", json!("none")))),
        ("hs256-public-key", hs256),
        (
            "jku",
            signed(
                &header_with("jku", json!("https://evil.example/keys")),
                &claims,
            ),
        ),
        (
            "x5u",
            signed(
                &header_with("x5u", json!("https://evil.example/cert")),
                &claims,
            ),
        ),
        (
            "jwk",
            signed(&header_with("jwk", jwks["keys"][0].clone()), &claims),
        ),
        (
            "x5c",
            signed(&header_with("x5c", jwks["keys"][0]["x5c"].clone()), &claims),
        ),
        (
            "crit",
            signed(&header_with("crit", json!(["exp"])), &claims),
        ),
        (
            "kid-path",
            signed(
                &header_with("kid", json!("../../../../etc/passwd")),
                &claims,
            ),
        ),
        (
            "kid-sql",
            signed(&header_with("kid", json!("' OR '1'='1")), &claims),
        ),
        ("kid-number", signed(&header_with("kid", json!(7)), &claims)),
        (
            "header-string",
            format!(
                "{}.{}.{signature}",
                b64("\"RS256\""),
                b64(claims.to_string())
            ),
        ),
        (
            "tampered",
            format!(
                "{}.{}.{signature}",
                signed_part.split_once('.').unwrap().0,
                b64(with(&|c| {
                    c.insert("roles".into(), json!(["ToDoList.ReadWrite.All"]));
                })
                .to_string())
            ),
        ),
        ("signature-stripped", format!("{signed_part}.")),
        ("jwe", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".into()),
        ("two-parts", "eyJhbGciOiJSUzI1NiJ9.e30".into()),
        ("not-base64", "!!!.e30.sig".into()),
    ];
    let dir = out.join("corpus/token");
    clear_seeds(&dir);
    for (name, token) in &tokens {
        write(&dir.join(format!("seed-{name}")), token.as_bytes());
    }

    // === claims: "header\nclaims", signed by the harness ===
    let dir = out.join("corpus/claims");
    clear_seeds(&dir);
    let pairs: Vec<(&str, Value, Value)> = vec![
        ("valid", header.clone(), claims.clone()),
        (
            "user-token",
            header.clone(),
            with(&|c| {
                c.remove("roles");
                c.remove("idtyp");
                c.insert("scp".into(), json!("ToDoList.Read"));
            }),
        ),
        (
            "v1-appid",
            header.clone(),
            with(&|c| {
                let azp = c.remove("azp").unwrap();
                c.insert("appid".into(), azp);
            }),
        ),
        (
            "exp-huge",
            header.clone(),
            with(&|c| {
                c.insert("exp".into(), json!(i64::MAX));
            }),
        ),
        (
            "nbf-negative",
            header.clone(),
            with(&|c| {
                c.insert("nbf".into(), json!(i64::MIN));
            }),
        ),
        (
            "aud-empty-array",
            header.clone(),
            with(&|c| {
                c.insert("aud".into(), json!([]));
            }),
        ),
        (
            "tid-template",
            header.clone(),
            with(&|c| {
                c.insert("tid".into(), json!("{tenantid}"));
            }),
        ),
    ];
    for (name, h, c) in &pairs {
        write(
            &dir.join(format!("seed-{name}")),
            format!("{h}\n{c}").as_bytes(),
        );
    }
    write(&dir.join("seed-claims-only"), claims.to_string().as_bytes());

    // === jwks ===
    let dir = out.join("corpus/jwks");
    clear_seeds(&dir);
    write(&dir.join("seed-authority"), &pretty(&jwks));
    let key = jwks["keys"][0].clone();
    let variant = |edit: &dyn Fn(&mut Value)| {
        let mut k = key.clone();
        edit(&mut k);
        serde_json::to_vec(&json!({"keys": [k]})).unwrap()
    };
    write(
        &dir.join("seed-short-modulus"),
        &variant(&|k| k["n"] = json!("AQAB")),
    );
    write(&dir.join("seed-ec"), &variant(&|k| k["kty"] = json!("EC")));
    write(
        &dir.join("seed-enc"),
        &variant(&|k| k["use"] = json!("enc")),
    );
    write(
        &dir.join("seed-template-issuer"),
        &variant(&|k| {
            k["issuer"] = json!(
                authority
                    .issuer()
                    .replace(&authority.tenant_id().to_string(), "{tenantid}")
            );
        }),
    );
    write(&dir.join("seed-empty"), b"{\"keys\":[]}");

    // === requests: selector byte + encoded message ===
    // selector bits 0-2: 0 Create, 1 Get, 2 List, 3 Update, 4 Delete;
    // bit 3: user caller (else application); bit 4: raw body (else one gRPC frame).
    let dir = out.join("corpus/requests");
    clear_seeds(&dir);
    let todo = |description: &str, owner: &str| ToDo {
        description: description.into(),
        owner: owner.into(),
        ..Default::default()
    };
    let requests: Vec<(&str, u8, Vec<u8>)> = vec![
        (
            "create",
            0,
            CreateToDoRequest {
                todo: Some(todo("Bake bread", "")),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "create-owner",
            0,
            CreateToDoRequest {
                todo: Some(todo("x", "6a3c0000-0000-4000-8000-000000000001")),
                request_id: "0b7b3e4c-3f7a-4d9e-8a55-2a4f0c3c9d11".into(),
            }
            .encode_to_vec(),
        ),
        (
            "create-bad-owner",
            0,
            CreateToDoRequest {
                todo: Some(todo("x", "not-a-uuid")),
                request_id: "nope".into(),
            }
            .encode_to_vec(),
        ),
        (
            "create-blank",
            8,
            CreateToDoRequest {
                todo: Some(todo(" \t\n ", "")),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "create-long",
            0,
            CreateToDoRequest {
                todo: Some(todo(&"é".repeat(1025), "")),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "create-no-todo",
            0,
            CreateToDoRequest::default().encode_to_vec(),
        ),
        ("get", 1, GetToDoRequest { id: 1 }.encode_to_vec()),
        (
            "get-other-user",
            9,
            GetToDoRequest { id: 1 }.encode_to_vec(),
        ),
        ("get-negative", 1, GetToDoRequest { id: -1 }.encode_to_vec()),
        (
            "list",
            2,
            ListToDosRequest {
                page_size: 1,
                page_token: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "list-token",
            10,
            ListToDosRequest {
                page_size: 5000,
                page_token: URL_SAFE_NO_PAD.encode("v1:1"),
            }
            .encode_to_vec(),
        ),
        (
            "list-bad",
            2,
            ListToDosRequest {
                page_size: -1,
                page_token: "!!".into(),
            }
            .encode_to_vec(),
        ),
        (
            "update",
            3,
            UpdateToDoRequest {
                todo: Some(ToDo {
                    id: 1,
                    description: "Eat bread".into(),
                    etag: "1".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
            }
            .encode_to_vec(),
        ),
        (
            "update-owner-mask",
            3,
            UpdateToDoRequest {
                todo: Some(ToDo {
                    id: 2,
                    description: "x".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["owner".into()],
                }),
            }
            .encode_to_vec(),
        ),
        (
            "update-stale",
            11,
            UpdateToDoRequest {
                todo: Some(ToDo {
                    id: 2,
                    description: "x".into(),
                    etag: "7".into(),
                    ..Default::default()
                }),
                update_mask: None,
            }
            .encode_to_vec(),
        ),
        (
            "delete",
            4,
            DeleteToDoRequest {
                id: 2,
                etag: "1".into(),
            }
            .encode_to_vec(),
        ),
        (
            "delete-bad-etag",
            12,
            DeleteToDoRequest {
                id: 2,
                etag: "x".into(),
            }
            .encode_to_vec(),
        ),
        ("raw-frame", 0x10, {
            let mut frame = vec![0, 0, 0, 0, 4];
            frame.extend(GetToDoRequest { id: 1 }.encode_to_vec());
            frame
        }),
        ("raw-compressed-flag", 0x11, vec![1, 0, 0, 0, 2, 8, 1]),
        ("truncated-varint", 1, vec![8, 0xff, 0xff]),
    ];
    for (name, selector, message) in &requests {
        let mut input = vec![*selector];
        input.extend_from_slice(message);
        write(&dir.join(format!("seed-{name}")), &input);
    }
    println!(
        "wrote fixtures/ and corpus/ ({} token, {} claims, {} request seeds)",
        tokens.len(),
        pairs.len() + 1,
        requests.len()
    );
    authority.shutdown().await;
}

fn b64(text: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(value).unwrap();
    text.push(b'\n');
    text
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Removes the old seeds (not inputs a local run found).
fn clear_seeds(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("seed-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
