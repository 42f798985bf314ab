//! Token checks: one failing case per reason (each asserts its own reason),
//! and the accepted shapes of Entra tokens.

use entra_auth::{Caller, Error};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::ready_validator;
use crate::util::tokens::b64_json;
use crate::util::{
    CLIENT_ID, DAEMON_ID, DAEMON_OID, TENANT_ID, TestAuthority, app_claims, now, test_keys,
};

/// `claims` with `edit` applied.
fn with(mut claims: Value, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    edit(claims.as_object_mut().unwrap());
    claims
}

#[tokio::test]
async fn each_defect_fails_for_its_own_reason() {
    let [k1, k2, k3] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await;
    let valid = app_claims(&authority.issuer());
    let header = |extra: Value| {
        let mut h = json!({"typ": "JWT", "alg": "RS256", "kid": k1.kid});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let now = now();
    let good = k1.sign(&valid);
    let (good_signed, _) = good.rsplit_once('.').unwrap();
    let other_payload = b64_json(&with(valid.clone(), |c| {
        c.insert("roles".into(), json!(["ToDoList.ReadWrite.All"]));
    }));
    let tampered = format!(
        "{}.{other_payload}.{}",
        good_signed.split_once('.').unwrap().0,
        good.rsplit_once('.').unwrap().1
    );
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some(k1.kid.clone()),
            ..Header::new(Algorithm::HS256)
        },
        &valid,
        &EncodingKey::from_secret(k1.jwk(None)["n"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    // Two `aud` claims: JSON parsers disagree on which wins, so reject.
    let duplicate_aud = {
        let body = valid
            .to_string()
            .replacen('{', "{\"aud\":\"someone-else\",", 1);
        k1.sign_raw(&b64_json(&header(json!({}))), &base64_url(body.as_bytes()))
    };

    let cases: Vec<(&str, String, &str)> = vec![
        ("empty string", String::new(), "MALFORMED_TOKEN"),
        ("not a JWT", "not-a-jwt".into(), "MALFORMED_TOKEN"),
        ("two parts", "abc.def".into(), "MALFORMED_TOKEN"),
        ("encrypted JWE", "a.b.c.d.e".into(), "MALFORMED_TOKEN"),
        ("header not base64", "!!!.e30.sig".into(), "MALFORMED_TOKEN"),
        (
            "header not JSON",
            format!("{}.e30.sig", base64_url(b"nope")),
            "MALFORMED_TOKEN",
        ),
        ("duplicate claim", duplicate_aud, "MALFORMED_TOKEN"),
        ("too large", "a".repeat(300_000), "TOKEN_TOO_LARGE"),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64_json(&header(json!({"alg": "none"}))),
                b64_json(&valid)
            ),
            "UNSUPPORTED_ALGORITHM",
        ),
        (
            "HS256 keyed with the public key",
            hs256,
            "UNSUPPORTED_ALGORITHM",
        ),
        (
            "PS256",
            k1.sign_with_header(&header(json!({"alg": "PS256"})), &valid),
            "UNSUPPORTED_ALGORITHM",
        ),
        (
            "alg missing",
            k1.sign_with_header(&json!({"kid": k1.kid}), &valid),
            "UNSUPPORTED_ALGORITHM",
        ),
        (
            "jku header",
            k1.sign_with_header(&header(json!({"jku": "https://evil/keys"})), &valid),
            "UNTRUSTED_KEY_LOCATION",
        ),
        (
            "x5u header",
            k1.sign_with_header(&header(json!({"x5u": "https://evil/cert"})), &valid),
            "UNTRUSTED_KEY_LOCATION",
        ),
        (
            "embedded jwk",
            k1.sign_with_header(&header(json!({"jwk": k1.jwk(None)})), &valid),
            "UNTRUSTED_KEY_LOCATION",
        ),
        (
            "embedded x5c",
            k1.sign_with_header(&header(json!({"x5c": ["MIIB"]})), &valid),
            "UNTRUSTED_KEY_LOCATION",
        ),
        (
            "no kid",
            k1.sign_with_header(&json!({"typ": "JWT", "alg": "RS256"}), &valid),
            "MISSING_KEY_ID",
        ),
        ("unknown kid", k3.sign(&valid), "UNKNOWN_SIGNING_KEY"),
        (
            "signed by another key",
            k2.sign_with_header(&header(json!({})), &valid),
            "INVALID_SIGNATURE",
        ),
        (
            "claims changed after signing",
            tampered,
            "INVALID_SIGNATURE",
        ),
        (
            "signature stripped",
            format!("{good_signed}."),
            "INVALID_SIGNATURE",
        ),
        (
            "expired",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("exp".into(), json!(now - 400));
            })),
            "TOKEN_EXPIRED",
        ),
        (
            "no exp",
            k1.sign(&with(valid.clone(), |c| {
                c.remove("exp");
            })),
            "INVALID_CLAIM",
        ),
        (
            "exp as string",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("exp".into(), json!((now + 3600).to_string()));
            })),
            "INVALID_CLAIM",
        ),
        // Regression (issue #8, fuzzing): `now - exp` overflowed (a panic in
        // debug builds) for extreme NumericDates; they fail like any other.
        (
            "exp at i64::MIN",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("exp".into(), json!(i64::MIN));
            })),
            "TOKEN_EXPIRED",
        ),
        (
            "exp as -1e300",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("exp".into(), json!(-1e300));
            })),
            "TOKEN_EXPIRED",
        ),
        (
            "nbf at i64::MAX",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("nbf".into(), json!(i64::MAX));
            })),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "not yet valid",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("nbf".into(), json!(now + 400));
            })),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "issuer of another authority",
            k1.sign(&with(valid.clone(), |c| {
                let iss = format!("https://login.microsoftonline.com/{TENANT_ID}/v2.0");
                c.insert("iss".into(), json!(iss));
            })),
            "INVALID_ISSUER",
        ),
        (
            "tid disagrees with iss",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("tid".into(), json!("72f988bf-86f1-41af-91ab-2d7cd011db47"));
            })),
            "INVALID_ISSUER",
        ),
        (
            "no tid",
            k1.sign(&with(valid.clone(), |c| {
                c.remove("tid");
            })),
            "INVALID_CLAIM",
        ),
        (
            "audience of another API",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("aud".into(), json!("00000003-0000-0000-c000-000000000000"));
            })),
            "INVALID_AUDIENCE",
        ),
        (
            "aud as number",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("aud".into(), json!(42));
            })),
            "INVALID_CLAIM",
        ),
        (
            "neither scp nor roles",
            k1.sign(&with(valid.clone(), |c| {
                c.remove("roles");
            })),
            "MISSING_ROLES",
        ),
        (
            "roles as a string",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("roles".into(), json!("ToDoList.Read.All"));
            })),
            "INVALID_CLAIM",
        ),
        (
            "scp as a list",
            k1.sign(&with(valid.clone(), |c| {
                c.insert("scp".into(), json!(["ToDoList.Read"]));
            })),
            "INVALID_CLAIM",
        ),
        (
            "no oid",
            k1.sign(&with(valid.clone(), |c| {
                c.remove("oid");
            })),
            "INVALID_CLAIM",
        ),
        (
            "neither azp nor appid",
            k1.sign(&with(valid.clone(), |c| {
                c.remove("azp");
            })),
            "INVALID_CLAIM",
        ),
    ];

    let mut failures = Vec::new();
    for (name, token, want) in &cases {
        match validator.validate(token).await {
            Ok(caller) => failures.push(format!("{name}: accepted as {caller:?}")),
            Err(error) => {
                if error.reason() != *want {
                    failures.push(format!(
                        "{name}: want {want}, got {} ({error})",
                        error.reason()
                    ));
                }
                let status = error.to_status();
                if token.len() > 20 && status.message().contains(token.as_str()) {
                    failures.push(format!("{name}: message echoes the token"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The valid token itself passes.
    validator.validate(&good).await.expect("valid token");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn messages_say_what_is_wrong() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await;
    let token = k1.sign(&with(app_claims(&authority.issuer()), |c| {
        c.insert("aud".into(), json!("api://wrong"));
    }));
    let error = validator.validate(&token).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("audience api://wrong is not one of [{CLIENT_ID}, api://{CLIENT_ID}]")
    );
    let status = error.to_status();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let challenge = status
        .metadata()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"invalid_token\", error_description=\"audience api://wrong is not one of [{CLIENT_ID}, api://{CLIENT_ID}]\""
        )
    );
    let expired = k1.sign(&with(app_claims(&authority.issuer()), |c| {
        c.insert("exp".into(), json!(now() - 1000));
    }));
    let error = validator.validate(&expired).await.unwrap_err();
    assert!(error.to_string().starts_with("token expired"), "{error}");
    assert!(matches!(error, Error::Expired { .. }));
}

/// Regression (issue #8, found by fuzzing): a header or claims part that is
/// JSON of the wrong type (a string) made serde's error message quote it, so
/// token content of any length and any characters reached the status
/// message and the log line. It is now cut short and printable ASCII, like
/// every value copied from a token.
#[tokio::test]
async fn malformed_parts_are_not_echoed() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await;
    let hostile = format!(
        "\"{}\u{202e}\\n\\u001b[31m{}\"",
        "é".repeat(2000),
        "x".repeat(5000)
    );
    let claims = b64_json(&app_claims(&authority.issuer()));
    for token in [
        format!("{}.{claims}.sig", base64_url(hostile.as_bytes())),
        k1.sign_raw(
            &b64_json(&json!({"typ": "JWT", "alg": "RS256", "kid": k1.kid})),
            &base64_url(hostile.as_bytes()),
        ),
    ] {
        let error = validator.validate(&token).await.unwrap_err();
        assert_eq!(error.reason(), "MALFORMED_TOKEN");
        let message = error.to_status().message().to_owned();
        assert!(message.len() < 200, "{} bytes: {message}", message.len());
        assert!(
            message.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{message:?}"
        );
        assert!(!message.contains("xxxxxxxxxx"), "{message}");
    }
}

#[tokio::test]
async fn accepts_entra_token_shapes() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await;
    let issuer = authority.issuer();

    // v2 app-only token with idtyp.
    let caller = validator
        .validate(&k1.sign(&app_claims(&issuer)))
        .await
        .unwrap();
    assert_eq!(
        caller,
        Caller {
            oid: DAEMON_OID.into(),
            tid: TENANT_ID.into(),
            azp: DAEMON_ID.into(),
            roles: vec!["ToDoList.Read.All".into()],
            scopes: vec![],
            app_only: true,
        }
    );

    // v1 style: appid instead of azp, api:// audience, no idtyp.
    let v1 = with(app_claims(&issuer), |c| {
        c.remove("azp");
        c.remove("idtyp");
        c.insert("appid".into(), json!(DAEMON_ID));
        c.insert("aud".into(), json!(format!("api://{CLIENT_ID}")));
    });
    let caller = validator.validate(&k1.sign(&v1)).await.unwrap();
    assert_eq!(caller.azp, DAEMON_ID);
    assert!(caller.app_only, "roles without scp is app-only");

    // Delegated (user) token: scp, no roles.
    let user = with(app_claims(&issuer), |c| {
        c.remove("roles");
        c.remove("idtyp");
        c.insert("scp".into(), json!("ToDoList.Read ToDoList.ReadWrite"));
    });
    let caller = validator.validate(&k1.sign(&user)).await.unwrap();
    assert_eq!(caller.scopes, ["ToDoList.Read", "ToDoList.ReadWrite"]);
    assert!(!caller.app_only);

    // idtyp wins over the roles/scp heuristic.
    let user_with_roles = with(app_claims(&issuer), |c| {
        c.insert("idtyp".into(), json!("user"));
    });
    assert!(
        !validator
            .validate(&k1.sign(&user_with_roles))
            .await
            .unwrap()
            .app_only
    );

    // aud as a list; expiry within the clock skew; fractional NumericDate.
    let lenient = with(app_claims(&issuer), |c| {
        c.insert("aud".into(), json!(["other", CLIENT_ID]));
        c.insert("exp".into(), json!(now() as f64 - 100.5));
    });
    validator.validate(&k1.sign(&lenient)).await.unwrap();
}

