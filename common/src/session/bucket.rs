//! A token bucket over time passed in by the caller: how the sessions
//! bound what one peer may make the supervisor do per second.

use std::time::{Duration, Instant};

/// Holds at most `burst` tokens and gains `rate` per second. [`spend`]
/// may take it into debt (a batch of readings is decoded before its count
/// is known), and [`ready_at`] says when the debt is paid.
///
/// [`spend`]: Bucket::spend
/// [`ready_at`]: Bucket::ready_at
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket. A `rate` of 0 or less never refills.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(0.0);
        Bucket {
            rate: rate.max(0.0),
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Takes `n` tokens, going into debt if there are fewer.
    pub fn spend(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.tokens -= n;
    }

    /// Takes `n` tokens only if there are that many.
    pub fn try_take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled to `burst` at `now` (it is no
    /// different from a new one).
    pub fn is_full(&self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + dt * self.rate >= self.burst
    }

    /// Whether the bucket is out of debt at `now`.
    pub fn is_ready(&self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + dt * self.rate >= 0.0
    }

    /// `None` when not in debt; otherwise when the debt will be paid
    /// (never, for a bucket that does not refill: a day away).
    pub fn ready_at(&self) -> Option<Instant> {
        if self.tokens >= 0.0 {
            return None;
        }
        let wait = if self.rate > 0.0 {
            Duration::try_from_secs_f64(-self.tokens / self.rate).unwrap_or(Duration::MAX)
        } else {
            Duration::MAX
        };
        Some(
            self.at
                .checked_add(wait.min(Duration::from_secs(86_400)))
                .unwrap_or(self.at),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_up_to_the_burst_and_pays_debts() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 20.0, t0);
        assert!(b.try_take(20.0, t0));
        assert!(!b.try_take(1.0, t0));
        assert!(b.try_take(5.0, t0 + Duration::from_millis(500)));
        // Long idle: capped at the burst.
        assert!(!b.try_take(21.0, t0 + Duration::from_secs(100)));
        assert!(b.try_take(20.0, t0 + Duration::from_secs(100)));
        let t1 = t0 + Duration::from_secs(100);
        assert_eq!(b.ready_at(), None);
        b.spend(30.0, t1);
        assert_eq!(b.ready_at(), Some(t1 + Duration::from_secs(3)));
        assert!(!b.is_ready(t1 + Duration::from_millis(2999)));
        assert!(b.is_ready(t1 + Duration::from_secs(3)));
        b.spend(0.0, t1 + Duration::from_secs(3));
        assert_eq!(b.ready_at(), None);
        let mut never = Bucket::new(0.0, 1.0, t0);
        never.spend(2.0, t0);
        assert_eq!(never.ready_at(), Some(t0 + Duration::from_secs(86_400)));
    }
}
