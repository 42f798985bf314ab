//! The authority misbehaving: throttling with `Retry-After`, 503s, slow answers, outages.
//! Request counts come from the authority itself.

use std::time::{Duration, Instant};

use dev_authority::{Fault, FaultKind};
use entra_token_provider::{Error, RetryPolicy, TokenProvider};

use crate::util;

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let authority = util::start().await;
    let provider = util::secret_provider(&authority);
    authority
        .faults()
        .inject(Fault::too_many_requests(Duration::from_secs(2)).times(1));
    let started = Instant::now();
    let call = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        authority.token_requests(),
        1,
        "no request before Retry-After passes"
    );
    let token = call.await.unwrap().expect("token after waiting");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(authority.token_requests(), 2);
    assert!(!token.expose_secret().is_empty());
}

#[tokio::test]
async fn a_long_retry_after_fails_fast_and_blocks_further_requests() {
    let authority = util::start().await;
    let mut config = util::secret_config(&authority);
    config.retry = RetryPolicy::attempts(3).with_max_retry_after_wait(Duration::from_secs(1));
    let provider = TokenProvider::new(config).unwrap();
    // Retry-After beyond an hour is capped at one hour.
    authority
        .faults()
        .inject(Fault::too_many_requests(Duration::from_secs(7200)).times(1));
    let started = Instant::now();
    let err = provider.token().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "did not wait: {:?}",
        started.elapsed()
    );
    let Error::Throttled {
        status,
        retry_after,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*status, 429);
    assert!(*retry_after > Duration::from_secs(3590) && *retry_after <= Duration::from_secs(3600));
    assert!(
        err.is_transient() && err.to_string().contains("429"),
        "{err}"
    );
    assert_eq!(authority.token_requests(), 1);
    // The fault is gone, but the client keeps its word: no request before Retry-After.
    for _ in 0..5 {
        assert!(matches!(
            provider.token().await,
            Err(Error::Throttled { .. })
        ));
    }
    assert_eq!(authority.token_requests(), 1);
}

#[tokio::test]
async fn unavailable_is_retried_with_backoff() {
    let authority = util::start().await;
    let provider = util::secret_provider(&authority);
    authority.faults().inject(Fault::unavailable().times(2));
    let started = Instant::now();
    provider.token().await.expect("third attempt succeeds");
    assert_eq!(authority.token_requests(), 3);
    // Two backoffs of at least half of 50 ms and 100 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(75),
        "{:?}",
        started.elapsed()
    );

    // 503 with Retry-After: waited for, not hammered.
    provider.invalidate();
    authority.reset_stats();
    authority.faults().inject(Fault {
        kind: FaultKind::Unavailable {
            retry_after_secs: Some(1),
        },
        times: Some(1),
        endpoint: Default::default(),
    });
    let started = Instant::now();
    provider.token().await.expect("token after Retry-After");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(authority.token_requests(), 2);

    // Still failing after every attempt: the error says so.
    provider.invalidate();
    authority.reset_stats();
    authority.faults().inject(Fault::unavailable());
    let err = provider.token().await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(authority.token_requests(), 3);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let authority = util::start().await;
    let mut config = util::secret_config(&authority);
    config.request_timeout = Duration::from_millis(300);
    config.retry =
        RetryPolicy::attempts(2).with_backoff(Duration::from_millis(20), Duration::from_millis(50));
    let provider = TokenProvider::new(config).unwrap();
    // Warm discovery, so only the token endpoint is slow.
    provider.token().await.unwrap();
    provider.invalidate();

    authority
        .faults()
        .inject(Fault::delay(Duration::from_secs(2)));
    let started = Instant::now();
    let err = provider.token().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, Error::Unavailable { attempts: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");

    // A delay within the timeout is fine.
    authority.faults().clear();
    authority
        .faults()
        .inject(Fault::delay(Duration::from_millis(100)));
    provider.token().await.expect("slow but in time");
}

#[tokio::test]
async fn a_cached_token_is_served_through_an_outage() {
    // 4 s tokens, 1 s margin: refresh due after ~2 s, unusable after 3 s.
    let authority = util::start_with_lifetime(Duration::from_secs(4)).await;
    let config = util::secret_config(&authority).with_expiry_margin(Duration::from_secs(1));
    let provider = TokenProvider::new(config).unwrap();
    let started = Instant::now();
    let first = provider.token().await.unwrap();

    authority.faults().inject(Fault::unavailable());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Refresh is due and failing in the background; callers still get the cached token,
    // without waiting.
    while started.elapsed() < Duration::from_millis(2800) {
        let t = Instant::now();
        let token = provider
            .token()
            .await
            .expect("cached token during the outage");
        assert!(token.same_token(&first));
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        authority.stats().faults_injected >= 1,
        "a background refresh was tried"
    );

    // Past the margin the token is no longer handed out: the outage becomes visible.
    tokio::time::sleep(Duration::from_millis(3100).saturating_sub(started.elapsed())).await;
    let err = provider.token().await.unwrap_err();
    assert!(err.is_transient(), "{err}");

    // Back up: a new token.
    authority.faults().clear();
    let next = provider.token().await.expect("token after the outage");
    assert!(!next.same_token(&first));
}
