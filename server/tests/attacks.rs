//! Hostile callers against the running server (issue #8): a real server on a
//! real socket, real Entra validation, and the real dev authority, whose
//! trusted key signs the forged tokens where an attack needs a valid
//! signature.
//!
//! Every attack tries all three writes (create, update and delete of a
//! seeded to-do) and must be refused each time with the expected code and
//! `google.rpc.ErrorInfo` reason (or at the transport level, for oversized
//! headers); afterwards a valid caller lists the store and finds it exactly
//! as it was.
//!
//! Decisions pinned here (see docs/failure-modes.md, "Hostile input"):
//! - the `Bearer` scheme is case-insensitive (RFC 7235 §2.1, RFC 6750);
//! - `aud` may be a list (RFC 7519 §4.1.3): accepted when it contains this
//!   API, although Entra itself always issues a string;
//! - NumericDates may have fractions (RFC 7519 §2): `exp`/`nbf` floats are
//!   honoured (truncated); strings are refused.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dev_authority::{DevAuthority, defaults};
use serde_json::{Value, json};
use todo_proto::v1::{
    DeleteToDoRequest, ListToDosRequest, ToDo, UpdateToDoRequest,
    to_do_service_client::ToDoServiceClient,
};
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataMap};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

use crate::auth::{
    Protected, api_client_id, bearer, protected_server, validation_config, wait_serving,
};
use crate::util::create;

/// The server under attack, its authority, and what the store held before.
struct Target {
    authority: DevAuthority,
    _server: Protected,
    client: ToDoServiceClient<Channel>,
    /// A valid read-write token (the daemon's).
    daemon: String,
    /// The to-do every attack tries to change or delete.
    seeded: ToDo,
    before: Vec<ToDo>,
}

