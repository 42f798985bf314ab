//! The signing-key store: current keys, background refresh, forced refresh.
//!
//! - Readers take the current [`KeySet`] from an `ArcSwap`: no lock that a
//!   fetch could hold is ever on the request path.
//! - All fetches go through one "in flight" slot, so concurrent refreshes
//!   share one request to the authority (single-flight). The fetch runs as
//!   its own task: a cancelled caller does not abort it.
//! - Refreshes forced by an unknown `kid` are rate-limited: at most one per
//!   `min_forced_refresh_interval` while the authority answers; while it
//!   fails, they are spaced by the retry backoff instead, so that a key
//!   published during an outage is fetched soon after the authority returns.
//! - A failed refresh keeps the last known good keys.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Config;
use crate::metadata::{Fetcher, KeySet};

type Refresh = Shared<BoxFuture<'static, bool>>;

/// Longest wait the store computes an instant for (longer settings mean "never").
const LONGEST_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Called with each newly installed key set (the token cache drops retired kids).
pub(crate) type OnChange = Box<dyn Fn(&KeySet) + Send + Sync>;

pub(crate) struct KeyStore {
    current: ArcSwapOption<KeySet>,
    ready: watch::Sender<bool>,
    fetcher: Fetcher,
    authority: String,
    min_forced_interval: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    state: Mutex<RefreshState>,
    generations: AtomicU64,
    /// Whether the latest fetch (background or forced) failed.
    last_fetch_failed: AtomicBool,
    on_change: OnChange,
}

struct RefreshState {
    in_flight: Option<Refresh>,
    /// No forced refresh starts before this instant.
    next_forced: Option<Instant>,
    /// How long forced refreshes wait after the next failed fetch.
    failure_backoff: Duration,
}

/// Timing of the background loop.
#[derive(Clone, Copy)]
pub(crate) struct Schedule {
    interval: Duration,
    jitter: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl Schedule {
    pub(crate) fn new(config: &Config) -> Self {
        Schedule {
            interval: config.refresh_interval,
            jitter: config.refresh_jitter,
            backoff_min: config.retry_backoff_min,
            backoff_max: config.retry_backoff_max,
        }
    }
}

// === impl KeyStore ===

impl KeyStore {
    pub(crate) fn new(config: &Config, on_change: OnChange) -> Result<Arc<Self>, crate::Error> {
        Ok(Arc::new(KeyStore {
            current: ArcSwapOption::empty(),
            ready: watch::Sender::new(false),
            fetcher: Fetcher::new(config)?,
            authority: config.authority.to_string(),
            // Bounded so that `Instant::now() + wait` cannot overflow.
            min_forced_interval: config.min_forced_refresh_interval.min(LONGEST_WAIT),
            backoff_min: config.retry_backoff_min.min(LONGEST_WAIT),
            backoff_max: config.retry_backoff_max.min(LONGEST_WAIT),
            state: Mutex::new(RefreshState {
                in_flight: None,
                next_forced: None,
                failure_backoff: config.retry_backoff_min.min(LONGEST_WAIT),
            }),
            generations: AtomicU64::new(0),
            last_fetch_failed: AtomicBool::new(false),
            on_change,
        }))
    }

    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// The current key set, `None` until the first successful fetch.
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// Cheap read of the current key set for checks that do not await.
    pub(crate) fn peek(&self) -> arc_swap::Guard<Option<Arc<KeySet>>> {
        self.current.load()
    }

    pub(crate) fn readiness(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Whether the latest attempt to fetch the keys failed (the authority is
    /// unreachable or answering errors, as far as this store knows).
    pub(crate) fn last_fetch_failed(&self) -> bool {
        self.last_fetch_failed.load(Ordering::Relaxed)
    }

    /// A token named a `kid` that generation `seen` does not have: refresh
    /// (or join a refresh in flight) unless one was forced too recently.
    ///
    /// Returns whether the key set may have changed since `seen`.
    pub(crate) async fn refresh_for_unknown_kid(self: &Arc<Self>, seen: u64) -> bool {
        let refresh = {
            let mut state = self.lock_state();
            if self.peek().as_ref().is_some_and(|k| k.generation != seen) {
                return true;
            }
            match &state.in_flight {
                Some(refresh) => refresh.clone(),
                None => {
                    if state.next_forced.is_some_and(|t| Instant::now() < t) {
                        tracing::debug!(authority = %self.authority, "forced key refresh skipped: rate limit");
                        return false;
                    }
                    state.next_forced = Some(Instant::now() + self.min_forced_interval);
                    metrics::counter!("entra_auth_forced_key_refreshes_total").increment(1);
                    tracing::info!(authority = %self.authority, "unknown signing key: refreshing keys");
                    self.start(&mut state)
                }
            }
        };
        refresh.await
    }

    /// Starts a refresh, or joins the one in flight.
    fn refresh(self: &Arc<Self>) -> Refresh {
        let mut state = self.lock_state();
        match &state.in_flight {
            Some(refresh) => refresh.clone(),
            None => self.start(&mut state),
        }
    }

    fn start(self: &Arc<Self>, state: &mut RefreshState) -> Refresh {
        let store = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _clear = ClearInFlight(&store);
            store.fetch_and_install().await
        });
        let refresh = task.map(|done| done.unwrap_or(false)).boxed().shared();
        state.in_flight = Some(refresh.clone());
        refresh
    }

