//! Cost of token validation: cold (RSA + claims), cached, the whole layer on
//! a cache hit, and the crypto library's raw RS256 verify as a baseline.
//!
//! Run with `cargo bench -p entra-auth --bench validate`. It starts the same
//! HTTPS test authority as the integration tests.

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use entra_auth::{Permissions, Requirement, Validator};
use futures::executor::block_on;
use jsonwebtoken::{Algorithm, DecodingKey};
use tower::{Layer, Service};

#[allow(dead_code, unused_imports, unreachable_pub)]
#[path = "../tests/util.rs"]
mod util;

use util::{TestAuthority, app_claims, test_keys};

fn validation(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let [key, ..] = test_keys();
    let (_authority, cached, uncached, token) = runtime.block_on(async {
        let authority = TestAuthority::start(&[key]).await;
        let cached = Validator::new(authority.config()).unwrap();
        let mut config = authority.config();
        config.cache_max_entries = 0;
        let uncached = Validator::new(config).unwrap();
        cached.wait_ready().await;
        uncached.wait_ready().await;
        let token = key.sign(&app_claims(&authority.issuer()));
        (authority, cached, uncached, token)
    });
    println!("token length: {} bytes", token.len());

    let (signed, signature) = token.rsplit_once('.').unwrap();
    let jwk = key.jwk(None);
    let public =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    c.bench_function("rs256_verify_raw_jsonwebtoken_aws_lc", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                black_box(signature),
                black_box(signed.as_bytes()),
                &public,
                Algorithm::RS256,
            )
            .unwrap()
        })
    });
    c.bench_function("validate_cold_no_cache", |b| {
        b.iter(|| block_on(uncached.validate(black_box(&token))).unwrap())
    });
    c.bench_function("validate_cache_hit", |b| {
        b.iter(|| block_on(cached.validate(black_box(&token))).unwrap())
    });

    // The whole middleware on a cache hit, with a trivial inner service.
    let permissions = Permissions::new().rpc(
        "/todo.v1.ToDoService/GetToDo",
        Requirement::roles(["ToDoList.Read.All"]),
    );
    let inner = tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(()))
    });
    let mut service = cached.layer(permissions).layer(inner);
    let authorization = format!("Bearer {token}");
    c.bench_function("layer_call_cache_hit", |b| {
        b.iter(|| {
            let request = http::Request::builder()
                .uri("/todo.v1.ToDoService/GetToDo")
                .header("authorization", &authorization)
                .body(())
                .unwrap();
            block_on(service.call(request)).unwrap()
        })
    });
}

criterion_group!(benches, validation);
criterion_main!(benches);
