//! Protection against overload: a global cap on calls in flight that sheds
//! the excess at once (RESOURCE_EXHAUSTED, never an unbounded queue), a
//! deadline on every call, and an optional per-client (`azp`) rate limit.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tonic::Status;
use tower::{Layer, Service};

/// Caps the calls in flight; a call over the cap is answered
/// RESOURCE_EXHAUSTED immediately.
#[derive(Clone, Debug)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ShedLayer {
    /// At most `limit` calls in flight across all connections.
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = ShedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShedService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`ShedLayer`].
#[derive(Clone, Debug)]
pub struct ShedService<S> {
    inner: S,
    layer: ShedLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ShedService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Ok(permit) = Arc::clone(&self.layer.permits).try_acquire_owned() else {
            metrics::counter!("todo_calls_shed_total").increment(1);
            let status = Status::resource_exhausted(format!(
                "the server is at its limit of {} concurrent calls; retry with backoff",
                self.layer.limit
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(permit);
            response
        })
    }
}

/// Ends any call still running after `limit` with DEADLINE_EXCEEDED.
///
/// The call's future is dropped at that point: a change already handed to
/// the store may still commit (as with any deadline), which is why creates
/// carry a `request_id` and updates an etag, so a retry is safe. A shorter
/// `grpc-timeout` sent by the client still applies (tonic enforces it).
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    /// Every call must finish within `limit`.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            limit: self.limit,
        }
    }
}

/// The service built by [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
    limit: Duration,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DeadlineService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let limit = self.limit;
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, future).await {
                Ok(response) => response,
                Err(_) => {
                    metrics::counter!("todo_calls_timed_out_total").increment(1);
                    let status = Status::deadline_exceeded(format!(
                        "the call did not finish within the server's limit of {} ms",
                        limit.as_millis()
                    ));
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// A token bucket per client id: `per_second` calls sustained, `burst` at once.
#[derive(Debug)]
pub struct ClientRateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Most clients tracked at once; idle ones are dropped beyond that.
const MAX_TRACKED_CLIENTS: usize = 100_000;

impl ClientRateLimit {
    /// Allows each client `per_second` calls per second with bursts of `burst`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call from `client`'s bucket, or says how long to wait.
    pub fn check(&self, client: &str) -> Result<(), Status> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| Status::internal("rate limiter poisoned"))?;
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(client) {
            let full = self.burst;
            let rate = self.per_second;
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < full);
        }
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second);
        metrics::counter!("todo_calls_rate_limited_total").increment(1);
        Err(Status::resource_exhausted(format!(
            "client {client} is over its rate limit of {} calls/s; retry in {} ms",
            self.per_second,
            wait.as_millis().max(1)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses_then_refills() {
        let limit = ClientRateLimit::new(1000.0, 3);
        for _ in 0..3 {
            limit.check("a").unwrap();
        }
        let refused = limit.check("a").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("rate limit"));
        // Another client has its own bucket.
        limit.check("b").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        limit.check("a").unwrap();
    }
}
