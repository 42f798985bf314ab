//! [`BearerLayer`]: puts `authorization: Bearer …` on every request of a tonic channel, and
//! drops the cached token when the server answers `UNAUTHENTICATED` (grpc-status 16 in the
//! headers of a trailers-only response, in the trailers, or HTTP 401).
//! [`retry_unauthenticated_once`] replays a call once after that (request bodies cannot be
//! replayed inside a generic layer, so the caller does it).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::{AccessToken, Error, TokenProvider};

/// The error type of [`BearerService`]: the inner service's error, or a [`tonic::Status`]
/// explaining why no token could be had (its source is the [`Error`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower layer adding a bearer token to every request. In the common case (a usable
/// cached token) it adds the header and calls through without waiting on anything.
///
/// ```no_run
/// # async fn demo(provider: entra_token_provider::TokenProvider) -> Result<(), Box<dyn std::error::Error>> {
/// use entra_token_provider::BearerLayer;
/// let channel = tonic::transport::Endpoint::from_static("https://api.example.com").connect().await?;
/// let channel = tower::ServiceBuilder::new().layer(BearerLayer::new(provider)).service(channel);
/// // let client = MyServiceClient::new(channel);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BearerLayer {
    provider: TokenProvider,
}

impl BearerLayer {
    /// A layer taking tokens from `provider`.
    pub fn new(provider: TokenProvider) -> Self {
        BearerLayer { provider }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            provider: self.provider.clone(),
        }
    }
}

/// The service made by [`BearerLayer`].
#[derive(Clone, Debug)]
pub struct BearerService<S> {
    inner: S,
    provider: TokenProvider,
}

// === impl BearerService ===

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqBody: Send + 'static,
{
    type Response = Response<WatchedBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if let Some(token) = self.provider.cached_token() {
            request
                .headers_mut()
                .insert(AUTHORIZATION, token.header_value().clone());
            let future = self.inner.call(request);
            let watch = Some(Watch {
                provider: self.provider.clone(),
                token,
            });
            return ResponseFuture {
                state: State::Direct { future, watch },
            };
        }
        // No usable token: wait for one, then call the service made ready by `poll_ready`.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let provider = self.provider.clone();
        let future = Box::pin(async move {
            let token = provider.token().await.map_err(token_status)?;
            request
                .headers_mut()
                .insert(AUTHORIZATION, token.header_value().clone());
            let response = inner.call(request).await.map_err(Into::into)?;
            Ok(Watch { provider, token }.response(response))
        });
        ResponseFuture {
            state: State::Waiting { future },
        }
    }
}

/// The status a call fails with when no token can be had: `UNAVAILABLE` for outages and
/// throttling, `UNAUTHENTICATED` otherwise; the [`Error`] is its source.
fn token_status(error: Error) -> BoxError {
    let code = if error.is_transient() {
        Code::Unavailable
    } else {
        Code::Unauthenticated
    };
    let mut status = Status::new(code, format!("could not get an access token: {error}"));
    status.set_source(std::sync::Arc::new(error));
    Box::new(status)
}

/// Remembers which token a call carried, to drop it if the server rejects it.
struct Watch {
    provider: TokenProvider,
    token: AccessToken,
}

impl Watch {
    fn reject(self) {
        self.provider.invalidate_token(&self.token);
    }

    fn response<B>(self, response: Response<B>) -> Response<WatchedBody<B>> {
        let rejected =
            response.status() == StatusCode::UNAUTHORIZED || is_unauthenticated(response.headers());
        let watch = if rejected {
            self.reject();
            None
        } else {
            Some(self)
        };
        response.map(|inner| WatchedBody { inner, watch })
    }
}

fn is_unauthenticated(headers: &HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"16")
}

pin_project! {
    /// The future of [`BearerService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        /// A cached token was used.
        Direct {
            #[pin]
            future: F,
            watch: Option<Watch>,
        },
        /// Waiting for a token first.
        Waiting {
            future: BoxFuture<'static, Result<Response<WatchedBody<B>>, BoxError>>,
        },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<WatchedBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Direct { future, watch } => {
                let response = ready!(future.poll(cx)).map_err(Into::into)?;
                let watch = watch.take().expect("polled after completion");
                Poll::Ready(Ok(watch.response(response)))
            }
            StateProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

pin_project! {
    /// A response body that drops the call's token if the trailers say `UNAUTHENTICATED`.
    pub struct WatchedBody<B> {
        #[pin]
        inner: B,
        watch: Option<Watch>,
    }
}

impl<B: Body> Body for WatchedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(trailers) = frame.trailers_ref()
            && is_unauthenticated(trailers)
            && let Some(watch) = this.watch.take()
        {
            watch.reject();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Runs `call`; if it fails with `UNAUTHENTICATED` from the server, drops the token it
/// used and runs it exactly once more, with a fresh token.
///
/// The [`BearerLayer`] already drops a rejected token; this helper also drops the token
/// that was cached before the call (if still cached), for callers that attach tokens
/// themselves. A failure to get a token at all is not retried.
///
/// ```no_run
/// # async fn demo(provider: entra_token_provider::TokenProvider,
/// #     client: tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>) -> Result<(), tonic::Status> {
/// use entra_token_provider::retry_unauthenticated_once;
/// use tonic_health::pb::HealthCheckRequest;
/// let reply = retry_unauthenticated_once(&provider, || {
///     let mut client = client.clone();
///     async move { client.check(HealthCheckRequest::default()).await }
/// })
/// .await?;
/// # let _ = reply; Ok(()) }
/// ```
pub async fn retry_unauthenticated_once<F, Fut, T>(
    provider: &TokenProvider,
    mut call: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let before = provider.cached_token();
    match call().await {
        Err(status) if status.code() == Code::Unauthenticated && !from_provider(&status) => {
            if let Some(token) = before {
                provider.invalidate_token(&token);
            }
            tracing::info!(scope = %provider.scope(), "the server answered UNAUTHENTICATED; retrying once with a fresh token");
            call().await
        }
        other => other,
    }
}

/// Whether `status` reports a failure to get a token (not a server's rejection).
fn from_provider(status: &Status) -> bool {
    std::error::Error::source(status).is_some_and(|s| s.downcast_ref::<Error>().is_some())
}
