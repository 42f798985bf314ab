//! The validator: turns a bearer token into a [`Caller`], or says why not.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use tokio::sync::watch;

use crate::cache::{TokenCache, Verified};
use crate::error::echo;
use crate::keys::{AbortOnDrop, KeyStore, Schedule};
use crate::metadata::KeySet;
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
    audiences: Vec<String>,
    allowed_client_ids: Option<Vec<String>>,
    skew: i64,
    max_token_bytes: usize,
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
                audiences: config.effective_audiences(),
                allowed_client_ids: config.allowed_client_ids,
                skew: i64::try_from(config.clock_skew.as_secs()).unwrap_or(i64::MAX / 4),
                max_token_bytes: config.max_token_bytes,
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
        self.inner
            .allowed_client_ids
            .as_ref()
            .is_some_and(|ids| ids.iter().any(|id| id == azp))
    }

    /// A tower layer that authenticates every call with this validator and
    /// authorizes it with `permissions`.
    pub fn layer(&self, permissions: Permissions) -> AuthLayer {
        AuthLayer::new(self.clone(), permissions)
    }

    /// Validates a bearer token (without the `Bearer ` prefix).
    pub async fn validate(&self, token: &str) -> Result<Caller, Error> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(Error::TokenTooLarge {
                size: token.len(),
                max: inner.max_token_bytes,
            });
        }
        let now = unix_now();
        {
            // Fast path: a cheap, non-`Send` read of the keys, dropped before any await.
            let keys = inner.keys.peek();
            let Some(keys) = keys.as_deref() else {
                return Err(Error::KeysUnavailable {
                    authority: inner.keys.authority().to_owned(),
                });
            };
            if let Some(caller) = inner.cache.get(token, now, inner.skew, keys) {
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
            return Err(Error::UnknownSigningKey { kid: echo(&kid) });
        };
        let verified = jsonwebtoken::crypto::verify(
            parts.signature,
            parts.signed.as_bytes(),
            &key.key,
            Algorithm::RS256,
        );
        if !matches!(verified, Ok(true)) {
            return Err(Error::InvalidSignature { kid: echo(&kid) });
        }

        let claims = token::claims(parts.payload)?;
        let now = unix_now();
        let exp = claims.exp()?;
        if exp <= now - inner.skew {
            return Err(Error::Expired {
                exp,
                ago: now - exp,
                skew: inner.skew as u64,
            });
        }
        let nbf = claims.nbf()?;
        if let Some(nbf) = nbf.filter(|nbf| *nbf > now + inner.skew) {
            return Err(Error::NotYetValid {
                nbf,
                wait: nbf - now,
                skew: inner.skew as u64,
            });
        }
        check_issuer(
            claims.iss()?,
            claims.tid()?,
            &keys.issuer,
            key.issuer.as_deref(),
        )?;
        self.check_audience(&claims.aud()?)?;

        let roles = claims.roles()?;
        let scopes = claims.scopes()?;
        let azp = claims.azp()?;
        if roles.is_empty() && scopes.is_empty() && !self.is_allow_listed(azp) {
            return Err(Error::MissingRoles);
        }
        let app_only = match claims.idtyp()? {
            Some(idtyp) => idtyp == "app",
            None => !roles.is_empty() && scopes.is_empty(),
        };
        let caller = Caller {
            oid: claims.oid()?.to_owned(),
            tid: claims.tid()?.to_owned(),
            azp: azp.to_owned(),
            roles,
            scopes,
            app_only,
        };
        let verified = Verified {
            caller: &caller,
            kid: &kid,
            exp,
            nbf,
            generation: keys.generation,
        };
        inner.cache.insert(token, verified, now);
        Ok(caller)
    }

    fn check_audience(&self, aud: &[&str]) -> Result<(), Error> {
        let accepted = &self.inner.audiences;
        if aud.iter().any(|a| accepted.iter().any(|x| x == a)) {
            return Ok(());
        }
        let found: Vec<String> = aud.iter().take(4).map(|a| echo(a)).collect();
        Err(Error::InvalidAudience {
            found: found.join(", "),
            accepted: accepted.join(", "),
        })
    }
}

/// `iss` must be the metadata issuer (with `{tenantid}` replaced by `tid`),
/// must name `tid` (as a path segment or the host's first label), and must
/// match the key's own issuer when the JWKS gives one.
fn check_issuer(iss: &str, tid: &str, metadata: &str, key: Option<&str>) -> Result<(), Error> {
    let invalid = |expected: String| Error::InvalidIssuer {
        found: echo(iss),
        expected,
    };
    let expected = metadata.replace("{tenantid}", tid);
    if iss != expected {
        return Err(invalid(echo(&expected)));
    }
    let rest = iss.split_once("://").map_or(iss, |(_, rest)| rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let names_tid = host.split('.').next() == Some(tid) || path.split('/').any(|s| s == tid);
    if !names_tid {
        return Err(invalid(format!("an issuer of tenant {} (tid)", echo(tid))));
    }
    if let Some(key_issuer) = key {
        let key_issuer = key_issuer.replace("{tenantid}", tid);
        if iss != key_issuer {
            return Err(invalid(format!(
                "{} (the signing key's issuer)",
                echo(&key_issuer)
            )));
        }
    }
    Ok(())
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
            .field("audiences", &self.inner.audiences)
            .field("ready", &self.is_ready())
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::check_issuer;

    #[test]
    fn issuer_rules() {
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let workforce = format!("https://login.microsoftonline.com/{tid}/v2.0");
        assert!(check_issuer(&workforce, tid, &workforce, None).is_ok());
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(check_issuer(&workforce, tid, template, Some(template)).is_ok());
        // Template filled with another tenant's tid does not match.
        assert!(check_issuer(&workforce, "other", template, None).is_err());
        // A fixed issuer that does not name the tid.
        let fixed = "https://login.microsoftonline.com/common/v2.0";
        assert!(check_issuer(fixed, tid, fixed, None).is_err());
        // CIAM: the tenant GUID is the host's first label.
        let ciam = format!("https://{tid}.ciamlogin.com/{tid}/v2.0");
        assert!(check_issuer(&ciam, tid, &ciam, None).is_ok());
        // Key issuer disagrees.
        assert!(check_issuer(&workforce, tid, &workforce, Some("https://evil/")).is_err());
    }
}
