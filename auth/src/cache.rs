//! A bounded cache of verified tokens, so a repeated token skips RSA.
//!
//! Safety rules:
//! - the key is the whole token string, compared in full by the map; only
//!   the bucket is chosen from a keyed hash of the token's last bytes (its
//!   signature), see [`TailHash`];
//! - entries and bytes are bounded; when full, expired entries go first,
//!   then arbitrary ones (hash order);
//! - an entry lives until `min(exp, inserted + ttl)`, and `exp`/`nbf` are
//!   checked again on every hit;
//! - an entry whose `kid` left the key set is dropped (on the next key
//!   change, and on a hit).
//!
//! The map is split into shards to spread lock contention. The shard is
//! picked from the token's last bytes (its signature): only tokens with a
//! verified signature get in, so their choice of shard is not steerable.

use std::collections::HashMap;
use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::Caller;
use crate::metadata::KeySet;

const SHARDS: usize = 16;
/// Rough fixed cost of one entry beyond its strings.
const ENTRY_OVERHEAD: usize = 160;

pub(crate) struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    max_entries: usize,
    max_bytes: usize,
    ttl: Duration,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<str>, Entry, TailHash>,
    bytes: usize,
}

/// Bytes of the token's end that pick its bucket: inside the RS256
/// signature (342 characters), which differs for every token.
const HASHED_TAIL: usize = 64;

/// The map's hasher: the standard keyed SipHash (random keys per map, as
/// `RandomState`), fed only the last [`HASHED_TAIL`] bytes and the length
/// of the key instead of all 1-2 KB of a token. Hashing the whole token was
/// 3.5 % of a cached call's instructions (BENCHMARKS.md).
///
/// Safe because equality still compares whole tokens (a shared tail costs a
/// probe, never a wrong hit) and only tokens whose signature verified are
/// inserted: nobody can mint many tails that collide, and a lookup with an
/// unverified token only reads.
#[derive(Clone, Default)]
struct TailHash(RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher(DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0
            .write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
        self.0.write_usize(bytes.len());
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

struct Entry {
    caller: Caller,
    kid: Box<str>,
    exp: i64,
    nbf: Option<i64>,
    /// Drop after this instant, whatever `exp` says.
    deadline: Instant,
    /// Key-set generation that verified the token.
    generation: u64,
    size: usize,
}

/// What the validator learnt about a verified token.
pub(crate) struct Verified<'a> {
    pub(crate) caller: &'a Caller,
    pub(crate) kid: &'a str,
    pub(crate) exp: i64,
    pub(crate) nbf: Option<i64>,
    pub(crate) generation: u64,
}

impl TokenCache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize, ttl: Duration) -> Self {
        let shards = if max_entries == 0 { 0 } else { SHARDS };
        TokenCache {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            max_entries: max_entries.div_ceil(SHARDS),
            max_bytes: max_bytes / SHARDS,
            ttl,
        }
    }

    /// The cached caller for `token`, if still valid at `now` (Unix seconds)
    /// with `skew` seconds of tolerance and its key still in `keys`.
    pub(crate) fn get(&self, token: &str, now: i64, skew: i64, keys: &KeySet) -> Option<Caller> {
        let mut shard = self.shard(token)?;
        let entry = shard.map.get(token)?;
        let fresh = now - skew < entry.exp
            && entry.nbf.is_none_or(|nbf| nbf <= now + skew)
            && Instant::now() < entry.deadline
            && (entry.generation == keys.generation || keys.keys.contains_key(&*entry.kid));
        if fresh {
            return Some(entry.caller.clone());
        }
        // Expired, retired key, or not yet valid: verify afresh.
        shard.remove(token);
        None
    }

    pub(crate) fn insert(&self, token: &str, verified: Verified<'_>, now: i64) {
        let Some(mut shard) = self.shard(token) else {
            return;
        };
        let c = verified.caller;
        let size = ENTRY_OVERHEAD
            + token.len()
            + verified.kid.len()
            + c.oid.len()
            + c.tid.len()
            + c.azp.len()
            + c.roles
                .iter()
                .chain(&c.scopes)
                .map(|s| s.len() + 24)
                .sum::<usize>();
        if size > self.max_bytes {
            return;
        }
        let lifetime = u64::try_from(verified.exp - now).unwrap_or(0);
        let deadline = Instant::now() + self.ttl.min(Duration::from_secs(lifetime));
        shard.remove(token);
        if shard.map.len() >= self.max_entries || shard.bytes + size > self.max_bytes {
            let instant = Instant::now();
            shard.evict(|e| instant >= e.deadline || e.exp <= now);
        }
        while !shard.map.is_empty()
            && (shard.map.len() >= self.max_entries || shard.bytes + size > self.max_bytes)
        {
            // Full of live entries: drop arbitrary ones (hash order is random).
            let victim = shard.map.keys().next().cloned();
            if let Some(victim) = victim {
                shard.remove(&victim);
            }
        }
        shard.bytes += size;
        shard.map.insert(
            token.into(),
            Entry {
                caller: c.clone(),
                kid: verified.kid.into(),
                exp: verified.exp,
                nbf: verified.nbf,
                deadline,
                generation: verified.generation,
                size,
            },
        );
    }

    /// Drops entries whose key is not in the new key set.
    pub(crate) fn retain_keys(&self, keys: &KeySet) {
        for shard in self.shards.iter() {
            lock(shard).evict(|e| !keys.keys.contains_key(&*e.kid));
        }
    }

    /// Number of cached tokens.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    fn shard(&self, token: &str) -> Option<MutexGuard<'_, Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        let tail = token.as_bytes().iter().rev().take(4);
        let index = tail.fold(0usize, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(*b as usize)
        });
        Some(lock(&self.shards[index % self.shards.len()]))
    }
}

