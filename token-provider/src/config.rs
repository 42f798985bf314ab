//! [`Config`] and [`RetryPolicy`]: what a [`crate::TokenProvider`] needs, with secure,
//! production defaults. Every field documents its default.

use std::path::PathBuf;
use std::time::Duration;

use entra_auth::Authority;
use rand::Rng;

use crate::Credential;

/// How to get tokens: who asks ([`Config::client_id`] + [`Config::credential`]), from whom
/// ([`Config::authority`]) and for what ([`Config::scope`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The Entra authority, e.g. `https://login.microsoftonline.com/{tenant}/v2.0`. Its
    /// `token_endpoint` is discovered from `{authority}/.well-known/openid-configuration`.
    /// Only `https` authorities exist ([`Authority`] refuses others).
    pub authority: Authority,
    /// The client application's id (`ClientId`).
    pub client_id: String,
    /// How the client proves its identity.
    pub credential: Credential,
    /// One scope of the form `{resource}/.default`, e.g. `api://{API client id}/.default`.
    /// Anything else is refused before any request.
    pub scope: String,
    /// A PEM file of extra trusted CA certificates, added to the system roots (e.g. a
    /// development authority's CA). Default `None`. The roots are *added*: nothing
    /// weakens certificate checking.
    pub ca_file: Option<PathBuf>,
    /// Extra trusted CA certificates as PEM text, added like [`Config::ca_file`].
    /// Default `None`.
    pub ca_pem: Option<Vec<u8>>,
    /// A cached token with less than this left is not handed out (Entra's clients use
    /// 5 minutes, so a call never starts with a token about to expire). Default 5 min.
    pub expiry_margin: Duration,
    /// Timeout of one HTTP attempt (discovery or token request), connect included.
    /// Default 10 s.
    pub request_timeout: Duration,
    /// Timeout to establish a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Retries of transient failures. Default [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// How long the discovered token endpoint is reused before discovery runs again (the
    /// old one is kept if that fails). Default 24 h.
    pub metadata_ttl: Duration,
}

impl Config {
    /// A configuration with the defaults documented on each field.
    pub fn new(
        authority: Authority,
        client_id: impl Into<String>,
        credential: Credential,
        scope: impl Into<String>,
    ) -> Self {
        Config {
            authority,
            client_id: client_id.into(),
            credential,
            scope: scope.into(),
            ca_file: None,
            ca_pem: None,
            expiry_margin: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            metadata_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Adds a CA file to trust (see [`Config::ca_file`]).
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Adds CA certificates to trust (see [`Config::ca_pem`]).
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Sets [`Config::expiry_margin`].
    pub fn with_expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// Sets [`Config::request_timeout`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`Config::retry`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Retries of transient failures (timeouts, connection errors, HTTP 408/429/5xx) with
/// exponential backoff and jitter; `Retry-After` (capped at 1 h) is a floor: the endpoint is
/// not called again before it passes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per token acquisition, the first included (1 = never retry). Default 4.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each time. Default 200 ms.
    pub initial_backoff: Duration,
    /// Longest backoff between attempts, and between two failed background refreshes.
    /// Default 10 s.
    pub max_backoff: Duration,
    /// Longest `Retry-After` a caller waits for inside one acquisition; a longer one fails
    /// at once with [`crate::Error::Throttled`] (the endpoint is still not called before it
    /// passes). Default 30 s.
    pub max_retry_after_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_attempts` and the other defaults.
    pub fn attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            ..RetryPolicy::default()
        }
    }

    /// Sets the initial and maximum backoff.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets [`RetryPolicy::max_retry_after_wait`].
    pub fn with_max_retry_after_wait(mut self, wait: Duration) -> Self {
        self.max_retry_after_wait = wait;
        self
    }

    /// The wait after `failures` consecutive failures: exponential, capped, with "equal
    /// jitter" (between half and all of it) so clients do not retry in lockstep.
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = full / 2;
        if half.is_zero() {
            return full;
        }
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(800));
            assert!(p.backoff(30) <= p.max_backoff);
        }
    }
}
