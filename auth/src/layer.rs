//! The tower layer: authenticate, authorize, hand the [`Caller`] to the service.
//!
//! Works with `tonic::transport::Server::builder().layer(...)`. A call that
//! passes gets the [`Caller`] in its request extensions; any other call is
//! answered here with a trailers-only gRPC error and never reaches the service.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use tower::{Layer, Service};

use crate::{Caller, Error, Permissions, Validator};

/// Builds [`AuthService`]s. See [`Validator::layer`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    validator: Validator,
    permissions: Arc<Permissions>,
}

impl AuthLayer {
    /// A layer checking tokens with `validator` and RPCs with `permissions`.
    pub fn new(validator: Validator, permissions: Permissions) -> Self {
        AuthLayer {
            validator,
            permissions: Arc::new(permissions),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            validator: self.validator.clone(),
            permissions: Arc::clone(&self.permissions),
        }
    }
}

/// The middleware built by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    validator: Validator,
    permissions: Arc<Permissions>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if self.permissions.is_public(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        // Use the service that was driven to readiness; leave a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        let permissions = Arc::clone(&self.permissions);
        // Only the head is borrowed while validating: the body need not be `Sync`.
        let (mut head, body) = request.into_parts();
        Box::pin(async move {
            match authorize(&validator, &permissions, &head).await {
                Ok(caller) => {
                    head.extensions.insert(caller);
                    inner.call(Request::from_parts(head, body)).await
                }
                Err(error) => Ok(error.to_status().into_http()),
            }
        })
    }
}

async fn authorize(
    validator: &Validator,
    permissions: &Permissions,
    head: &Parts,
) -> Result<Caller, Error> {
    let path = head.uri.path();
    let caller = match bearer_token(&head.headers) {
        Ok(token) => validator.validate(token).await,
        Err(error) => Err(error),
    };
    let caller = caller.inspect_err(|error| {
        metrics::counter!("entra_auth_rejections_total", "reason" => error.reason()).increment(1);
        tracing::info!(path, reason = error.reason(), %error, "call rejected: not authenticated");
    })?;
    permissions
        .authorize(path, &caller, validator.is_allow_listed(&caller.azp))
        .inspect_err(|error| {
            metrics::counter!("entra_auth_rejections_total", "reason" => error.reason())
                .increment(1);
            tracing::info!(
                path,
                azp = %caller.azp,
                oid = %caller.oid,
                reason = error.reason(),
                %error,
                "call rejected: not authorized"
            );
        })?;
    tracing::debug!(path, azp = %caller.azp, oid = %caller.oid, app_only = caller.app_only, "call authorized");
    Ok(caller)
}

/// The token of the one `authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(Error::MissingToken),
        (Some(_), Some(_)) => {
            return Err(Error::InvalidAuthorizationHeader(
                "send exactly one authorization header",
            ));
        }
        (Some(value), None) => value,
    };
    let value = value.to_str().map_err(|_| {
        Error::InvalidAuthorizationHeader("the header value is not printable ASCII")
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::InvalidAuthorizationHeader(
            "the scheme must be `Bearer`",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::InvalidAuthorizationHeader(
            "`Bearer` is not followed by a token",
        ));
    }
    Ok(token)
}
