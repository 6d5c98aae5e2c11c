//! A lock-free histogram of durations: logarithmic buckets 5 % wide, from
//! 1 µs to about an hour, counted with atomics. Rounds record into it on the
//! hot path; reports read percentiles from it.

use std::sync::atomic::{AtomicU64, Ordering};

const BUCKETS: usize = 456;
/// Bucket `b` holds durations in [GROWTH^b, GROWTH^(b+1)) µs.
const GROWTH: f64 = 1.05;

pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    /// Sum of every recorded duration (µs), for a mean and Prometheus' `_sum`.
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({} samples)", self.count())
    }
}

fn bucket(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    ((us as f64).ln() / GROWTH.ln()) as usize
}

/// The upper bound of bucket `b`, µs.
fn upper_bound_us(b: usize) -> u64 {
    GROWTH.powi(b as i32 + 1).ceil() as u64
}

impl Histogram {
    pub fn record_us(&self, us: u64) {
        self.counts[bucket(us).min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The sum of every recorded duration, µs (it would wrap only after
    /// 584,000 years of recorded time).
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }

    /// The non-empty buckets as (upper bound µs, samples), in order (the
    /// narrowest buckets below 20 µs share rounded bounds). Read while
    /// rounds record, it is a near-snapshot.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .map(|(b, c)| (upper_bound_us(b), c.load(Ordering::Relaxed)))
            .filter(|&(_, c)| c > 0)
            .collect()
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The duration (µs, the bucket's upper bound) below which a share `q`
    /// of the samples fall; `None` without samples.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(upper_bound_us(b));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = Histogram::default();
        assert_eq!(h.quantile_us(0.5), None);
        for us in 1..=1000 {
            h.record_us(us);
        }
        let p50 = h.quantile_us(0.5).unwrap();
        assert!((500..=530).contains(&p50), "{p50}");
        let p999 = h.quantile_us(0.999).unwrap();
        assert!((999..=1055).contains(&p999), "{p999}");
        assert_eq!(h.sum_us(), 500_500);
        let buckets = h.buckets();
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 1000);
        assert!(buckets.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(buckets.iter().all(|&(bound, _)| bound >= 1));
        h.record_us(u64::MAX);
        assert_eq!(h.count(), 1001);
    }
}
