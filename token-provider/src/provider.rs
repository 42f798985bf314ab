//! [`TokenProvider`]: hands out cached tokens without touching the network, refreshes them
//! in the background before they expire, and runs at most one acquisition per cache key —
//! as its own task, so a caller that gives up does not abort it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_auth::Authority;
use futures::FutureExt as _;

use crate::cache::{CacheKey, Inflight, Joined, Lookup, Slot};
use crate::credential::{Authentication, JWT_BEARER};
use crate::discovery::Discovery;
use crate::token::TokenResponse;
use crate::transport::{self, Failure};
use crate::{AccessToken, Config, Credential, Error, RetryPolicy, TokenCache, scope};

const TOKEN_ENDPOINT: &str = "token endpoint";

/// Acquires app-only access tokens for one (authority, client, scope) with the
/// client-credentials grant, caches and refreshes them. Cheap to clone; clones share
/// everything.
///
/// - [`TokenProvider::token`] returns the cached token when it has more than
///   [`Config::expiry_margin`] left (no network, no lock held across an await); past
///   `refresh_in` (or half its lifetime) it still returns it and starts one background
///   refresh.
/// - Concurrent callers on a cold cache share one request.
/// - Transient failures are retried with backoff; `Retry-After` is honoured.
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

/// What providers for other scopes of the same client share.
struct Common {
    http: reqwest::Client,
    discovery: Arc<Discovery>,
    authority: Authority,
    client_id: String,
    credential: Credential,
    expiry_margin: Duration,
    retry: RetryPolicy,
    cache: TokenCache,
}

struct Inner {
    common: Arc<Common>,
    scope: String,
    slot: Arc<Slot>,
}

