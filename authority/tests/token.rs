//! The token endpoint with client secrets: success bodies, claims, and every Entra error.

use std::time::Duration;

use dev_authority::{Config, defaults};

use crate::util::{assert_aad_error, client, daemon, http, post_token, start, start_with, verify};

#[tokio::test]
async fn secret_in_body_gets_an_entra_shaped_token() {
    let authority = start().await;
    let (id, secret, scope) = daemon(&authority);
    let (status, headers, body) = post_token(
        &authority,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store, no-cache");
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(
        (3600..=5400).contains(&expires_in),
        "Entra-like 60–90 min: {expires_in}"
    );
    assert_eq!(body["ext_expires_in"], body["expires_in"]);
    assert_eq!(body["refresh_in"].as_i64().unwrap(), expires_in / 2);

    let (header, claims) = verify(&authority, body["access_token"].as_str().unwrap()).await;
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.kid.as_deref(),
        Some(authority.signing_kid().as_str())
    );
    let regs = authority.registrations();
    let api = regs.api(defaults::TODO_API).unwrap();
    let app = regs.client(defaults::DAEMON_CLIENT).unwrap();
    assert_eq!(claims.aud, api.client_id.to_string());
    assert_eq!(claims.iss, authority.issuer());
    assert_eq!(claims.idp, claims.iss);
    assert_eq!(claims.azp, id);
    assert_eq!(claims.azpacr, "1");
    assert_eq!(claims.oid, app.object_id.to_string());
    assert_eq!(claims.sub, claims.oid);
    assert_eq!(claims.tid, authority.tenant_id().to_string());
    assert_eq!(claims.ver, "2.0");
    assert_eq!(claims.idtyp.as_deref(), Some("app"));
    assert_eq!(
        claims.roles,
        Some(vec![defaults::READ_WRITE_ROLE.to_owned()])
    );
    assert_eq!(claims.exp - claims.iat, expires_in);
    assert_eq!(claims.nbf, claims.iat);
    assert!(!claims.aio.is_empty() && !claims.rh.is_empty() && !claims.uti.is_empty());

    // Raw claim names: no scp in app tokens, roles is an array.
    let raw: serde_json::Value =
        jsonwebtoken::dangerous::insecure_decode(body["access_token"].as_str().unwrap())
            .map(|d: jsonwebtoken::TokenData<serde_json::Value>| d.claims)
            .unwrap();
    assert!(raw.get("scp").is_none());
    assert!(raw["roles"].is_array());
    assert_eq!(authority.token_requests(), 1);
}

#[tokio::test]
async fn secret_by_http_basic_and_reader_roles_and_fixed_lifetime() {
    let authority = start_with(Config::ephemeral().token_lifetime(Duration::from_secs(120))).await;
    let (id, secret, scope) = client(&authority, defaults::READER_CLIENT);
    let response = http(&authority)
        .post(authority.token_endpoint())
        .basic_auth(form_encode(&id), Some(form_encode(&secret)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    assert_eq!(body["refresh_in"], 60);
    let (_, claims) = verify(&authority, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims.roles, Some(vec![defaults::READ_ROLE.to_owned()]));
    assert_eq!(claims.azp, id);
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn scope_by_client_id_works_and_no_roles_means_no_roles_claim() {
    let authority = start().await;
    let api_id = authority
        .registrations()
        .api(defaults::TODO_API)
        .unwrap()
        .client_id;
    authority
        .update_registrations(|r| {
            let c = r
                .clients
                .iter_mut()
                .find(|c| c.name == defaults::READER_CLIENT)
                .unwrap();
            c.grants.clear();
            r.apis[0].emit_idtyp = false;
        })
        .unwrap();
    let (id, secret, _) = client(&authority, defaults::READER_CLIENT);
    let scope = format!("{api_id}/.default");
    let (status, _, body) = post_token(
        &authority,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = verify(&authority, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims.roles, None);
    assert_eq!(claims.idtyp, None, "idtyp only when the API asks for it");
    let raw = body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .unwrap();
    assert!(!String::from_utf8(raw).unwrap().contains("\"roles\""));
}

#[tokio::test]
async fn every_token_error_has_entra_code_error_and_status() {
    let authority = start().await;
    let (id, secret, scope) = daemon(&authority);
    let unknown_client = uuid::Uuid::new_v4().to_string();
    let cc = ("grant_type", "client_credentials");
    let two_resources = format!("{scope} https://graph.microsoft.com/.default");
    type Case<'a> = (Vec<(&'a str, &'a str)>, u64, &'a str, u16);
    let cases: Vec<Case> = vec![
        (
            vec![
                cc,
                ("client_id", &unknown_client),
                ("client_secret", "x"),
                ("scope", &scope),
            ],
            700016,
            "unauthorized_client",
            400,
        ),
        (
            vec![
                cc,
                ("client_id", &id),
                ("client_secret", "wrong-secret"),
                ("scope", &scope),
            ],
            7000215,
            "invalid_client",
            401,
        ),
        (
            vec![cc, ("client_id", &id), ("scope", &scope)],
            7000218,
            "invalid_client",
            401,
        ),
        (
            vec![
                cc,
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "api://x/ToDoList.Read"),
            ],
            70011,
            "invalid_scope",
            400,
        ),
        (
            vec![
                cc,
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "openid"),
            ],
            70011,
            "invalid_scope",
            400,
        ),
        (
            vec![
                cc,
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", &two_resources),
            ],
            700022,
            "invalid_scope",
            400,
        ),
        (
            vec![
                cc,
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "api://not-registered/.default"),
            ],
            500011,
            "invalid_resource",
            400,
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", &scope),
            ],
            70003,
            "unsupported_grant_type",
            400,
        ),
        (
            vec![
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", &scope),
            ],
            900144,
            "invalid_request",
            400,
        ),
        (
            vec![cc, ("client_secret", &secret), ("scope", &scope)],
            900144,
            "invalid_request",
            400,
        ),
        (
            vec![cc, ("client_id", &id), ("client_secret", &secret)],
            900144,
            "invalid_request",
            400,
        ),
    ];
    for (form, code, error, status) in cases {
        let parts = post_token(&authority, &form).await;
        assert_aad_error(&parts, code, error, status);
        assert!(
            !parts.2.to_string().contains(&secret),
            "never echo a secret"
        );
    }
    // 500011 names the resource and the tenant, as Entra does.
    let parts = post_token(
        &authority,
        &[
            cc,
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "api://not-registered/.default"),
        ],
    )
    .await;
    let d = parts.2["error_description"].as_str().unwrap();
    assert!(
        d.contains("api://not-registered") && d.contains(&authority.tenant_domain()),
        "{d}"
    );
    // Stats count every request, by outcome.
    let stats = authority.stats();
    assert_eq!(stats.token_requests, 12);
    assert_eq!(stats.token_errors, 12);
    assert_eq!(stats.tokens_issued, 0);
}