/// What an attack must get back.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// UNAUTHENTICATED with this ErrorInfo reason and a `www-authenticate` challenge.
    Unauthenticated(&'static str),
    /// PERMISSION_DENIED with this ErrorInfo reason.
    PermissionDenied(&'static str),
    /// Refused below gRPC: HTTP 431 (header list over the limit).
    HeadersTooLarge,
}

/// Puts an attack's credentials on a request.
type Credentials = Box<dyn Fn(&mut MetadataMap)>;

fn token(token: &str) -> Credentials {
    header(format!("Bearer {token}").as_bytes())
}

fn header(value: &[u8]) -> Credentials {
    let value = AsciiMetadataValue::try_from(value).expect("a value HTTP/2 can carry");
    Box::new(move |m| {
        m.insert("authorization", value.clone());
    })
}

impl Target {
    async fn start() -> Self {
        let authority = DevAuthority::start(dev_authority::Config::ephemeral())
            .await
            .expect("dev authority");
        let server = protected_server(validation_config(
            &authority.authority_url(),
            &api_client_id(&authority),
            authority.ca_pem(),
        ))
        .await;
        let channel = server.channel().await;
        wait_serving(channel.clone()).await;
        let mut client = ToDoServiceClient::new(channel);
        let daemon = authority
            .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
            .unwrap();
        let seeded = client
            .create_to_do(bearer(&daemon, create("Bake bread")))
            .await
            .expect("seed")
            .into_inner();
        let mut target = Target {
            authority,
            _server: server,
            client,
            daemon,
            seeded,
            before: Vec::new(),
        };
        target.before = target.list().await;
        target
    }

    /// Everything in the store, as a valid caller sees it.
    async fn list(&mut self) -> Vec<ToDo> {
        self.client
            .list_to_dos(bearer(&self.daemon, ListToDosRequest::default()))
            .await
            .expect("valid caller lists")
            .into_inner()
            .todos
    }

    /// The daemon's claims as JSON, for editing.
    fn claims(&self) -> Value {
        serde_json::to_value(
            self.authority
                .claims_for(defaults::DAEMON_CLIENT, defaults::TODO_API)
                .unwrap(),
        )
        .unwrap()
    }

    /// The usual header: RS256 and the authority's signing `kid`.
    fn header(&self) -> Value {
        json!({"typ": "JWT", "alg": "RS256", "kid": self.authority.signing_kid()})
    }

    /// `header` and `claims` signed by the trusted key, byte for byte.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.authority
            .sign_raw(&header.to_string(), &claims.to_string())
            .unwrap()
    }

    /// The daemon's claims with `edit` applied, signed by the trusted key.
    fn signed_with(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = self.claims();
        edit(claims.as_object_mut().unwrap());
        self.sign(&self.header(), &claims)
    }

    /// Tries every write with `credentials`; returns what was wrong.
    async fn attack(&mut self, credentials: &Credentials, want: Refusal) -> Vec<String> {
        let id = self.seeded.id;
        let mut problems = Vec::new();
        let mut create_request = Request::new(create("written by an attacker"));
        credentials(create_request.metadata_mut());
        let mut update_request = Request::new(UpdateToDoRequest {
            todo: Some(ToDo {
                id,
                description: "changed by an attacker".into(),
                ..Default::default()
            }),
            update_mask: None,
        });
        credentials(update_request.metadata_mut());
        let mut delete_request = Request::new(DeleteToDoRequest {
            id,
            etag: String::new(),
        });
        credentials(delete_request.metadata_mut());
        let answers = [
            (
                "create",
                self.client.create_to_do(create_request).await.err(),
            ),
            (
                "update",
                self.client.update_to_do(update_request).await.err(),
            ),
            (
                "delete",
                self.client
                    .delete_to_do(delete_request)
                    .await
                    .map(|_| ())
                    .err(),
            ),
        ];
        for (rpc, answer) in answers {
            match answer {
                None => problems.push(format!("{rpc} succeeded")),
                Some(status) => {
                    if let Err(problem) = check(&status, want) {
                        problems.push(format!("{rpc}: {problem}"));
                    }
                }
            }
        }
        let after = self.list().await;
        if after != self.before {
            problems.push(format!("store changed: {after:?}"));
        }
        problems
    }

    /// A read with `credentials` must succeed.
    async fn accepted(&mut self, credentials: &Credentials) -> Result<(), String> {
        let mut request = Request::new(ListToDosRequest::default());
        credentials(request.metadata_mut());
        match self.client.list_to_dos(request).await {
            Ok(listed) if listed.get_ref().todos == self.before => Ok(()),
            Ok(listed) => Err(format!("listed {:?}", listed.get_ref().todos)),
            Err(status) => Err(format!("refused: {status:?}")),
        }
    }
}

/// Whether `status` is the refusal `want`, with a challenge and a message
/// that echoes no token.
fn check(status: &Status, want: Refusal) -> Result<(), String> {
    let reason = status.get_details_error_info().map(|info| {
        assert_eq!(info.domain, entra_auth::ERROR_DOMAIN);
        info.reason
    });
    let (code, wanted_reason) = match want {
        Refusal::Unauthenticated(reason) => (Code::Unauthenticated, reason),
        Refusal::PermissionDenied(reason) => (Code::PermissionDenied, reason),
        Refusal::HeadersTooLarge => {
            // Trailers-only answers carry grpc-status; this one is plain HTTP.
            return if status.message().contains("431") && reason.is_none() {
                Ok(())
            } else {
                Err(format!("expected HTTP 431, got {status:?}"))
            };
        }
    };
    if status.code() != code || reason.as_deref() != Some(wanted_reason) {
        return Err(format!(
            "expected {code:?}/{wanted_reason}, got {:?}/{} ({})",
            status.code(),
            reason.unwrap_or_default(),
            status.message()
        ));
    }
    let challenge = status
        .metadata()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let expected = match (want, wanted_reason) {
        (_, "MISSING_TOKEN") => "Bearer",
        (Refusal::Unauthenticated(_), _) => "Bearer error=\"invalid_token\"",
        _ => "Bearer error=\"insufficient_scope\"",
    };
    if !challenge.starts_with(expected) {
        return Err(format!("challenge {challenge:?}"));
    }
    if status.message().len() > 1024
        || !status
            .message()
            .chars()
            .all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(format!(
            "message not short printable ASCII: {:?}",
            status.message()
        ));
    }
    Ok(())
}

