//! Reputation-weighted combination: the weighted mean of the requested
//! values, `Σ wᵢ vᵢ / Σ w`, rounded for integer parameters.
//!
//! - Skipped bids (non-finite value or weight) do not count at all.
//! - If every counted weight is 0, the counted bids weigh equally.
//! - The mean is clamped to `[min vᵢ, max vᵢ]` of the counted bids;
//!   weights are scaled by `max w` if their sum overflows (or they are
//!   subnormal), values by `max |vᵢ|` if `Σ wᵢ vᵢ` overflows, so the result
//!   is always finite.
//! - Influence: `wᵢ / Σ w` (or `1 / k` under equal weights), summing to 1.

use super::{clear, round_if, Bid};

/// The weighted mean, with per-bid influence; `None` if no bid counts.
pub fn weighted(bids: &[Bid], integer: bool, influence: &mut [f64]) -> Option<f64> {
    let Some(s) = Sums::of(bids) else {
        clear(influence, bids.len());
        return None;
    };
    let inv = 1.0 / s.total;
    for (x, b) in influence.iter_mut().zip(bids) {
        *x = match b.effective_weight() {
            Some(w) => s.weight(w) * inv,
            None => 0.0,
        };
    }
    Some(round_if(s.mean(bids), integer))
}

/// The weighted mean without influence or rounding (for rules that
/// compare the round's direction); `None` if no bid counts.
pub fn mean(bids: &[Bid]) -> Option<f64> {
    Sums::of(bids).map(|s| s.mean(bids))
}

/// How counted bids weigh.
#[derive(Clone, Copy)]
enum Scale {
    /// `w` as given (Σ w is finite and positive): the fast path.
    Plain,
    /// Every counted weight is 0: each weighs 1.
    Equal,
    /// Σ w overflows (or the weights are subnormal): `w / top`.
    By(f64),
}

struct Sums {
    scale: Scale,
    /// Σ of the scaled weights of counted bids.
    total: f64,
    /// Σ scaled wᵢ vᵢ; may overflow (then the mean is recomputed).
    wv: f64,
    min: f64,
    max: f64,
}

impl Sums {
    /// One pass on the fast path; a second only if Σ w overflows or the
    /// weights are subnormal.
    fn of(bids: &[Bid]) -> Option<Sums> {
        let (mut w_sum, mut wv, mut v_sum, mut top, mut k) = (0.0, 0.0, 0.0, 0.0_f64, 0usize);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for b in bids {
            if let Some(w) = b.effective_weight() {
                w_sum += w;
                wv += w * b.value;
                v_sum += b.value;
                top = top.max(w);
                k += 1;
                min = min.min(b.value);
                max = max.max(b.value);
            }
        }
        if k == 0 {
            return None;
        }
        let (scale, total, wv) = if w_sum == 0.0 {
            (Scale::Equal, k as f64, v_sum)
        } else if w_sum.is_finite() && top >= f64::MIN_POSITIVE {
            (Scale::Plain, w_sum, wv)
        } else {
            let (mut total, mut wv) = (0.0, 0.0);
            for b in bids {
                if let Some(w) = b.effective_weight() {
                    total += w / top;
                    wv += w / top * b.value;
                }
            }
            (Scale::By(top), total, wv)
        };
        Some(Sums {
            scale,
            total,
            wv,
            min,
            max,
        })
    }

    /// The scaled weight a counted bid contributes.
    fn weight(&self, w: f64) -> f64 {
        match self.scale {
            Scale::Plain => w,
            Scale::Equal => 1.0,
            Scale::By(top) => w / top,
        }
    }

    fn mean(&self, bids: &[Bid]) -> f64 {
        let mut m = self.wv / self.total;
        if !m.is_finite() {
            m = self.scaled_mean(bids);
        }
        m.clamp(self.min, self.max)
    }

    /// Overflow-safe mean: values scaled by max |v|.
    fn scaled_mean(&self, bids: &[Bid]) -> f64 {
        let top = self.min.abs().max(self.max.abs());
        if top == 0.0 || !top.is_finite() {
            return 0.0;
        }
        let mut m = 0.0;
        for b in bids {
            if let Some(w) = b.effective_weight() {
                m += self.weight(w) / self.total * (b.value / top);
            }
        }
        m * top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(value: f64, weight: f64) -> Bid {
        Bid {
            value,
            weight,
            is_default: false,
            module: 0,
        }
    }

    #[test]
    fn weighted_mean_and_influence() {
        let bids = [bid(10.0, 0.25), bid(20.0, 0.75)];
        let mut inf = [0.0; 2];
        assert_eq!(weighted(&bids, false, &mut inf), Some(17.5));
        assert_eq!(inf, [0.25, 0.75]);
        assert_eq!(weighted(&bids, true, &mut inf), Some(18.0));
        let bids = [bid(1.0, 0.5), bid(2.0, 0.5), bid(4.0, 0.0)];
        assert_eq!(weighted(&bids, true, &mut [0.0; 3]), Some(2.0));
        assert_eq!(mean(&bids), Some(1.5));
    }

    #[test]
    fn all_zero_weights_are_equal() {
        let bids = [bid(1.0, 0.0), bid(2.0, 0.0), bid(6.0, -1.0)];
        let mut inf = [0.0; 3];
        assert_eq!(weighted(&bids, false, &mut inf), Some(3.0));
        assert_eq!(inf, [1.0 / 3.0; 3]);
    }

    #[test]
    fn non_finite_bids_are_skipped() {
        let bids = [
            bid(f64::NAN, 1.0),
            bid(3.0, 0.5),
            bid(f64::INFINITY, 1.0),
            bid(5.0, f64::NAN),
            bid(7.0, 0.5),
        ];
        let mut inf = [0.0; 5];
        assert_eq!(weighted(&bids, false, &mut inf), Some(5.0));
        assert_eq!(inf, [0.0, 0.5, 0.0, 0.0, 0.5]);
        let none = [bid(f64::NAN, 1.0)];
        let mut inf = [7.0];
        assert_eq!(weighted(&none, false, &mut inf), None);
        assert_eq!(inf, [0.0]);
        assert_eq!(weighted(&[], false, &mut []), None);
    }

    #[test]
    fn extremes_stay_finite() {
        let bids = [bid(f64::MAX, 1.0), bid(f64::MAX, 1.0)];
        assert_eq!(mean(&bids), Some(f64::MAX));
        let bids = [bid(f64::MAX, f64::MAX), bid(-f64::MAX, f64::MAX)];
        let mut inf = [0.0; 2];
        let m = weighted(&bids, false, &mut inf).unwrap();
        assert!(m.is_finite());
        assert_eq!(inf, [0.5, 0.5]);
        let bids = [bid(1.0, 1e-320), bid(3.0, 1e-320)];
        assert_eq!(mean(&bids), Some(2.0));
        let bids = [bid(1.0, f64::from_bits(3)), bid(2.0, f64::from_bits(1))];
        assert_eq!(mean(&bids), Some(1.25));
    }
}