#[tokio::test]
async fn configured_audiences_replace_the_defaults() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let mut config = authority.config();
    config.audiences = vec!["api://todo".into()];
    let validator = ready_validator(config).await;
    let claims = app_claims(&authority.issuer());
    let error = validator.validate(&k1.sign(&claims)).await.unwrap_err();
    assert_eq!(error.reason(), "INVALID_AUDIENCE");
    let custom = with(claims, |c| {
        c.insert("aud".into(), json!("api://todo"));
    });
    validator.validate(&k1.sign(&custom)).await.unwrap();
}

#[tokio::test]
async fn acl_mode_admits_listed_clients_without_roles() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let mut config = authority.config();
    config.allowed_client_ids = Some(vec![DAEMON_ID.into()]);
    let validator = ready_validator(config).await;
    let bare = with(app_claims(&authority.issuer()), |c| {
        c.remove("roles");
    });
    let caller = validator.validate(&k1.sign(&bare)).await.unwrap();
    assert!(validator.is_allow_listed(&caller.azp));
    let stranger = with(bare, |c| {
        c.insert("azp".into(), json!("11111111-2222-3333-4444-555555555555"));
    });
    let error = validator.validate(&k1.sign(&stranger)).await.unwrap_err();
    assert_eq!(error.reason(), "MISSING_ROLES");
}

