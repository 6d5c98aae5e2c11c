//! Exponentially decayed evidence accumulators (see the formula in
//! [`super`]).

/// Exponentially decayed (sum, weight) of one component's observations.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Decayed {
    sum: f64,
    weight: f64,
    /// Time of the latest observation; `None` = never observed.
    last_ms: Option<i64>,
}

impl Decayed {
    /// Whether at least one observation was ever recorded.
    pub(super) fn observed(&self) -> bool {
        self.last_ms.is_some()
    }

    /// `x` must be in [0, 1].
    pub(super) fn observe(&mut self, x: f64, now_ms: i64, half_life_ms: u64) {
        match self.last_ms {
            Some(last) if now_ms < last => {
                let f = decay(last.saturating_sub(now_ms), half_life_ms);
                self.sum += x * f;
                self.weight += f;
            }
            Some(last) => {
                let f = decay(now_ms.saturating_sub(last), half_life_ms);
                self.sum = self.sum * f + x;
                self.weight = self.weight * f + 1.0;
                self.last_ms = Some(now_ms);
            }
            None => {
                *self = Decayed {
                    sum: x,
                    weight: 1.0,
                    last_ms: Some(now_ms),
                };
            }
        }
    }

    /// `(S, W)` decayed to `now_ms`.
    pub(super) fn at(&self, now_ms: i64, half_life_ms: u64) -> (f64, f64) {
        match self.last_ms {
            Some(last) => {
                let f = decay(now_ms.saturating_sub(last), half_life_ms);
                (self.sum * f, self.weight * f)
            }
            None => (0.0, 0.0),
        }
    }
}

/// `2^(−dt/h)`; 1 for `dt ≤ 0`; for `h = 0`, 0 for any `dt > 0`.
fn decay(dt_ms: i64, half_life_ms: u64) -> f64 {
    if dt_ms <= 0 {
        1.0
    } else if half_life_ms == 0 {
        0.0
    } else {
        (-(dt_ms as f64) / half_life_ms as f64).exp2()
    }
}
