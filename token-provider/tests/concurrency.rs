//! Single flight, cancellation, background refresh: the properties that keep a busy
//! daemon from stampeding the token endpoint.

use std::time::{Duration, Instant};

use dev_authority::Fault;
use entra_token_provider::{TokenCache, TokenProvider};

use crate::util;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_callers_make_one_request() {
    let authority = util::start().await;
    let provider = util::secret_provider(&authority);
    // A slow endpoint widens the window in which callers pile up.
    authority
        .faults()
        .inject(Fault::delay(Duration::from_millis(300)));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().expect("every caller gets a token"));
    }
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
    assert_eq!(authority.token_requests(), 1);
}

#[tokio::test]
async fn providers_sharing_a_cache_share_tokens() {
    let authority = util::start().await;
    let cache = TokenCache::new();
    let a = TokenProvider::with_cache(util::secret_config(&authority), &cache).unwrap();
    let b = TokenProvider::with_cache(util::secret_config(&authority), &cache).unwrap();
    let (ta, tb) = tokio::join!(a.token(), b.token());
    assert!(ta.unwrap().same_token(&tb.unwrap()));
    assert_eq!(authority.token_requests(), 1);
    // Another cache is another key space.
    util::secret_provider(&authority).token().await.unwrap();
    assert_eq!(authority.token_requests(), 2);
    cache.clear();
    assert!(a.cached_token().is_none());
}

#[tokio::test]
async fn a_cancelled_caller_does_not_abort_the_request() {
    let authority = util::start().await;
    let provider = util::secret_provider(&authority);
    authority
        .faults()
        .inject(Fault::delay(Duration::from_millis(400)));
    let gave_up = tokio::time::timeout(Duration::from_millis(50), provider.token()).await;
    assert!(gave_up.is_err(), "the caller timed out");
    assert!(provider.cached_token().is_none());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        provider.cached_token().is_some(),
        "the request finished without its caller"
    );
    assert_eq!(authority.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_in_the_background_before_expiry() {
    // 4 s tokens (refresh_in 2 s), 1 s margin; every refresh takes 300 ms.
    let authority = util::start_with_lifetime(Duration::from_secs(4)).await;
    let config = util::secret_config(&authority).with_expiry_margin(Duration::from_secs(1));
    let provider = TokenProvider::new(config).unwrap();
    let first = provider.token().await.unwrap();
    authority
        .faults()
        .inject(Fault::delay(Duration::from_millis(300)));

    let started = Instant::now();
    let mut seen = vec![first.clone()];
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_millis(5000) {
        let t = Instant::now();
        let token = provider.token().await.expect("no caller fails");
        slowest = slowest.max(t.elapsed());
        assert!(
            token.expires_in() >= Duration::from_millis(900),
            "never a nearly expired token"
        );
        if !seen.last().unwrap().same_token(&token) {
            seen.push(token);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        slowest < Duration::from_millis(250),
        "a caller waited on the network: {slowest:?}"
    );
    assert!(
        seen.len() >= 3,
        "refreshed twice in 5 s, got {} tokens",
        seen.len()
    );
    assert_eq!(
        authority.token_requests() as usize,
        seen.len(),
        "one request per refresh"
    );
}