#[tokio::test]
async fn issuer_template_and_key_issuer() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let template = authority.issuer().replace(TENANT_ID, "{tenantid}");
    authority.set_metadata_issuer(&template);
    authority.publish_jwks(vec![k1.jwk(Some(&template))]);
    let validator = ready_validator(authority.config()).await;
    validator
        .validate(&k1.sign(&app_claims(&authority.issuer())))
        .await
        .expect("{tenantid} replaced by tid");

    // A key whose own issuer is another tenant's.
    let authority = TestAuthority::start(&[k1]).await;
    let foreign = authority
        .issuer()
        .replace(TENANT_ID, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    authority.publish_jwks(vec![k1.jwk(Some(&foreign))]);
    let validator = ready_validator(authority.config()).await;
    let error = validator
        .validate(&k1.sign(&app_claims(&authority.issuer())))
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "INVALID_ISSUER");
    assert!(
        error.to_string().contains("signing key's issuer"),
        "{error}"
    );
}

#[tokio::test]
async fn debug_output_never_shows_tokens() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await;
    let token = k1.sign(&app_claims(&authority.issuer()));
    let caller = validator.validate(&token).await.unwrap();
    let signature = token.rsplit_once('.').unwrap().1;
    for text in [format!("{validator:?}"), format!("{caller:?}")] {
        assert!(!text.contains(signature), "{text}");
    }
    let bad = format!("{token}x");
    let error = validator.validate(&bad).await.unwrap_err();
    for text in [
        format!("{error:?}"),
        error.to_string(),
        format!("{:?}", error.to_status()),
    ] {
        assert!(!text.contains(signature), "{text}");
    }
}
