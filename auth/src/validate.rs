//! The validator: turns a bearer token into a [`Caller`], or says why not.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::cache::{TokenCache, Verified};
use crate::error::echo;
use crate::keys::{AbortOnDrop, KeyStore, Schedule};
use crate::metadata::KeySet;
use crate::policy::Policy;
use crate::{AuthLayer, Caller, Config, Error, Permissions, token};

/// Validates Entra access tokens for one authority and API.
///
/// Cheap to clone (one `Arc`). Creating it starts a background task that
/// loads the authority's keys, retrying with backoff while the authority is
/// unreachable, then refreshes them on a long interval; until the first load
/// [`is_ready`](Validator::is_ready) is false and validation fails with
/// [`Error::KeysUnavailable`]. The task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Arc<KeyStore>,
    cache: Arc<TokenCache>,
    policy: Policy,
    _background: AbortOnDrop,
}

impl Validator {
    /// Checks the configuration and starts loading keys in the background.
    ///
    /// Fails only on bad configuration (e.g. an unreadable CA file), never
    /// because the authority is down. Must be called inside a Tokio runtime.
    pub fn new(config: Config) -> Result<Self, Error> {
        config.check()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "Validator::new must be called inside a Tokio runtime".into(),
            ));
        }
        let cache = Arc::new(TokenCache::new(
            config.cache_max_entries,
            config.cache_max_bytes,
            config.cache_ttl,
        ));
        let on_change = {
            let cache = Arc::clone(&cache);
            Box::new(move |keys: &KeySet| cache.retain_keys(keys))
        };
        let keys = KeyStore::new(&config, on_change)?;
        let background = keys.spawn_background(Schedule::new(&config));
        Ok(Validator {
            inner: Arc::new(Inner {
                keys,
                cache,
                policy: Policy::new(&config),
                _background: background,
            }),
        })
    }

    /// Whether signing keys have been loaded (once loaded, they stay: a
    /// failed refresh keeps the last known good keys).
    pub fn is_ready(&self) -> bool {
        *self.inner.keys.readiness().borrow()
    }

    /// Readiness as a watch channel: `false` until the first key set loads,
    /// then `true`. A server can drive its health status from it.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.inner.keys.readiness()
    }

    /// Waits until keys are loaded. Wrap in a timeout if needed.
    pub async fn wait_ready(&self) {
        let mut ready = self.readiness();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// Whether `azp` is on the ACL allow-list ([`Config::allowed_client_ids`]).
    pub fn is_allow_listed(&self, azp: &str) -> bool {
        self.inner.policy.is_allow_listed(azp)
    }

    /// A tower layer that authenticates every call with this validator and
    /// authorizes it with `permissions`.
    pub fn layer(&self, permissions: Permissions) -> AuthLayer {
        AuthLayer::new(self.clone(), permissions)
    }

    /// Validates a bearer token (without the `Bearer ` prefix).
    pub async fn validate(&self, token: &str) -> Result<Caller, Error> {
        let inner = &*self.inner;
        inner.policy.check_size(token)?;
        let now = unix_now();
        {
            // Fast path: a cheap, non-`Send` read of the keys, dropped before any await.
            let keys = inner.keys.peek();
            let Some(keys) = keys.as_deref() else {
                return Err(Error::KeysUnavailable {
                    authority: inner.keys.authority().to_owned(),
                });
            };
            if let Some(caller) = inner.cache.get(token, now, inner.policy.skew, keys) {
                metrics::counter!("entra_auth_token_cache_hits_total").increment(1);
                return Ok(caller);
            }
            metrics::counter!("entra_auth_token_cache_misses_total").increment(1);
        }
        let Some(mut keys) = inner.keys.current() else {
            return Err(Error::KeysUnavailable {
                authority: inner.keys.authority().to_owned(),
            });
        };

        let parts = token::split(token)?;
        let kid = token::header_kid(parts.header)?;
        if !keys.keys.contains_key(&kid) {
            // Key rollover: refresh within this request, shared with every
            // other request that needs it, at most once per rate-limit period.
            if inner.keys.refresh_for_unknown_kid(keys.generation).await {
                keys = inner.keys.current().unwrap_or(keys);
            }
        }
        let Some(key) = keys.keys.get(&kid) else {
            // Fail closed either way. If the authority could not be reached
            // to look for the key, the token may well be valid (a rollover
            // during an outage): say so, and make it retryable.
            if inner.keys.last_fetch_failed() {
                return Err(Error::SigningKeyUnavailable {
                    kid: echo(&kid),
                    authority: inner.keys.authority().to_owned(),
                });
            }
            return Err(Error::UnknownSigningKey { kid: echo(&kid) });
        };
        let now = unix_now();
        let checked = inner.policy.check(&parts, &kid, key, &keys.issuer, now)?;
        let verified = Verified {
            caller: &checked.caller,
            kid: &kid,
            exp: checked.exp,
            nbf: checked.nbf,
            generation: keys.generation,
        };
        inner.cache.insert(token, verified, now);
        Ok(checked.caller)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("authority", &self.inner.keys.authority())
            .field("audiences", &self.inner.policy.audiences())
            .field("ready", &self.is_ready())
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}
