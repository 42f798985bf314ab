//! Admin surface and library controls: fault injection, counters, key rotation.

use std::time::{Duration, Instant};

use dev_authority::{AdminMode, Config, Fault, FaultEndpoint, defaults};
use serde_json::Value;

use crate::util::{
    assert_aad_error, daemon, http, post_token, start, start_with, verify, verify_with,
};

fn form<'a>(id: &'a str, secret: &'a str, scope: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn faults_throttle_then_fail_then_delay_then_clear() {
    let authority = start().await;
    let (id, secret, scope) = daemon(&authority);
    authority
        .faults()
        .inject(Fault::too_many_requests(Duration::from_secs(7)).times(2));
    for _ in 0..2 {
        let parts = post_token(&authority, &form(&id, &secret, &scope)).await;
        assert_eq!(parts.0, 429);
        assert_eq!(parts.1["retry-after"], "7");
        assert_aad_error(&parts, 90055, "temporarily_unavailable", 429);
    }
    assert!(
        authority.faults().active().is_empty(),
        "count-limited fault is used up"
    );
    assert_eq!(
        post_token(&authority, &form(&id, &secret, &scope)).await.0,
        200
    );

    authority.faults().inject(Fault::unavailable());
    for _ in 0..3 {
        assert_eq!(
            post_token(&authority, &form(&id, &secret, &scope)).await.0,
            503
        );
    }
    authority.faults().clear();

    authority
        .faults()
        .inject(Fault::delay(Duration::from_millis(300)).times(1));
    let started = Instant::now();
    assert_eq!(
        post_token(&authority, &form(&id, &secret, &scope)).await.0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    let stats = authority.stats();
    assert_eq!(stats.token_requests, 7);
    assert_eq!(stats.faults_injected, 5);
    assert_eq!(stats.tokens_issued, 2);
    assert_eq!(stats.issued_by_client.get(&id.to_lowercase()), Some(&2));
}

#[tokio::test]
async fn admin_http_surface_injects_faults_counts_and_rotates() {
    let authority = start().await;
    let client = http(&authority);
    let base = authority.base_url().to_owned();
    let (id, secret, scope) = daemon(&authority);

    // A 503 on the keys endpoint, once, through the admin API.
    let r = client
        .post(format!("{base}/_admin/faults"))
        .json(&serde_json::json!({"kind": "unavailable", "retry_after_secs": 3, "times": 1, "endpoint": "keys"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwks_uri = authority.endpoints().jwks_uri;
    let r = client.get(&jwks_uri).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(client.get(&jwks_uri).send().await.unwrap().status(), 200);

    let faults: Value = client
        .get(format!("{base}/_admin/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults, serde_json::json!([]));
    client
        .post(format!("{base}/_admin/faults"))
        .json(&Fault::too_many_requests(Duration::from_secs(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        client
            .delete(format!("{base}/_admin/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    // Counters.
    for _ in 0..3 {
        assert_eq!(
            post_token(&authority, &form(&id, &secret, &scope)).await.0,
            200
        );
    }
    let stats: Value = client
        .get(format!("{base}/_admin/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["token_requests"], 3);
    assert_eq!(stats["tokens_issued"], 3);
    client
        .post(format!("{base}/_admin/stats/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(authority.token_requests(), 0);

    // Rotation and retirement.
    let old = authority.signing_kid();
    let rotation: Value = client
        .post(format!("{base}/_admin/keys/rotate"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = rotation["signing_kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotation["published_kids"], serde_json::json!([old, new]));
    let retired: Value = client
        .post(format!("{base}/_admin/keys/retire"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retired["published_kids"], serde_json::json!([new]));
    assert_eq!(retired["retired_kids"], serde_json::json!([old]));

    // Minting.
    let minted: Value = client
        .post(format!("{base}/_admin/token"))
        .json(&serde_json::json!({"client": defaults::READER_CLIENT, "lifetime_secs": 60}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, claims) = verify(&authority, minted["access_token"].as_str().unwrap()).await;
    assert_eq!(claims.exp - claims.iat, 60);
    assert_eq!(claims.roles, Some(vec![defaults::READ_ROLE.to_owned()]));
}

#[tokio::test]
async fn rotation_publishes_both_keys_then_retires_the_old_one() {
    let authority = start().await;
    let old_token = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();
    let old_kid = authority.signing_kid();

    let rotation = authority.rotate_keys().unwrap();
    assert_ne!(rotation.signing_kid, old_kid);
    assert_eq!(
        rotation.published_kids,
        vec![old_kid.clone(), rotation.signing_kid.clone()]
    );
    let new_token = authority
        .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)
        .unwrap();

    let jwks: Value = http(&authority)
        .get(authority.endpoints().jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let (header, _) = verify_with(&authority, &jwks, &new_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(rotation.signing_kid.as_str()));
    verify_with(&authority, &jwks, &old_token).expect("old tokens still verify during rollover");

    // A second rotation retires the first key.
    let second = authority.rotate_keys().unwrap();
    assert_eq!(second.retired_kids, vec![old_kid.clone()]);
    let jwks: Value = http(&authority)
        .get(authority.endpoints().jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(
        verify_with(&authority, &jwks, &old_token)
            .unwrap_err()
            .contains("not in JWKS")
    );
    verify_with(&authority, &jwks, &new_token).expect("the previous key is still published");
}

#[tokio::test]
async fn admin_is_off_when_disabled() {
    let mut config = Config::ephemeral();
    config.admin = AdminMode::Disabled;
    let authority = start_with(config).await;
    assert!(!authority.admin_enabled());
    let r = http(&authority)
        .get(format!("{}/_admin/stats", authority.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn concurrent_requests_are_all_counted() {
    let authority = start().await;
    let (id, secret, scope) = daemon(&authority);
    let client = http(&authority);
    let url = authority.token_endpoint();
    let requests = (0..50).map(|_| client.post(&url).form(&form(&id, &secret, &scope)).send());
    for r in futures_join(requests).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    assert_eq!(authority.token_requests(), 50);
}

async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_keys_fault_does_not_touch_the_token_endpoint() {
    let authority = start().await;
    let (id, secret, scope) = daemon(&authority);
    authority
        .faults()
        .inject(Fault::unavailable().on(FaultEndpoint::Keys));
    assert_eq!(
        post_token(&authority, &form(&id, &secret, &scope)).await.0,
        200
    );
}
