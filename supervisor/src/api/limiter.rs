//! Per-token request limits, so that one client cannot take the API from
//! the others: at most `per_token_in_flight` requests of one token at
//! once, and `per_token_rate` a second (bursts of `per_token_burst`).
//! Past either the request is answered 429 with `Retry-After`. Keyed by
//! the token's digest (never the secret); only tokens that authenticated
//! get an entry, and entries idle for a minute are dropped once there
//! are more than [`KEPT`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vcp_common::session::bucket::Bucket;

use crate::config::limits::HttpLimits;

/// Entries kept before idle ones are dropped.
const KEPT: usize = 4096;
/// How long an entry must be idle to be dropped.
const IDLE: Duration = Duration::from_secs(60);

struct PerToken {
    in_flight: Arc<Semaphore>,
    bucket: Bucket,
    used: Instant,
}

/// What a refused request is told: when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after_s: u64,
    pub reason: &'static str,
}

pub struct TokenLimiter {
    in_flight: usize,
    rate: f64,
    burst: f64,
    tokens: Mutex<HashMap<String, PerToken>>,
}

impl TokenLimiter {
    pub fn new(limits: &HttpLimits) -> Self {
        TokenLimiter {
            in_flight: limits.per_token_in_flight,
            rate: limits.per_token_rate,
            burst: limits.per_token_burst,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of the token with digest `key`: the permit is
    /// held while the request is handled.
    pub fn admit(&self, key: &str, now: Instant) -> Result<OwnedSemaphorePermit, Refused> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= KEPT && !tokens.contains_key(key) {
            tokens.retain(|_, t| now.saturating_duration_since(t.used) < IDLE);
        }
        let t = tokens.entry(key.to_owned()).or_insert_with(|| PerToken {
            in_flight: Arc::new(Semaphore::new(self.in_flight)),
            bucket: Bucket::new(self.rate, self.burst, now),
            used: now,
        });
        t.used = now;
        let permit = t
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused {
                retry_after_s: 1,
                reason: "too many requests of this token in flight",
            })?;
        if !t.bucket.try_take(1.0, now) {
            let wait = 1.0 / self.rate.max(f64::MIN_POSITIVE);
            return Err(Refused {
                retry_after_s: (wait.ceil() as u64).clamp(1, 3600),
                reason: "too many requests of this token",
            });
        }
        Ok(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(in_flight: usize, rate: f64, burst: f64) -> TokenLimiter {
        TokenLimiter::new(&HttpLimits {
            per_token_in_flight: in_flight,
            per_token_rate: rate,
            per_token_burst: burst,
            ..HttpLimits::default()
        })
    }

    #[test]
    fn a_token_is_bounded_in_flight_and_in_rate_and_others_are_not() {
        let l = limiter(2, 10.0, 3.0);
        let t0 = Instant::now();
        let a = l.admit("a", t0).unwrap();
        let _b = l.admit("a", t0).unwrap();
        let refused = l.admit("a", t0).unwrap_err();
        assert_eq!(refused.reason, "too many requests of this token in flight");
        // Another token is not affected.
        assert!(l.admit("other", t0).is_ok());
        drop(a);
        // The burst of 3 is spent (two admitted, one more now).
        let _c = l.admit("a", t0).unwrap();
        drop(_c);
        let refused = l.admit("a", t0).unwrap_err();
        assert_eq!(refused.reason, "too many requests of this token");
        assert_eq!(refused.retry_after_s, 1);
        // A tenth of a second later the bucket has one more.
        assert!(l.admit("a", t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn idle_tokens_are_forgotten_past_the_bound() {
        let l = limiter(1, 1.0, 1.0);
        let t0 = Instant::now();
        for i in 0..KEPT {
            drop(l.admit(&format!("t{i}"), t0).unwrap());
        }
        drop(l.admit("late", t0 + IDLE).unwrap());
        assert_eq!(l.tokens.lock().unwrap().len(), 1);
    }
}
