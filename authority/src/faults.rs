//! Fault injection for the authority's endpoints (development only): delays, HTTP 429
//! with `Retry-After`, HTTP 503; each limited to a number of requests or until cleared.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which endpoint a fault applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEndpoint {
    /// `/{tenant}/oauth2/v2.0/token`. The default.
    #[default]
    Token,
    /// `/{tenant}/discovery/v2.0/keys`.
    Keys,
    /// `/{tenant}/v2.0/.well-known/openid-configuration`.
    Discovery,
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Wait this long before answering normally.
    Delay {
        /// Milliseconds.
        delay_ms: u64,
    },
    /// Answer HTTP 429 with `Retry-After`.
    TooManyRequests {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
    },
    /// Answer HTTP 503, with `Retry-After` when set.
    Unavailable {
        /// Seconds in `Retry-After`, if any.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
}

/// One injected fault. JSON form (admin endpoint):
/// `{"kind":"too_many_requests","retry_after_secs":5,"times":2,"endpoint":"token"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What it does.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many requests it affects; `None` = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// Where it applies. Default the token endpoint.
    #[serde(default)]
    pub endpoint: FaultEndpoint,
}

impl Fault {
    /// A delay on the token endpoint, until cleared.
    pub fn delay(delay: Duration) -> Self {
        Fault::new(FaultKind::Delay {
            delay_ms: delay.as_millis().try_into().unwrap_or(u64::MAX),
        })
    }

    /// HTTP 429 with `Retry-After` on the token endpoint, until cleared.
    pub fn too_many_requests(retry_after: Duration) -> Self {
        Fault::new(FaultKind::TooManyRequests {
            retry_after_secs: retry_after.as_secs(),
        })
    }

    /// HTTP 503 on the token endpoint, until cleared.
    pub fn unavailable() -> Self {
        Fault::new(FaultKind::Unavailable {
            retry_after_secs: None,
        })
    }

    fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            times: None,
            endpoint: FaultEndpoint::Token,
        }
    }

    /// Limits the fault to the next `n` requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Applies the fault to another endpoint.
    pub fn on(mut self, endpoint: FaultEndpoint) -> Self {
        self.endpoint = endpoint;
        self
    }
}

/// What the faults decided for one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub(crate) delay: Duration,
    pub(crate) error: Option<FaultKind>,
}

/// The active faults; a cheap, shareable handle.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    active: Arc<Mutex<Vec<Fault>>>,
}

impl Faults {
    /// Adds a fault. Several may be active: delays add up; the first error fault answers.
    pub fn inject(&self, fault: Fault) {
        self.lock().push(fault);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The active faults (with their remaining counts).
    pub fn active(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Consumes the faults that apply to one request to `endpoint`.
    pub(crate) fn take(&self, endpoint: FaultEndpoint) -> Decision {
        let mut decision = Decision::default();
        let mut active = self.lock();
        for fault in active.iter_mut().filter(|f| f.endpoint == endpoint) {
            let applies = match &fault.kind {
                FaultKind::Delay { delay_ms } => {
                    decision.delay += Duration::from_millis(*delay_ms);
                    true
                }
                kind if decision.error.is_none() => {
                    decision.error = Some(kind.clone());
                    true
                }
                _ => false,
            };
            if applies && let Some(n) = fault.times.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        active.retain(|f| f.times != Some(0));
        decision
    }
}
