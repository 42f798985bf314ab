//! Key lifecycle: rollover under load, single-flight, rate limit, outages, cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use entra_auth::Validator;
use serde_json::json;
use tokio::sync::watch;

use crate::ready_validator;
use crate::util::{TestAuthority, TestKey, app_claims, now, test_keys};

/// `n` distinct valid tokens signed by `key`.
fn tokens(authority: &TestAuthority, key: &TestKey, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut claims = app_claims(&authority.issuer());
            claims["uti"] = json!(format!("{}-{i}", key.kid));
            key.sign(&claims)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rollover_under_concurrent_load_fails_nothing() {
    let [k1, k2, k3] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let mut config = authority.config();
    config.cache_max_entries = 0; // every call verifies RSA
    config.min_forced_refresh_interval = Duration::from_millis(100);
    let validator = ready_validator(config).await;

    let phases = [
        tokens(&authority, k1, 16),
        tokens(&authority, k2, 16),
        tokens(&authority, k3, 16),
    ];
    let (phase_tx, phase_rx) = watch::channel(0usize);
    let phases = Arc::new(phases);
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (validator, phases, ok, mut phase) = (
            validator.clone(),
            phases.clone(),
            ok.clone(),
            phase_rx.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0.. {
                let p = *phase.borrow_and_update();
                if p == usize::MAX {
                    break;
                }
                let token = &phases[p][(worker + i) % 16];
                match validator.validate(token).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(format!("phase {p}: {} {e}", e.reason())),
                }
                tokio::task::yield_now().await;
            }
            failures
        }));
    }
    let before = authority.jwks_fetches();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Entra publishes the next key, then starts signing with it.
    authority.publish(&[k1, k2]);
    phase_tx.send_replace(1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Next rollover: the oldest key is retired.
    authority.publish(&[k2, k3]);
    phase_tx.send_replace(2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    phase_tx.send_replace(usize::MAX);

    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok.load(Ordering::Relaxed) > 100, "load was too light");
    // One forced refresh per rollover, shared by all workers.
    assert_eq!(authority.jwks_fetches() - before, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kid_requests_share_one_fetch() {
    let [k1, k2, _] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await;
    authority.publish(&[k1, k2]);
    authority.set_delay(Duration::from_millis(300));
    let before = authority.jwks_fetches();
    let batch = tokens(&authority, k2, 50);
    let results = futures::future::join_all(batch.iter().map(|t| {
        let validator = validator.clone();
        async move { validator.validate(t).await }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(authority.jwks_fetches() - before, 1);
}

#[tokio::test]
async fn random_kids_force_at_most_one_refresh_per_interval() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await; // default: 5 min
    let before = authority.jwks_fetches();
    let claims = app_claims(&authority.issuer());
    let flood: Vec<String> = (0..200)
        .map(|i| {
            let header = json!({"typ": "JWT", "alg": "RS256", "kid": format!("random-{i}")});
            k1.sign_with_header(&header, &claims)
        })
        .collect();
    // Concurrently, then one after another.
    let results =
        futures::future::join_all(flood[..100].iter().map(|t| validator.validate(t))).await;
    for token in &flood[100..] {
        let error = validator.validate(token).await.unwrap_err();
        assert_eq!(error.reason(), "UNKNOWN_SIGNING_KEY");
    }
    assert!(results.iter().all(|r| {
        r.as_ref()
            .is_err_and(|e| e.reason() == "UNKNOWN_SIGNING_KEY")
    }));
    assert_eq!(authority.jwks_fetches() - before, 1);
    // Known keys still work.
    validator.validate(&k1.sign(&claims)).await.unwrap();
}

#[tokio::test]
async fn authority_down_at_start_then_up() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    authority.set_down(true);
    let validator = Validator::new(authority.config()).expect("starts while the authority is down");
    let mut readiness = validator.readiness();
    assert!(!validator.is_ready());
    let token = k1.sign(&app_claims(&authority.issuer()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let error = validator.validate(&token).await.unwrap_err();
    assert_eq!(error.reason(), "KEYS_UNAVAILABLE");
    assert_eq!(error.to_status().code(), tonic::Code::Unavailable);
    assert!(!*readiness.borrow_and_update());

    authority.set_down(false);
    tokio::time::timeout(Duration::from_secs(5), readiness.wait_for(|r| *r))
        .await
        .expect("ready once the authority is back")
        .unwrap();
    validator.validate(&token).await.unwrap();
}

#[tokio::test]
async fn authority_down_mid_run_keeps_last_known_keys() {
    let [k1, _, k3] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let mut config = authority.config();
    config.cache_max_entries = 0;
    config.refresh_interval = Duration::from_millis(100);
    let validator = ready_validator(config).await;
    let fresh = tokens(&authority, k1, 10);

    authority.set_down(true);
    let before = authority.jwks_fetches();
    // A forced refresh fails too: fail closed, but retryable (the key may be
    // a real one published during the outage), not "unknown key".
    let error = validator
        .validate(&k3.sign(&app_claims(&authority.issuer())))
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "KEYS_UNAVAILABLE", "{error}");
    assert_eq!(error.to_status().code(), tonic::Code::Unavailable);
    for token in &fresh {
        validator
            .validate(token)
            .await
            .expect("last known keys still verify");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(validator.is_ready());
    assert_eq!(
        authority.jwks_fetches(),
        before,
        "nothing was served while down"
    );
}

#[tokio::test]
async fn background_refresh_picks_up_new_keys() {
    let [k1, k2, _] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let mut config = authority.config();
    config.refresh_interval = Duration::from_millis(200);
    let validator = ready_validator(config).await;
    authority.publish(&[k2]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let fetches = authority.jwks_fetches();
    assert!(fetches >= 2, "{fetches}");
    validator
        .validate(&k2.sign(&app_claims(&authority.issuer())))
        .await
        .unwrap();
    assert_eq!(
        authority.jwks_fetches(),
        fetches,
        "no forced refresh was needed"
    );
}

#[tokio::test]
async fn cached_tokens_follow_key_retirement_and_expiry() {
    let [k1, k2, _] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let mut config = authority.config();
    config.clock_skew = Duration::ZERO;
    let validator = ready_validator(config).await;

    // Retired key: a cached token signed by it stops validating.
    let old = k1.sign(&app_claims(&authority.issuer()));
    validator.validate(&old).await.unwrap();
    validator.validate(&old).await.unwrap();
    authority.publish(&[k2]);
    validator
        .validate(&k2.sign(&app_claims(&authority.issuer())))
        .await
        .unwrap();
    let error = validator.validate(&old).await.unwrap_err();
    assert_eq!(error.reason(), "UNKNOWN_SIGNING_KEY");

    // Expiry is checked on every hit.
    let mut claims = app_claims(&authority.issuer());
    claims["exp"] = json!(now() + 1);
    let short = k2.sign(&claims);
    validator.validate(&short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let error = validator.validate(&short).await.unwrap_err();
    assert_eq!(error.reason(), "TOKEN_EXPIRED");
}

#[tokio::test]
async fn trust_roots_come_from_the_ca_file() {
    let [k1, ..] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;

    // Without the dev CA the authority's certificate is not trusted.
    let mut untrusted = authority.config();
    untrusted.ca_pem = None;
    let validator = Validator::new(untrusted).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!validator.is_ready());
    assert_eq!(
        authority.metadata_fetches(),
        0,
        "TLS failed before any HTTP request"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, authority.ca_pem()).unwrap();
    let mut config = authority.config();
    config.ca_pem = None;
    config.ca_file = Some(ca_file);
    let validator = ready_validator(config).await;
    validator
        .validate(&k1.sign(&app_claims(&authority.issuer())))
        .await
        .unwrap();

    let mut missing = authority.config();
    missing.ca_file = Some(dir.path().join("absent.pem"));
    assert!(
        Validator::new(missing).is_err(),
        "an unreadable CA file is a config error"
    );
}

/// Regression (issue #8, authority faults): a key published while the
/// authority was down used to be refused for the whole forced-refresh rate
/// limit (5 min) after the authority returned, because the failed forced
/// refresh counted against it. Now a failed fetch only delays the next forced
/// refresh by the retry backoff.
#[tokio::test]
async fn key_rotated_during_an_outage_is_picked_up_when_the_authority_returns() {
    let [k1, k2, _] = test_keys();
    let authority = TestAuthority::start(&[k1]).await;
    let validator = ready_validator(authority.config()).await; // rate limit: default 5 min
    let old = k1.sign(&app_claims(&authority.issuer()));
    let new = k2.sign(&app_claims(&authority.issuer()));

    // Rollover and outage before the validator has seen the new key.
    authority.publish(&[k1, k2]);
    authority.set_down(true);
    for _ in 0..3 {
        let error = validator.validate(&new).await.unwrap_err();
        assert_eq!(error.reason(), "KEYS_UNAVAILABLE", "{error}");
        validator
            .validate(&old)
            .await
            .expect("old key still verifies");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    authority.set_down(false);
    // The retry backoff is 50–200 ms in tests (1–60 s by default).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match validator.validate(&new).await {
            Ok(_) => break,
            Err(error) => {
                assert_eq!(error.reason(), "KEYS_UNAVAILABLE", "{error}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "new key not picked up after the authority returned"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Random kids while the authority answers are UNKNOWN again, and do not
    // reach the authority (the successful refresh restarted the rate limit).
    let fetches = authority.jwks_fetches();
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "random"});
    let error = validator
        .validate(&k1.sign_with_header(&header, &app_claims(&authority.issuer())))
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "UNKNOWN_SIGNING_KEY");
    assert_eq!(authority.jwks_fetches(), fetches);
}