#[tokio::test]
async fn correlation_id_is_echoed_from_client_request_id() {
    let authority = start().await;
    let correlation = uuid::Uuid::new_v4().to_string();
    let r = http(&authority)
        .post(authority.token_endpoint())
        .header("client-request-id", &correlation)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["client-request-id"], correlation.as_str());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["correlation_id"], correlation.as_str());
}

#[tokio::test]
async fn expired_secret_is_aadsts7000222_and_token_by_domain_works() {
    let authority = start().await;
    authority
        .update_registrations(|r| {
            let c = r
                .clients
                .iter_mut()
                .find(|c| c.name == defaults::READER_CLIENT)
                .unwrap();
            c.secrets.push(dev_authority::ClientSecret {
                value: dev_authority::Secret::new("expired-secret-value"),
                expires_at: Some(time::OffsetDateTime::now_utc() - time::Duration::days(1)),
            });
        })
        .unwrap();
    let (id, _, scope) = client(&authority, defaults::READER_CLIENT);
    let parts = post_token(
        &authority,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "expired-secret-value"),
            ("scope", &scope),
        ],
    )
    .await;
    assert_aad_error(&parts, 7000222, "invalid_client", 401);

    // The tenant's domain in the URL works like its GUID; the issuer stays GUID-shaped.
    let (id, secret, scope) = daemon(&authority);
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        authority.base_url(),
        authority.tenant_domain()
    );
    let (status, _, body) = crate::util::post_token_to(
        &authority,
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = verify(&authority, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims.iss, authority.issuer());
}

#[tokio::test]
async fn minted_tokens_verify_and_are_not_counted() {
    let authority = start().await;
    let token = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    let (_, claims) = verify(&authority, &token).await;
    assert_eq!(
        claims.roles,
        Some(vec![defaults::READ_WRITE_ROLE.to_owned()])
    );
    let mut expired = authority
        .claims_for(defaults::READER_CLIENT, defaults::TODO_API)
        .unwrap();
    expired.exp = expired.iat - 3600;
    let signed = authority.sign_claims(&expired).unwrap();
    let jwks = authority.state().jwks(authority.base_url());
    assert!(
        crate::util::verify_with(&authority, &jwks, &signed)
            .unwrap_err()
            .contains("Expired")
    );
    assert_eq!(authority.token_requests(), 0);
}

#[tokio::test]
async fn sign_raw_signs_header_and_payload_byte_for_byte() {
    use base64::Engine as _;
    let authority = start().await;
    let kid = authority.signing_kid();
    let header = format!(r#"{{"alg":"RS256","kid":"{kid}","jku":"https://evil/keys"}}"#);
    let claims = authority
        .claims_for(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    // A duplicate claim: no serialiser would produce it.
    let payload =
        serde_json::to_string(&claims)
            .unwrap()
            .replacen('{', r#"{"aud":"someone-else","#, 1);
    let token = authority.sign_raw(&header, &payload).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(b64.decode(parts[0]).unwrap(), header.as_bytes());
    assert_eq!(b64.decode(parts[1]).unwrap(), payload.as_bytes());
    // The signature is RS256 by the current key over exactly those bytes.
    let jwks = authority.state().jwks(authority.base_url());
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let signed = token.rsplit_once('.').unwrap();
    assert!(
        jsonwebtoken::crypto::verify(
            signed.1,
            signed.0.as_bytes(),
            &key,
            jsonwebtoken::Algorithm::RS256
        )
        .unwrap()
    );
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_aadsts900561() {
    let authority = start().await;
    let r = http(&authority)
        .get(authority.token_endpoint())
        .send()
        .await
        .unwrap();
    let parts = (
        r.status(),
        r.headers().clone(),
        r.json::<serde_json::Value>().await.unwrap(),
    );
    assert_aad_error(&parts, 900561, "invalid_request", 400);
}