impl Shard {
    fn remove(&mut self, token: &str) {
        if let Some(old) = self.map.remove(token) {
            self.bytes -= old.size;
        }
    }

    fn evict(&mut self, mut drop_if: impl FnMut(&Entry) -> bool) {
        let mut freed = 0;
        self.map.retain(|_, e| {
            let drop = drop_if(e);
            if drop {
                freed += e.size;
            }
            !drop
        });
        self.bytes -= freed;
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A shard holds no invariant a panic could break beyond its byte count.
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for TokenCache {
    /// Never prints tokens: only sizes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("max_entries", &(self.max_entries * self.shards.len()))
            .field("ttl", &self.ttl)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn keys(kids: &[&str], generation: u64) -> KeySet {
        let key = jsonwebtoken::DecodingKey::from_rsa_raw_components(&[1; 256], &[1, 0, 1]);
        KeySet {
            issuer: "https://issuer".into(),
            keys: kids
                .iter()
                .map(|k| {
                    let signing = crate::metadata::SigningKey {
                        key: key.clone(),
                        issuer: None,
                    };
                    (k.to_string(), signing)
                })
                .collect::<HashMap<_, _>>(),
            generation,
        }
    }

    fn caller() -> Caller {
        Caller {
            oid: "o".into(),
            tid: "t".into(),
            azp: "a".into(),
            roles: vec!["R".into()],
            scopes: vec![],
            app_only: true,
        }
    }

    fn put(cache: &TokenCache, token: &str, exp: i64, now: i64) {
        let c = caller();
        let v = Verified {
            caller: &c,
            kid: "k1",
            exp,
            nbf: Some(now - 10),
            generation: 1,
        };
        cache.insert(token, v, now);
    }

    #[test]
    fn hit_rechecks_time_and_key() {
        let cache = TokenCache::new(100, 1 << 20, Duration::from_secs(300));
        let k = keys(&["k1"], 1);
        put(&cache, "a.b.token1", 1000, 500);
        assert!(cache.get("a.b.token1", 600, 0, &k).is_some());
        assert!(cache.get("a.b.token", 600, 0, &k).is_none(), "whole key");
        assert!(cache.get("a.b.token1", 1000, 0, &k).is_none(), "expired");
        assert_eq!(cache.len(), 0, "expired entry dropped on hit");

        put(&cache, "a.b.token2", 1000, 500);
        let rotated = keys(&["k2"], 2);
        assert!(cache.get("a.b.token2", 600, 0, &rotated).is_none());
        put(&cache, "a.b.token3", 1000, 500);
        cache.retain_keys(&rotated);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded_by_entries_and_bytes() {
        let cache = TokenCache::new(32, 1 << 20, Duration::from_secs(300));
        for i in 0..1000 {
            put(&cache, &format!("a.b.{i:08}"), 10_000, 500);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        let cache = TokenCache::new(10_000, 16 * 4096, Duration::from_secs(300));
        let big = "x".repeat(3000);
        for i in 0..1000 {
            put(&cache, &format!("{big}{i:08}"), 10_000, 500);
        }
        assert!(cache.len() <= 16, "{}", cache.len());
        let off = TokenCache::new(0, 1 << 20, Duration::from_secs(300));
        put(&off, "a.b.c", 10_000, 500);
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn tokens_sharing_the_hashed_tail_stay_distinct() {
        let cache = TokenCache::new(100, 1 << 20, Duration::from_secs(300));
        let k = keys(&["k1"], 1);
        let tail = "s".repeat(HASHED_TAIL * 2);
        let (a, b, c) = (
            format!("a.b.{tail}"),
            format!("x.y.{tail}"),
            format!("q.r.{tail}"),
        );
        put(&cache, &a, 1000, 500);
        put(&cache, &b, 1000, 500);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&a, 600, 0, &k).is_some());
        assert!(cache.get(&b, 600, 0, &k).is_some());
        assert!(
            cache.get(&c, 600, 0, &k).is_none(),
            "same tail, other token"
        );
        assert!(cache.get(&tail, 600, 0, &k).is_none(), "the tail alone");
    }

    #[test]
    fn ttl_bounds_lifetime() {
        let cache = TokenCache::new(100, 1 << 20, Duration::ZERO);
        put(&cache, "a.b.c", 10_000, 500);
        assert!(cache.get("a.b.c", 600, 0, &keys(&["k1"], 1)).is_none());
    }
}
