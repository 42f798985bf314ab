//! The hot path: handing out a cached token, and the bearer layer's per-call overhead.
//! Starts a development authority on 127.0.0.1:0 once to fill the cache; nothing in the
//! measured loops touches the network.
//!
//! Run with `cargo bench -p entra-token-provider` (never run by `cargo test`).

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dev_authority::{DevAuthority, defaults};
use entra_token_provider::{Authority, BearerLayer, Config, Credential, TokenProvider};
use futures::FutureExt as _;
use tower::{Layer as _, Service as _};

fn provider(runtime: &tokio::runtime::Runtime) -> (DevAuthority, TokenProvider) {
    runtime.block_on(async {
        let authority = DevAuthority::start(dev_authority::Config::ephemeral())
            .await
            .expect("authority");
        let s = authority.client_settings(defaults::DAEMON_CLIENT).unwrap();
        let config = Config::new(
            Authority::parse(&s.authority).unwrap(),
            s.client_id,
            Credential::client_secret(s.client_secret.unwrap().expose()),
            s.scope,
        )
        .with_ca_pem(authority.ca_pem().as_bytes().to_vec());
        let provider = TokenProvider::new(config).unwrap();
        provider.token().await.expect("first token");
        (authority, provider)
    })
}

fn hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_authority, provider) = provider(&runtime);
    let _guard = runtime.enter();

    c.bench_function("cached_token", |b| {
        b.iter(|| black_box(provider.cached_token()))
    });
    c.bench_function("token (cached, polled once)", |b| {
        b.iter(|| black_box(provider.token().now_or_never().unwrap().unwrap()))
    });

    let inner = tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(()))
    });
    let mut bare = inner;
    c.bench_function("service call without layer", |b| {
        b.iter(|| {
            let response = bare.call(http::Request::new(())).now_or_never().unwrap();
            black_box(response.unwrap())
        })
    });
    let mut layered = BearerLayer::new(provider.clone()).layer(inner);
    c.bench_function("service call through BearerLayer", |b| {
        b.iter(|| {
            let response = layered.call(http::Request::new(())).now_or_never().unwrap();
            black_box(response.unwrap())
        })
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
