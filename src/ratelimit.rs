//! Token-bucket rate limits, keyed by a string (a client address or an identity).
//!
//! Each key has a bucket of `burst` tokens that refills at `per_second`; a request takes
//! one token or is refused with the time until one is back. Buckets live in a sharded map
//! bounded by `max_keys`. When a shard is full, buckets that have refilled completely
//! (they carry no state worth keeping) are dropped first, then buckets that still hold a
//! token (least recently used first) until half the shard is free. A throttled bucket
//! (less than one token) is never dropped before it refills: forgetting it would hand its
//! owner a fresh burst, so a client could escape its limit by flooding new keys. When a
//! shard holds nothing but throttled buckets, a new key is refused until one refills:
//! memory stays bounded and every limit holds, at the price of refusing newcomers during
//! such a flood. The sweep costs one pass over the shard per many new keys, not one per
//! request.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// A rate that cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("rate {spec:?}: {problem}")]
pub struct RateError {
    /// The rate as given, e.g. `10/m`.
    pub spec: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// A refill rate and a bucket size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second (greater than zero; fractional for per-minute or per-hour rates).
    pub per_second: f64,
    /// Bucket size: the most requests let through at once (at least 1).
    pub burst: u32,
}

impl Rate {
    /// Parses `N/s`, `N/m` or `N/h` (N may be fractional) with a burst size.
    pub fn parse(spec: &str, burst: u32) -> Result<Rate, RateError> {
        let bad = |problem| RateError {
            spec: spec.to_string(),
            problem,
        };
        let (n, unit) = spec
            .split_once('/')
            .ok_or_else(|| bad("expected N/s, N/m or N/h"))?;
        let n: f64 = n
            .trim()
            .parse()
            .map_err(|_| bad("the count is not a number"))?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            _ => return Err(bad("unknown unit (s, m or h)")),
        };
        if !(n.is_finite() && n > 0.0) {
            return Err(bad("must be greater than zero"));
        }
        if burst == 0 {
            return Err(bad("burst must be at least 1"));
        }
        Ok(Rate {
            per_second: n / secs,
            burst,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: f64,
}

/// A set of token buckets.
pub(crate) struct RateLimiter {
    rate: Rate,
    max_keys_per_shard: usize,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

impl RateLimiter {
    pub(crate) fn new(rate: Rate, max_keys: usize) -> RateLimiter {
        RateLimiter {
            rate,
            max_keys_per_shard: (max_keys / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes a token for `key` now; `Err(wait)` when the bucket is empty.
    pub(crate) fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, EPOCH.elapsed().as_secs_f64())
    }

    /// Takes a token for `key` at `now` (seconds on any monotonic scale).
    pub(crate) fn check_at(&self, key: &str, now: f64) -> Result<(), Duration> {
        let shard = &self.shards[shard_of(key)];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let burst = f64::from(self.rate.burst);
        let rate = self.rate.per_second;
        let tokens_at = |b: &Bucket| (b.tokens + (now - b.updated).max(0.0) * rate).min(burst);
        if !map.contains_key(key) && map.len() >= self.max_keys_per_shard {
            // Refilled buckets carry nothing worth keeping.
            map.retain(|_, b| tokens_at(b) < burst);
            let target = self.max_keys_per_shard / 2;
            if map.len() > target {
                // Then buckets that still hold a token, least recently used first; a
                // throttled bucket is never forgotten before it refills.
                let mut spare: Vec<(f64, String)> = map
                    .iter()
                    .filter(|(_, b)| tokens_at(b) >= 1.0)
                    .map(|(k, b)| (b.updated, k.clone()))
                    .collect();
                spare.sort_by(|a, b| a.0.total_cmp(&b.0));
                let excess = map.len() - target;
                for (_, k) in spare.into_iter().take(excess) {
                    map.remove(&k);
                }
            }
            if map.len() >= self.max_keys_per_shard {
                // Every bucket here is throttled: refuse the newcomer until one refills.
                let soonest = map
                    .values()
                    .map(|b| (1.0 - tokens_at(b)).max(0.0) / rate)
                    .fold(f64::INFINITY, f64::min);
                return Err(Duration::from_secs_f64(soonest.clamp(0.001, 3600.0)));
            }
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        b.tokens = tokens_at(b);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// Gives back a token taken for `key` (the request failed on the server's side).
    pub(crate) fn refund(&self, key: &str) {
        let mut map = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(b) = map.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(f64::from(self.rate.burst));
        }
    }

    /// Keys currently tracked.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

fn shard_of(key: &str) -> usize {
    // FNV-1a: cheap, and an attacker choosing keys can only unbalance their own shard.
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h as usize % SHARDS
}

/// Whole seconds for a `Retry-After` header: at least 1, rounded up.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(Rate::parse("10/s", 5).unwrap().per_second, 10.0);
        assert_eq!(Rate::parse("120/m", 5).unwrap().per_second, 2.0);
        assert_eq!(Rate::parse("0.5/s", 1).unwrap().per_second, 0.5);
        assert_eq!(Rate::parse("3600/h", 1).unwrap().per_second, 1.0);
        for bad in ["10", "x/s", "10/d", "0/s", "-1/s", "inf/s"] {
            assert!(Rate::parse(bad, 1).is_err(), "{bad}");
        }
        assert!(Rate::parse("1/s", 0).is_err());
    }

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(Rate::parse("2/s", 3).unwrap(), 1000);
        for _ in 0..3 {
            assert!(l.check_at("a", 100.0).is_ok());
        }
        let wait = l.check_at("a", 100.0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another key has its own bucket.
        assert!(l.check_at("b", 100.0).is_ok());
        // Half a second later one token is back, and only one.
        assert!(l.check_at("a", 100.5).is_ok());
        assert!(l.check_at("a", 100.5).is_err());
        // Long idle: refilled to the burst, not beyond.
        for _ in 0..3 {
            assert!(l.check_at("a", 1000.0).is_ok());
        }
        assert!(l.check_at("a", 1000.0).is_err());
    }

    #[test]
    fn bounded_memory() {
        let cap = SHARDS * 4;
        // Burst 2: a key seen once still holds a token, so it may be forgotten.
        let l = RateLimiter::new(Rate::parse("1/s", 2).unwrap(), cap);
        for i in 0..1000 {
            assert!(l.check_at(&format!("k{i}"), i as f64 * 0.001).is_ok());
        }
        assert!(l.tracked() <= cap, "{}", l.tracked());
        // A new key is tracked and limited: least recently used spare buckets made room.
        let late = "late";
        assert!(l.check_at(late, 1.0).is_ok());
        assert!(l.check_at(late, 1.0).is_ok());
        assert!(l.check_at(late, 1.0).is_err());
        assert!(l.tracked() <= cap);
    }

    #[test]
    fn a_throttled_bucket_is_never_forgotten_before_it_refills() {
        let cap = SHARDS * 4;
        let l = RateLimiter::new(Rate::parse("1/m", 1).unwrap(), cap);
        // The attacker spends its bucket, then floods new keys to push it out.
        assert!(l.check_at("attacker", 0.0).is_ok());
        assert!(l.check_at("attacker", 0.0).is_err());
        for i in 0..10_000 {
            let _ = l.check_at(&format!("flood{i}"), 1.0);
        }
        assert!(l.tracked() <= cap, "memory stays bounded: {}", l.tracked());
        assert!(
            l.check_at("attacker", 2.0).is_err(),
            "still throttled: the flood did not reset its bucket"
        );
        // Once the buckets refill, newcomers are tracked again.
        assert!(l.check_at("newcomer", 1000.0).is_ok());
    }

    #[test]
    fn refund_gives_one_token_back() {
        let l = RateLimiter::new(Rate::parse("1/h", 1).unwrap(), 1000);
        assert!(l.check_at("a", 0.0).is_ok());
        assert!(l.check_at("a", 0.0).is_err());
        l.refund("a");
        assert!(l.check_at("a", 0.0).is_ok());
        // Never above the burst.
        l.refund("a");
        l.refund("a");
        assert!(l.check_at("a", 0.0).is_ok());
        assert!(l.check_at("a", 0.0).is_err());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
