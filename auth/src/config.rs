//! Validator configuration: plain fields with secure defaults.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Authority, Error};

/// Everything a [`Validator`](crate::Validator) needs.
///
/// [`Config::new`] gives the secure defaults documented on each field; change
/// fields directly. Nothing here is secret.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The authority whose tokens are accepted. Required.
    pub authority: Authority,
    /// Application (client) id of this API. Required.
    pub client_id: String,
    /// Accepted `aud` values. Default: empty, meaning `{client_id}` (v2 tokens)
    /// and `api://{client_id}` (v1 style). A non-empty list replaces both.
    pub audiences: Vec<String>,
    /// Extra PEM trust roots (a CA file) for reaching the authority, added to
    /// the system roots. Default: none. Dev/test authorities use this.
    pub ca_file: Option<PathBuf>,
    /// Extra PEM trust roots given in memory, as [`Config::ca_file`]. Default: none.
    pub ca_pem: Option<Vec<u8>>,
    /// Clock skew tolerated on `exp` and `nbf`. Default: 300 s.
    pub clock_skew: Duration,
    /// Longest accepted token, in bytes. Default: 250 KB (256 000).
    pub max_token_bytes: usize,
    /// Allow-list of client ids (`azp`/`appid`): "ACL mode". Default: `None`.
    ///
    /// When set, a listed client may call every RPC in the permission table
    /// even with a token carrying neither `scp` nor `roles`; unlisted clients
    /// are still checked against the table as usual.
    pub allowed_client_ids: Option<Vec<String>>,
    /// Background refresh of metadata and keys. Default: 12 h.
    pub refresh_interval: Duration,
    /// Random extra delay added to each background refresh, up to this much.
    /// Default: 6 h (so refreshes happen every 12–18 h).
    pub refresh_jitter: Duration,
    /// Minimum time between two refreshes forced by an unknown `kid`.
    /// Default: 5 min. Lowering it lets random `kid`s drive traffic to the authority.
    pub min_forced_refresh_interval: Duration,
    /// First retry delay after a failed fetch; doubles on each failure.
    /// Default: 1 s.
    pub retry_backoff_min: Duration,
    /// Longest retry delay after failed fetches. Default: 60 s.
    pub retry_backoff_max: Duration,
    /// Timeout of one HTTP request to the authority. Default: 10 s.
    pub http_timeout: Duration,
    /// Verified-token cache: at most this many entries. 0 disables the cache.
    /// Default: 10 000.
    pub cache_max_entries: usize,
    /// Verified-token cache: at most about this many bytes. Default: 32 MiB.
    pub cache_max_bytes: usize,
    /// Verified-token cache: an entry lives at most this long (and never past
    /// the token's `exp`). Default: 5 min.
    pub cache_ttl: Duration,
}

impl Config {
    /// A configuration with the secure defaults.
    pub fn new(authority: Authority, client_id: impl Into<String>) -> Self {
        Config {
            authority,
            client_id: client_id.into(),
            audiences: Vec::new(),
            ca_file: None,
            ca_pem: None,
            clock_skew: Duration::from_secs(300),
            max_token_bytes: 256_000,
            allowed_client_ids: None,
            refresh_interval: Duration::from_secs(12 * 3600),
            refresh_jitter: Duration::from_secs(6 * 3600),
            min_forced_refresh_interval: Duration::from_secs(300),
            retry_backoff_min: Duration::from_secs(1),
            retry_backoff_max: Duration::from_secs(60),
            http_timeout: Duration::from_secs(10),
            cache_max_entries: 10_000,
            cache_max_bytes: 32 << 20,
            cache_ttl: Duration::from_secs(300),
        }
    }

    /// The audiences actually accepted (see [`Config::audiences`]).
    pub fn effective_audiences(&self) -> Vec<String> {
        if self.audiences.is_empty() {
            vec![self.client_id.clone(), format!("api://{}", self.client_id)]
        } else {
            self.audiences.clone()
        }
    }

    /// Checks values that would make validation meaningless.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if self.client_id.trim().is_empty() {
            return bad("client_id is empty");
        }
        if self.audiences.iter().any(|a| a.trim().is_empty()) {
            return bad("an audience is empty");
        }
        if self.max_token_bytes == 0 {
            return bad("max_token_bytes is 0");
        }
        if self.refresh_interval.is_zero() || self.retry_backoff_min.is_zero() {
            return bad("refresh_interval and retry_backoff_min must be above zero");
        }
        if self.retry_backoff_max < self.retry_backoff_min {
            return bad("retry_backoff_max is below retry_backoff_min");
        }
        if self.http_timeout.is_zero() {
            return bad("http_timeout is zero");
        }
        Ok(())
    }
}
