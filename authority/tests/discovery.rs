//! Discovery and JWKS: Entra's shape, tenant by GUID and by domain, unknown tenant.

use serde_json::Value;

use crate::util::{assert_aad_error, http, start};

#[tokio::test]
async fn openid_configuration_has_entra_fields_by_guid_and_by_domain() {
    let authority = start().await;
    let base = authority.base_url().to_owned();
    let tid = authority.tenant_id().to_string();
    for segment in [tid.clone(), authority.tenant_domain()] {
        let url = format!("{base}/{segment}/v2.0/.well-known/openid-configuration");
        let response = http(&authority).get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let doc: Value = response.json().await.unwrap();
        // Whatever the tenant segment, the document names the tenant by GUID, like Entra.
        assert_eq!(doc["issuer"], format!("{base}/{tid}/v2.0"));
        assert_eq!(doc["issuer"], authority.issuer());
        assert_eq!(
            doc["token_endpoint"],
            format!("{base}/{tid}/oauth2/v2.0/token")
        );
        assert_eq!(doc["jwks_uri"], format!("{base}/{tid}/discovery/v2.0/keys"));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{base}/{tid}/oauth2/v2.0/authorize")
        );
        for field in [
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
            "token_endpoint_auth_methods_supported",
            "scopes_supported",
            "claims_supported",
            "response_modes_supported",
        ] {
            assert!(doc[field].is_array(), "{field}");
        }
        for field in [
            "tenant_region_scope",
            "cloud_instance_name",
            "msgraph_host",
            "cloud_graph_host_name",
            "device_authorization_endpoint",
            "end_session_endpoint",
        ] {
            assert!(doc[field].is_string(), "{field}");
        }
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        let methods = doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        for m in [
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
        ] {
            assert!(methods.contains(&Value::from(m)), "{m}");
        }
    }
}

#[tokio::test]
async fn jwks_has_entra_shape_and_matches_the_signing_key() {
    let authority = start().await;
    let jwks: Value = http(&authority)
        .get(authority.endpoints().jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(key["kid"], authority.signing_kid());
    assert_eq!(key["x5t"], key["kid"], "Entra's kid is the x5t");
    assert_eq!(key["issuer"], authority.issuer());
    let n = key["n"].as_str().unwrap();
    assert!(n.len() >= 342, "2048-bit modulus, base64url");
    // x5c holds the certificate whose SHA-1 is x5t.
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(key["x5c"][0].as_str().unwrap())
        .unwrap();
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1),
        key["x5t"].as_str().unwrap()
    );
    // The domain form serves the same keys.
    let by_domain: Value = http(&authority)
        .get(format!(
            "{}/{}/discovery/v2.0/keys",
            authority.base_url(),
            authority.tenant_domain()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_domain, jwks);
}

#[tokio::test]
async fn unknown_tenant_is_aadsts90002_on_every_endpoint() {
    let authority = start().await;
    let base = authority.base_url();
    let client = http(&authority);
    for path in [
        "v2.0/.well-known/openid-configuration",
        "discovery/v2.0/keys",
    ] {
        for tenant in [
            "nope.onmicrosoft.com",
            "00000000-0000-0000-0000-000000000001",
        ] {
            let r = client
                .get(format!("{base}/{tenant}/{path}"))
                .send()
                .await
                .unwrap();
            let parts = (
                r.status(),
                r.headers().clone(),
                r.json::<Value>().await.unwrap(),
            );
            assert_aad_error(&parts, 90002, "invalid_tenant", 400);
            assert!(
                parts.2["error_description"]
                    .as_str()
                    .unwrap()
                    .contains(tenant)
            );
        }
    }
    let (id, secret, scope) = crate::util::daemon(&authority);
    let parts = crate::util::post_token_to(
        &authority,
        &format!("{base}/nope.onmicrosoft.com/oauth2/v2.0/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", &scope),
        ],
    )
    .await;
    assert_aad_error(&parts, 90002, "invalid_request", 400);
}

#[tokio::test]
async fn http2_is_negotiated_and_http1_works() {
    let authority = start().await;
    let url = authority.endpoints().metadata_url;
    let r = http(&authority).get(&url).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let ca = reqwest::Certificate::from_pem(authority.ca_pem().as_bytes()).unwrap();
    let h1 = reqwest::Client::builder()
        .tls_certs_only([ca])
        .http1_only()
        .build()
        .unwrap();
    let r = h1.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
}

#[tokio::test]
async fn the_server_certificate_covers_localhost() {
    let authority = start().await;
    let url = format!(
        "https://localhost:{}/{}/v2.0/.well-known/openid-configuration",
        authority.local_addr().port(),
        authority.tenant_id()
    );
    let r = http(&authority).get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
