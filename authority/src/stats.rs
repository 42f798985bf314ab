//! Counters of token-endpoint traffic, so client tests can assert "1000 concurrent callers
//! caused exactly 1 token request".

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A snapshot of the token-endpoint counters since start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStats {
    /// Requests received by the token endpoint (all outcomes, faults included).
    pub token_requests: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Requests answered with an Entra error (4xx).
    pub token_errors: u64,
    /// Requests answered by an injected 429/503.
    pub faults_injected: u64,
    /// Token requests per client id (when the request named one).
    pub requests_by_client: BTreeMap<String, u64>,
    /// Tokens issued per client id.
    pub issued_by_client: BTreeMap<String, u64>,
}

/// Outcome of one token request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    Issued,
    Error,
    Fault,
}

#[derive(Default)]
pub(crate) struct Counters {
    stats: Mutex<TokenStats>,
}

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, TokenStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one request and its outcome.
    pub(crate) fn record(&self, client_id: Option<&str>, outcome: Outcome) {
        let mut s = self.lock();
        s.token_requests += 1;
        match outcome {
            Outcome::Issued => s.tokens_issued += 1,
            Outcome::Error => s.token_errors += 1,
            Outcome::Fault => s.faults_injected += 1,
        }
        if let Some(id) = client_id {
            let id = id.to_ascii_lowercase();
            *s.requests_by_client.entry(id.clone()).or_default() += 1;
            if matches!(outcome, Outcome::Issued) {
                *s.issued_by_client.entry(id).or_default() += 1;
            }
        }
    }

    pub(crate) fn snapshot(&self) -> TokenStats {
        self.lock().clone()
    }

    pub(crate) fn reset(&self) {
        *self.lock() = TokenStats::default();
    }
}