/// Runs `cases` against `target`; fails listing every case that went wrong.
async fn run(target: &mut Target, cases: Vec<(&str, Credentials, Refusal)>) {
    let mut report = String::new();
    for (name, credentials, want) in &cases {
        let problems = target.attack(credentials, *want).await;
        if !problems.is_empty() {
            let _ = writeln!(report, "{name} ({want:?}): {problems:#?}");
        }
    }
    assert!(
        report.is_empty(),
        "attacks not refused as expected:\n{report}"
    );
}

/// Forged and tampered tokens: algorithms, key locations, `kid`s, JWS shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused_and_write_nothing() {
    use Refusal::Unauthenticated as U;
    let mut target = Target::start().await;
    let header = target.header();
    let claims = target.claims();
    let with_header = |key: &str, value: Value| {
        let mut h = header.clone();
        h[key] = value;
        h
    };
    let jwks = target.authority.state().jwks(target.authority.base_url());
    let jwk = jwks["keys"][0].clone();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    // Key confusion: HS256 keyed with the RSA public key as published, as a
    // validator that takes the algorithm from the token would verify it.
    let public_key_secrets = [
        jwk["n"].as_str().unwrap().as_bytes().to_vec(),
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            jwk["x5c"][0].as_str().unwrap()
        )
        .into_bytes(),
        STANDARD.decode(jwk["x5c"][0].as_str().unwrap()).unwrap(),
    ];
    let hs256: Vec<String> = public_key_secrets
        .iter()
        .map(|secret| {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.kid = Some(target.authority.signing_kid());
            jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(secret))
                .unwrap()
        })
        .collect();
    let daemon = target.daemon.clone();
    let (signed_part, signature) = daemon.rsplit_once('.').unwrap();
    let elevated = {
        let mut c = claims.clone();
        c["roles"] = json!(["ToDoList.ReadWrite.All", "Admin"]);
        c["oid"] = json!("00000000-0000-4000-8000-000000000666");
        c
    };

    let mut cases: Vec<(&str, Credentials, Refusal)> = vec![
        (
            "alg none, no signature",
            token(&format!(
                "{}.{}.",
                b64(&with_header("alg", json!("none"))),
                b64(&claims)
            )),
            U("UNSUPPORTED_ALGORITHM"),
        ),
        (
            "alg None with the real signature",
            token(&format!(
                "{}.{}.{signature}",
                b64(&with_header("alg", json!("None"))),
                b64(&claims)
            )),
            U("UNSUPPORTED_ALGORITHM"),
        ),
        (
            "alg missing",
            token(&target.sign(&json!({"kid": target.authority.signing_kid()}), &claims)),
            U("UNSUPPORTED_ALGORITHM"),
        ),
        (
            "alg PS256 (same key, other algorithm)",
            token(&target.sign(&with_header("alg", json!("PS256")), &claims)),
            U("UNSUPPORTED_ALGORITHM"),
        ),
        (
            "jku: keys from the attacker",
            token(&target.sign(
                &with_header("jku", json!("https://attacker.example/keys")),
                &claims,
            )),
            U("UNTRUSTED_KEY_LOCATION"),
        ),
        (
            "x5u: certificate from the attacker",
            token(&target.sign(
                &with_header("x5u", json!("https://attacker.example/cert.pem")),
                &claims,
            )),
            U("UNTRUSTED_KEY_LOCATION"),
        ),
        (
            "embedded jwk (even the trusted one)",
            token(&target.sign(&with_header("jwk", jwk.clone()), &claims)),
            U("UNTRUSTED_KEY_LOCATION"),
        ),
        (
            "embedded x5c",
            token(&target.sign(&with_header("x5c", jwk["x5c"].clone()), &claims)),
            U("UNTRUSTED_KEY_LOCATION"),
        ),
        (
            "crit extension",
            token(&target.sign(&with_header("crit", json!(["b64"])), &claims)),
            U("MALFORMED_TOKEN"),
        ),
        (
            "kid: path traversal",
            token(&target.sign(
                &with_header("kid", json!("../../../../etc/passwd")),
                &claims,
            )),
            U("UNKNOWN_SIGNING_KEY"),
        ),
        (
            "kid: SQL",
            token(&target.sign(
                &with_header("kid", json!("x' UNION SELECT key FROM keys --")),
                &claims,
            )),
            U("UNKNOWN_SIGNING_KEY"),
        ),
        (
            "kid: CRLF and escape sequences",
            token(&target.sign(
                &with_header("kid", json!("k\r\nx-injected: 1\u{1b}[2J")),
                &claims,
            )),
            U("UNKNOWN_SIGNING_KEY"),
        ),
        (
            "kid: 10 kB",
            token(&target.sign(&with_header("kid", json!("k".repeat(10_000))), &claims)),
            U("UNKNOWN_SIGNING_KEY"),
        ),
        (
            "kid: empty",
            token(&target.sign(&with_header("kid", json!("")), &claims)),
            U("MISSING_KEY_ID"),
        ),
        (
            "kid: a number",
            token(&target.sign(&with_header("kid", json!(1)), &claims)),
            U("MALFORMED_TOKEN"),
        ),
        (
            "claims changed after signing (privilege escalation)",
            token(&format!(
                "{}.{}.{signature}",
                signed_part.split_once('.').unwrap().0,
                b64(&elevated)
            )),
            U("INVALID_SIGNATURE"),
        ),
        (
            "signature stripped",
            token(&format!("{signed_part}.")),
            U("INVALID_SIGNATURE"),
        ),
        (
            "signature of another token",
            token(&format!(
                "{signed_part}.{}",
                target
                    .authority
                    .mint_token(defaults::READER_CLIENT, defaults::TODO_API)
                    .unwrap()
                    .rsplit_once('.')
                    .unwrap()
                    .1
            )),
            U("INVALID_SIGNATURE"),
        ),
        (
            "encrypted (JWE, 5 parts)",
            token("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"),
            U("MALFORMED_TOKEN"),
        ),
        (
            "header is a JSON string",
            token(&format!(
                "{}.{}.{signature}",
                URL_SAFE_NO_PAD.encode("\"RS256\""),
                b64(&claims)
            )),
            U("MALFORMED_TOKEN"),
        ),
        ("not a JWT", token("opaque-token"), U("MALFORMED_TOKEN")),
    ];
    for (i, forged) in hs256.into_iter().enumerate() {
        let name = [
            "HS256 keyed with n",
            "HS256 keyed with the PEM",
            "HS256 keyed with the DER",
        ][i];
        cases.push((name, token(&forged), U("UNSUPPORTED_ALGORITHM")));
    }
    run(&mut target, cases).await;
    target.authority.shutdown().await;
}