    async fn fetch_and_install(&self) -> bool {
        match self.fetcher.fetch().await {
            Ok(set) => {
                metrics::counter!("entra_auth_key_refreshes_total", "outcome" => "ok").increment(1);
                #[allow(clippy::cast_precision_loss)]
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                metrics::gauge!("entra_auth_keys_last_refresh_timestamp_seconds").set(now);
                self.last_fetch_failed.store(false, Ordering::Relaxed);
                self.lock_state().failure_backoff = self.backoff_min;
                self.install(set);
                true
            }
            Err(error) => {
                metrics::counter!("entra_auth_key_refreshes_total", "outcome" => "error")
                    .increment(1);
                self.last_fetch_failed.store(true, Ordering::Relaxed);
                {
                    // While the authority fails, the next forced refresh may
                    // start after the backoff, not the whole rate-limit period.
                    let mut state = self.lock_state();
                    let retry_at = Instant::now() + state.failure_backoff;
                    state.next_forced =
                        Some(state.next_forced.map_or(retry_at, |t| t.min(retry_at)));
                    state.failure_backoff = state
                        .failure_backoff
                        .saturating_mul(2)
                        .min(self.backoff_max);
                }
                let known = self.peek().is_some();
                tracing::warn!(
                    authority = %self.authority,
                    %error,
                    keeping_last_known_keys = known,
                    "signing key refresh failed"
                );
                false
            }
        }
    }

    fn install(&self, mut set: KeySet) {
        set.generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let set = Arc::new(set);
        let old = self.current.swap(Some(Arc::clone(&set)));
        let changed = old.as_ref().is_none_or(|old| {
            old.issuer != set.issuer
                || old.keys.len() != set.keys.len()
                || set.keys.keys().any(|k| !old.keys.contains_key(k))
        });
        if changed {
            let mut kids: Vec<&str> = set.keys.keys().map(String::as_str).collect();
            kids.sort_unstable();
            tracing::info!(authority = %self.authority, issuer = %set.issuer, ?kids, "signing keys loaded");
        } else {
            tracing::debug!(authority = %self.authority, "signing keys refreshed, unchanged");
        }
        (self.on_change)(&set);
        self.ready.send_replace(true);
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, RefreshState> {
        // The state holds no invariant a panic could break.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns the loop that loads keys at start (retrying with backoff until
    /// the authority answers) and refreshes them on the schedule. The loop
    /// ends when the store is dropped; the caller aborts it sooner by
    /// dropping the returned guard.
    pub(crate) fn spawn_background(self: &Arc<Self>, schedule: Schedule) -> AbortOnDrop {
        let store = Arc::downgrade(self);
        AbortOnDrop(tokio::spawn(background(store, schedule)))
    }
}

async fn background(store: Weak<KeyStore>, schedule: Schedule) {
    let mut backoff = schedule.backoff_min;
    loop {
        let Some(refresh) = store.upgrade().map(|s| s.refresh()) else {
            return;
        };
        let delay = if refresh.await {
            backoff = schedule.backoff_min;
            schedule
                .interval
                .saturating_add(random_up_to(schedule.jitter))
        } else {
            let delay = backoff.saturating_add(random_up_to(backoff / 4));
            backoff = backoff.saturating_mul(2).min(schedule.backoff_max);
            delay
        };
        tokio::time::sleep(delay).await;
    }
}

fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=max.as_millis() as u64))
}

/// Clears the in-flight slot when a fetch task ends, even by panic.
struct ClearInFlight<'a>(&'a KeyStore);

impl Drop for ClearInFlight<'_> {
    fn drop(&mut self) {
        self.0.lock_state().in_flight = None;
    }
}

/// Aborts the background task when the last validator handle goes away.
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
