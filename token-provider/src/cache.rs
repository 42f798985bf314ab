//! [`TokenCache`]: in-memory tokens keyed by (authority, client id, scope). Each key has a
//! [`Slot`]: the current token (read lock-free), the one in-flight acquisition that every
//! caller shares, and the gates that keep the endpoint from being hammered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures::future::{BoxFuture, Shared};

use crate::token::Issued;
use crate::{AccessToken, Error};

/// The shared result of one acquisition.
pub(crate) type Inflight = Shared<BoxFuture<'static, Result<AccessToken, Error>>>;

/// Tokens in memory, keyed by (authority, client id, scope). Cheap to clone; clones share.
///
/// Each [`crate::TokenProvider`] gets its own cache unless built with
/// [`crate::TokenProvider::with_cache`]; providers sharing a cache and a key share tokens
/// and in-flight requests.
#[derive(Clone, Default)]
pub struct TokenCache {
    slots: Arc<Mutex<HashMap<CacheKey, Arc<Slot>>>>,
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        TokenCache::default()
    }

    /// The slot for `key`, created on first use.
    pub(crate) fn slot(&self, key: CacheKey) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        slots
            .entry(key)
            .or_insert_with(|| Arc::new(Slot::default()))
            .clone()
    }

    /// Drops every cached token (in-flight requests complete normally).
    pub fn clear(&self) {
        for slot in lock(&self.slots).values() {
            slot.invalidate();
        }
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("keys", &lock(&self.slots).len())
            .finish()
    }
}

/// (authority, client id, scope), compared case-insensitively where Entra does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    authority: String,
    client_id: String,
    scope: String,
}

impl CacheKey {
    pub(crate) fn new(authority: &str, client_id: &str, scope: &str) -> Self {
        CacheKey {
            authority: authority.to_ascii_lowercase(),
            client_id: client_id.trim().to_ascii_lowercase(),
            scope: scope.to_ascii_lowercase(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a cached token stands.
pub(crate) enum Lookup {
    /// Use it.
    Fresh(AccessToken),
    /// Use it, and refresh in the background.
    RefreshDue(AccessToken),
    /// Nothing usable: acquire one.
    Missing,
}

/// What [`Slot::join_or_start`] found.
pub(crate) enum Joined {
    /// A usable token appeared meanwhile.
    Ready(AccessToken),
    /// Wait for this acquisition.
    Waiting(Inflight),
}

/// One cache key's state.
#[derive(Default)]
pub(crate) struct Slot {
    current: ArcSwapOption<Issued>,
    /// Quick check before taking the `inflight` lock on the hot path.
    busy: AtomicBool,
    inflight: Mutex<Option<(u64, Inflight)>>,
    generation: AtomicU64,
    gate: Mutex<Gate>,
}

/// When the endpoint may be called again.
#[derive(Default)]
struct Gate {
    /// From `Retry-After`: nobody calls before this (with the status and endpoint that
    /// asked for it).
    retry_after_until: Option<(Instant, u16, &'static str)>,
    /// After a failure: no *background* refresh before this.
    background_not_before: Option<Instant>,
    /// Consecutive failed acquisitions.
    failures: u32,
}

impl Slot {
    /// The cached token's state at `now`. Lock-free.
    pub(crate) fn lookup(&self, now: Instant) -> Lookup {
        let guard = self.current.load();
        match guard.as_ref() {
            Some(issued) => {
                let token = AccessToken::from_arc(issued.clone());
                if now < token.refresh_at() {
                    Lookup::Fresh(token)
                } else if now < token.usable_until() {
                    Lookup::RefreshDue(token)
                } else {
                    Lookup::Missing
                }
            }
            None => Lookup::Missing,
        }
    }

    pub(crate) fn store(&self, token: &AccessToken) {
        self.current.store(Some(token.as_arc().clone()));
    }

    /// Drops the cached token.
    pub(crate) fn invalidate(&self) {
        self.current.store(None);
    }

    /// Drops the cached token only if it is `token` (a newer one is kept).
    pub(crate) fn invalidate_if(&self, token: &AccessToken) -> bool {
        let current = self.current.load();
        let matches = current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, token.as_arc()));
        if !matches {
            return false;
        }
        let previous = self.current.compare_and_swap(&*current, None);
        previous
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, token.as_arc()))
    }

    /// Whether an acquisition is running (hot-path hint, may be stale).
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// The running acquisition; else (unless `force`) a token stored since the caller
    /// looked; else one started by `start` (called under the lock, so at most one runs).
    /// `start` gets the generation to pass to [`Slot::finish`].
    pub(crate) fn join_or_start(&self, force: bool, start: impl FnOnce(u64) -> Inflight) -> Joined {
        let mut inflight = lock(&self.inflight);
        if let Some((_, running)) = inflight.as_ref() {
            return Joined::Waiting(running.clone());
        }
        if !force && let Lookup::Fresh(t) | Lookup::RefreshDue(t) = self.lookup(Instant::now()) {
            return Joined::Ready(t);
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let started = start(generation);
        *inflight = Some((generation, started.clone()));
        self.busy.store(true, Ordering::Release);
        Joined::Waiting(started)
    }

    /// Like [`Slot::join_or_start`], but only starts (returns `false` if one is running).
    pub(crate) fn start_if_idle(&self, start: impl FnOnce(u64) -> Inflight) -> bool {
        let mut inflight = lock(&self.inflight);
        if inflight.is_some() {
            return false;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *inflight = Some((generation, start(generation)));
        self.busy.store(true, Ordering::Release);
        true
    }

    /// Ends acquisition `generation`: stores a new token first, then clears the in-flight
    /// marker, so a caller never finds neither.
    pub(crate) fn finish(
        &self,
        generation: u64,
        result: &Result<AccessToken, Error>,
        backoff: Duration,
    ) {
        {
            let mut gate = lock(&self.gate);
            match result {
                Ok(token) => {
                    self.store(token);
                    gate.failures = 0;
                    gate.background_not_before = None;
                }
                Err(_) => {
                    gate.failures = gate.failures.saturating_add(1);
                    gate.background_not_before = Some(Instant::now() + backoff);
                }
            }
        }
        let mut inflight = lock(&self.inflight);
        if inflight.as_ref().is_some_and(|(g, _)| *g == generation) {
            *inflight = None;
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Consecutive failed acquisitions so far.
    pub(crate) fn failures(&self) -> u32 {
        lock(&self.gate).failures
    }

    /// Whether a background refresh may start at `now`.
    pub(crate) fn background_allowed(&self, now: Instant) -> bool {
        let gate = lock(&self.gate);
        gate.retry_after_until.is_none_or(|(t, ..)| now >= t)
            && gate.background_not_before.is_none_or(|t| now >= t)
    }

    /// Records a `Retry-After`: nobody calls the endpoint before `until`.
    pub(crate) fn block_until(&self, until: Instant, status: u16, endpoint: &'static str) {
        let mut gate = lock(&self.gate);
        if gate.retry_after_until.is_none_or(|(t, ..)| t < until) {
            gate.retry_after_until = Some((until, status, endpoint));
        }
    }

    /// How long callers must still wait because of a `Retry-After`, with the status and
    /// endpoint that asked for it.
    pub(crate) fn blocked_for(&self, now: Instant) -> Option<(Duration, u16, &'static str)> {
        let gate = lock(&self.gate);
        gate.retry_after_until
            .filter(|(t, ..)| *t > now)
            .map(|(t, status, endpoint)| (t - now, status, endpoint))
    }
}