/// Tokens with a valid signature by the trusted key whose claims are wrong,
/// and callers that may not write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validly_signed_but_wrong_tokens_are_refused_and_write_nothing() {
    use Refusal::Unauthenticated as U;
    let mut target = Target::start().await;
    let now = target.claims()["iat"].as_i64().unwrap();
    let tid = target.authority.tenant_id().to_string();
    let other_tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let api = api_client_id(&target.authority);
    let claims_text = target.claims().to_string();
    let reader = target
        .authority
        .mint_token(defaults::READER_CLIENT, defaults::TODO_API)
        .unwrap();

    let cases: Vec<(&str, Credentials, Refusal)> = vec![
        (
            "duplicate aud (someone else's first)",
            token(
                &target
                    .authority
                    .sign_raw(
                        &target.header().to_string(),
                        &claims_text.replacen(
                            '{',
                            "{\"aud\":\"00000003-0000-0000-c000-000000000000\",",
                            1,
                        ),
                    )
                    .unwrap(),
            ),
            U("MALFORMED_TOKEN"),
        ),
        (
            "duplicate roles (elevated last)",
            token(
                &target
                    .authority
                    .sign_raw(
                        &target.header().to_string(),
                        &claims_text.replacen('}', ",\"roles\":[\"Admin\"]}", 1),
                    )
                    .unwrap(),
            ),
            U("MALFORMED_TOKEN"),
        ),
        (
            "another tenant (tid and iss), trusted key",
            token(&target.signed_with(|c| {
                let iss = c["iss"].as_str().unwrap().replace(&tid, other_tid);
                c.insert("tid".into(), json!(other_tid));
                c.insert("iss".into(), json!(iss));
            })),
            U("INVALID_ISSUER"),
        ),
        (
            "another tenant's tid with our iss",
            token(&target.signed_with(|c| {
                c.insert("tid".into(), json!(other_tid));
            })),
            U("INVALID_ISSUER"),
        ),
        (
            "another API (aud: Microsoft Graph)",
            token(&target.signed_with(|c| {
                c.insert("aud".into(), json!("00000003-0000-0000-c000-000000000000"));
            })),
            U("INVALID_AUDIENCE"),
        ),
        (
            "aud as a list without this API",
            token(&target.signed_with(|c| {
                c.insert(
                    "aud".into(),
                    json!(["00000003-0000-0000-c000-000000000000"]),
                );
            })),
            U("INVALID_AUDIENCE"),
        ),
        (
            "aud as an empty list",
            token(&target.signed_with(|c| {
                c.insert("aud".into(), json!([]));
            })),
            U("INVALID_CLAIM"),
        ),
        (
            "expired",
            token(&target.signed_with(|c| {
                c.insert("exp".into(), json!(now - 3600));
            })),
            U("TOKEN_EXPIRED"),
        ),
        (
            "expired (fractional exp)",
            token(&target.signed_with(|c| {
                c.insert("exp".into(), json!(now as f64 - 3600.5));
            })),
            U("TOKEN_EXPIRED"),
        ),
        (
            "not yet valid",
            token(&target.signed_with(|c| {
                c.insert("nbf".into(), json!(now + 3600));
            })),
            U("TOKEN_NOT_YET_VALID"),
        ),
        (
            "not yet valid (fractional nbf)",
            token(&target.signed_with(|c| {
                c.insert("nbf".into(), json!(now as f64 + 3600.5));
            })),
            U("TOKEN_NOT_YET_VALID"),
        ),
        (
            "exp as a string",
            token(&target.signed_with(|c| {
                c.insert("exp".into(), json!((now + 3600).to_string()));
            })),
            U("INVALID_CLAIM"),
        ),
        (
            "nbf as a string",
            token(&target.signed_with(|c| {
                c.insert("nbf".into(), json!(now.to_string()));
            })),
            U("INVALID_CLAIM"),
        ),
        (
            "no exp",
            token(&target.signed_with(|c| {
                c.remove("exp");
            })),
            U("INVALID_CLAIM"),
        ),
        (
            "roles as a string",
            token(&target.signed_with(|c| {
                c.insert("roles".into(), json!("ToDoList.ReadWrite.All"));
            })),
            U("INVALID_CLAIM"),
        ),
        (
            "no roles and no scp",
            token(&target.signed_with(|c| {
                c.remove("roles");
            })),
            U("MISSING_ROLES"),
        ),
        (
            "empty roles",
            token(&target.signed_with(|c| {
                c.insert("roles".into(), json!([]));
            })),
            U("MISSING_ROLES"),
        ),
        (
            "unknown role only",
            token(&target.signed_with(|c| {
                c.insert("roles".into(), json!(["Admin"]));
            })),
            Refusal::PermissionDenied("INSUFFICIENT_PERMISSION"),
        ),
        (
            "read-only role on write RPCs",
            token(&reader),
            Refusal::PermissionDenied("INSUFFICIENT_PERMISSION"),
        ),
        (
            "read-only delegated scope on write RPCs",
            token(&target.signed_with(|c| {
                c.remove("roles");
                c.remove("idtyp");
                c.insert("scp".into(), json!("ToDoList.Read"));
            })),
            Refusal::PermissionDenied("INSUFFICIENT_PERMISSION"),
        ),
    ];
    run(&mut target, cases).await;

    // Lenient, by decision (see the module docs): all signed by the trusted key.
    let accepted: Vec<(&str, Credentials)> = vec![
        (
            "aud as a list containing this API",
            token(&target.signed_with(|c| {
                c.insert(
                    "aud".into(),
                    json!(["00000003-0000-0000-c000-000000000000", api]),
                );
            })),
        ),
        (
            "fractional exp and nbf",
            token(&target.signed_with(|c| {
                c.insert("exp".into(), json!(now as f64 + 3600.75));
                c.insert("nbf".into(), json!(now as f64 - 0.5));
            })),
        ),
    ];
    for (name, credentials) in &accepted {
        target
            .accepted(credentials)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    target.authority.shutdown().await;
}