impl TokenProvider {
    /// A provider with its own cache. Checks the configuration (the scope must be
    /// `{resource}/.default`) without any network request.
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::with_cache(config, &TokenCache::new())
    }

    /// A provider using `cache`: providers sharing a cache and a key (authority, client
    /// id, scope) share tokens and in-flight requests.
    pub fn with_cache(config: Config, cache: &TokenCache) -> Result<Self, Error> {
        let scope = scope::validate(&config.scope)?;
        let client_id = config.client_id.trim().to_owned();
        if client_id.is_empty() {
            return Err(Error::Config("the client id is empty".into()));
        }
        config.credential.check()?;
        let http = transport::client(&config)?;
        let discovery = Discovery::new(config.authority.metadata_url(), config.metadata_ttl);
        let common = Arc::new(Common {
            http,
            discovery: Arc::new(discovery),
            authority: config.authority,
            client_id,
            credential: config.credential,
            expiry_margin: config.expiry_margin,
            retry: config.retry,
            cache: cache.clone(),
        });
        Ok(Self::for_common(common, scope))
    }

    fn for_common(common: Arc<Common>, scope: String) -> Self {
        let key = CacheKey::new(common.authority.as_str(), &common.client_id, &scope);
        let slot = common.cache.slot(key);
        TokenProvider {
            inner: Arc::new(Inner {
                common,
                scope,
                slot,
            }),
        }
    }

    /// A provider for another scope of the same client, sharing the HTTPS client, the
    /// discovered endpoint, the credential and the cache.
    pub fn for_scope(&self, scope: &str) -> Result<Self, Error> {
        let scope = scope::validate(scope)?;
        Ok(Self::for_common(self.inner.common.clone(), scope))
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        &self.inner.scope
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.common.client_id
    }

    /// The authority.
    pub fn authority(&self) -> &Authority {
        &self.inner.common.authority
    }

    /// An access token: the cached one if usable, else a new one (shared with every
    /// concurrent caller). Cancelling this future does not cancel the request.
    pub async fn token(&self) -> Result<AccessToken, Error> {
        match self.inner.slot.lookup(Instant::now()) {
            Lookup::Fresh(token) => {
                metrics::counter!("entra_token_cache_hits_total").increment(1);
                Ok(token)
            }
            Lookup::RefreshDue(token) => {
                metrics::counter!("entra_token_cache_hits_total").increment(1);
                self.refresh_in_background();
                Ok(token)
            }
            Lookup::Missing => {
                metrics::counter!("entra_token_cache_misses_total").increment(1);
                self.acquire(false).await
            }
        }
    }

    /// The cached token if it is usable, without any network wait; starts a background
    /// refresh when one is due. `None` means [`TokenProvider::token`] must fetch one.
    pub fn cached_token(&self) -> Option<AccessToken> {
        match self.inner.slot.lookup(Instant::now()) {
            Lookup::Fresh(token) => Some(token),
            Lookup::RefreshDue(token) => {
                self.refresh_in_background();
                Some(token)
            }
            Lookup::Missing => None,
        }
    }

    /// Acquires a new token now, even if the cached one is usable (joins an acquisition
    /// already running). The cached token keeps being served meanwhile.
    pub async fn refresh(&self) -> Result<AccessToken, Error> {
        self.acquire(true).await
    }

    /// Drops the cached token: the next call acquires a new one.
    pub fn invalidate(&self) {
        self.inner.slot.invalidate();
    }

    /// Drops the cached token only if it is still `token` (e.g. the one a server just
    /// rejected); a newer token is kept. Returns whether it was dropped.
    pub fn invalidate_token(&self, token: &AccessToken) -> bool {
        let dropped = self.inner.slot.invalidate_if(token);
        if dropped {
            tracing::info!(client_id = %self.client_id(), scope = %self.scope(), "cached token dropped after the server rejected it");
        }
        dropped
    }

    async fn acquire(&self, force: bool) -> Result<AccessToken, Error> {
        match self.inner.slot.join_or_start(force, |g| self.start(g)) {
            Joined::Ready(token) => Ok(token),
            Joined::Waiting(inflight) => inflight.await,
        }
    }

    fn refresh_in_background(&self) {
        let slot = &self.inner.slot;
        if slot.busy() || !slot.background_allowed(Instant::now()) {
            return;
        }
        // Outside a Tokio runtime (a synchronous caller) there is nothing to run it on; the
        // token is still usable and the next async caller will refresh it.
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if slot.start_if_idle(|g| self.start(g)) {
            tracing::debug!(client_id = %self.client_id(), scope = %self.scope(), "background token refresh started");
        }
    }

    /// Spawns acquisition `generation`; the returned future shares its result.
    fn start(&self, generation: u64) -> Inflight {
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let result = inner.acquire_with_retries().await;
            let backoff = inner.common.retry.backoff(inner.slot.failures() + 1);
            inner.slot.finish(generation, &result, backoff);
            result
        });
        let slot = self.inner.slot.clone();
        let retry = self.inner.common.retry.clone();
        async move {
            match task.await {
                Ok(result) => result,
                Err(e) => {
                    let error = Error::Unavailable {
                        endpoint: TOKEN_ENDPOINT,
                        attempts: 0,
                        message: format!("the token task ended abnormally: {e}"),
                    };
                    let result = Err(error);
                    slot.finish(generation, &result, retry.backoff(1));
                    result
                }
            }
        }
        .boxed()
        .shared()
    }
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.common;
        f.debug_struct("TokenProvider")
            .field("authority", &c.authority.as_str())
            .field("client_id", &c.client_id)
            .field("scope", &self.inner.scope)
            .field("credential", &c.credential.kind())
            .finish()
    }
}

// === impl Inner ===