/// The `authorization` header itself: schemes, counts, bytes, sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_authorization_headers_are_refused_and_write_nothing() {
    use Refusal::Unauthenticated as U;
    let mut target = Target::start().await;
    let daemon = target.daemon.clone();
    let oversized = target.signed_with(|c| {
        // 200 000 characters, 4/3 of that in base64url: just over 250 KB.
        c.insert("pad".into(), json!("p".repeat(200_000)));
    });
    assert!(oversized.len() > 256_000 && oversized.len() < 320 * 1024);
    let many = {
        let daemon = daemon.clone();
        Box::new(move |m: &mut MetadataMap| {
            for _ in 0..100 {
                m.append("authorization", format!("Bearer {daemon}").parse().unwrap());
            }
        }) as Credentials
    };
    let two_different = {
        let daemon = daemon.clone();
        Box::new(move |m: &mut MetadataMap| {
            m.append("authorization", "Bearer not-a-token".parse().unwrap());
            m.append("authorization", format!("Bearer {daemon}").parse().unwrap());
        }) as Credentials
    };
    let binary_only = {
        let daemon = daemon.clone();
        Box::new(move |m: &mut MetadataMap| {
            let value = BinaryMetadataValue::from_bytes(format!("Bearer {daemon}").as_bytes());
            m.insert_bin("authorization-bin", value);
        }) as Credentials
    };
    let headers_too_large = {
        let daemon = daemon.clone();
        Box::new(move |m: &mut MetadataMap| {
            m.insert("authorization", format!("Bearer {daemon}").parse().unwrap());
            for i in 0..4 {
                let key = format!("x-pad-{i}");
                let key = tonic::metadata::AsciiMetadataKey::from_bytes(key.as_bytes()).unwrap();
                m.insert(key, "p".repeat(90 * 1024).parse().unwrap());
            }
        }) as Credentials
    };
    let mut non_utf8 = b"Bearer ".to_vec();
    non_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    non_utf8.extend_from_slice(daemon.as_bytes());

    let cases: Vec<(&str, Credentials, Refusal)> = vec![
        (
            "no authorization header",
            Box::new(|_: &mut MetadataMap| {}),
            U("MISSING_TOKEN"),
        ),
        (
            "token without a scheme",
            header(daemon.as_bytes()),
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "Basic scheme",
            header(b"Basic ZGFlbW9uOnNlY3JldA=="),
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "another scheme with the token",
            header(format!("Token {daemon}").as_bytes()),
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "Bearer without a token",
            header(b"Bearer"),
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "Bearer and a tab (only SP separates)",
            header(format!("Bearer\t{daemon}").as_bytes()),
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "100 authorization headers",
            many,
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "two authorization headers",
            two_different,
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "non-UTF-8 bytes",
            header(&non_utf8),
            U("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "token only in authorization-bin",
            binary_only,
            U("MISSING_TOKEN"),
        ),
        ("token over 250 KB", token(&oversized), U("TOKEN_TOO_LARGE")),
        (
            "header list over 320 KiB",
            headers_too_large,
            Refusal::HeadersTooLarge,
        ),
    ];
    run(&mut target, cases).await;

    // The scheme is case-insensitive (RFC 7235 §2.1): these are valid calls.
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        target
            .accepted(&header(format!("{scheme} {daemon}").as_bytes()))
            .await
            .unwrap_or_else(|e| panic!("{scheme}: {e}"));
    }
    target
        .accepted(&header(format!("Bearer   {daemon}").as_bytes()))
        .await
        .expect("several spaces after the scheme are tolerated (1*SP)");
    target.authority.shutdown().await;
}