impl Inner {
    /// One acquisition: attempts with backoff, `Retry-After` as a floor.
    async fn acquire_with_retries(&self) -> Result<AccessToken, Error> {
        let retry = &self.common.retry;
        let started = Instant::now();
        let mut attempt = 0;
        let result = loop {
            if let Some((wait, status, endpoint)) = self.slot.blocked_for(Instant::now()) {
                if wait > retry.max_retry_after_wait {
                    break Err(Error::Throttled {
                        endpoint,
                        status,
                        retry_after: wait,
                    });
                }
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "waiting for Retry-After before calling the token endpoint"
                );
                tokio::time::sleep(wait).await;
            }
            attempt += 1;
            let outcome = self.attempt().await;
            let label = match &outcome {
                Ok(_) => "ok",
                Err(Failure::Fatal(_)) => "rejected",
                Err(Failure::Transient { .. }) => "transient_error",
            };
            metrics::counter!("entra_token_requests_total", "outcome" => label).increment(1);
            match outcome {
                Ok(token) => break Ok(token),
                Err(Failure::Fatal(e)) => break Err(e),
                Err(Failure::Transient {
                    endpoint,
                    status,
                    retry_after,
                    message,
                }) => {
                    let message = self.redact_text(message);
                    tracing::warn!(attempt, endpoint, status, %message, "transient failure while getting a token");
                    if let (Some(after), Some(status)) = (retry_after, status) {
                        self.slot
                            .block_until(Instant::now() + after, status, endpoint);
                    }
                    if attempt >= retry.max_attempts {
                        break Err(match (retry_after, status) {
                            (Some(retry_after), Some(status)) => Error::Throttled {
                                endpoint,
                                status,
                                retry_after,
                            },
                            _ => Error::Unavailable {
                                endpoint,
                                attempts: attempt,
                                message,
                            },
                        });
                    }
                    if retry_after.is_none() {
                        tokio::time::sleep(retry.backoff(attempt)).await;
                    }
                }
            }
        };
        let result = result.map_err(|e| match self.common.credential.redaction() {
            Some(secret) => e.redact(secret),
            None => e,
        });
        if let Ok(token) = &result
            && token.expires_in() <= self.common.expiry_margin
        {
            tracing::warn!(
                expires_in_s = token.expires_in().as_secs(),
                expiry_margin_s = self.common.expiry_margin.as_secs(),
                "the token lives shorter than the expiry margin, so it cannot be cached: every call will request a new one; lower Config::expiry_margin"
            );
        }
        match &result {
            Ok(token) => tracing::info!(
                client_id = %self.common.client_id,
                scope = %self.scope,
                credential = self.common.credential.kind(),
                expires_in_s = token.expires_in().as_secs(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "access token acquired"
            ),
            Err(e) => {
                metrics::counter!("entra_token_acquisition_failures_total").increment(1);
                tracing::warn!(
                    client_id = %self.common.client_id,
                    scope = %self.scope,
                    error = %e,
                    "could not get an access token"
                )
            }
        }
        result
    }

    fn redact_text(&self, text: String) -> String {
        match self.common.credential.redaction() {
            Some(secret) => crate::secret::scrub(&text, secret),
            None => text,
        }
    }

    /// One attempt: discovery (cached), credential, token request.
    async fn attempt(&self) -> Result<AccessToken, Failure> {
        let c = &self.common;
        let endpoint = c.discovery.token_endpoint(&c.http).await?;
        let auth = c.credential.authenticate(&c.client_id, &endpoint).await?;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("scope", &self.scope),
        ];
        match &auth {
            Authentication::Secret(secret) => form.push(("client_secret", secret)),
            Authentication::Assertion(assertion) => {
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", assertion));
            }
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        tracing::debug!(token_endpoint = %endpoint, client_request_id = %request_id, "requesting a token");
        let sent = Instant::now();
        let response = c
            .http
            .post(&*endpoint)
            .header("accept", "application/json")
            .header("client-request-id", &request_id)
            .header("return-client-request-id", "true")
            .form(&form)
            .send()
            .await
            .map_err(|e| transport::send_failure(TOKEN_ENDPOINT, &e))?;
        let body = transport::read(TOKEN_ENDPOINT, "token request", &endpoint, response).await?;
        let unexpected = |message: String| {
            Failure::Fatal(Error::Unexpected {
                endpoint: TOKEN_ENDPOINT,
                url: endpoint.to_string(),
                message,
            })
        };
        TokenResponse::parse(&body)
            .map_err(unexpected)?
            .into_token(sent, c.expiry_margin)
            .map_err(unexpected)
    }
}
