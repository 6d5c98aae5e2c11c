//! Quantisation: the integer a value travels as, and back.

/// 10^k for k in 0..=22 are exact in f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn pow10(k: u8) -> f64 {
    match POW10.get(usize::from(k)) {
        Some(p) => *p,
        // Correctly rounded, the same on every platform.
        None => format!("1e{k}").parse().unwrap_or(f64::INFINITY),
    }
}

/// The wire quantum of a series: 10^exp, applied so that negative exps
/// multiply by an exact power of ten.
#[derive(Debug, Clone, Copy)]
pub(super) struct Quantum {
    scale: f64,
    negative: bool,
}

impl Quantum {
    pub(super) fn new(exp: i8) -> Self {
        Quantum {
            scale: pow10(exp.unsigned_abs()),
            negative: exp < 0,
        }
    }

    /// `round(v / 10^exp)`, or `None` when not finite or outside i64.
    #[inline]
    pub(super) fn quantize(self, v: f64) -> Option<i64> {
        let x = if self.negative {
            v * self.scale
        } else {
            v / self.scale
        };
        let r = x.round();
        // -2^63 is representable; 2^63 is the first value out of range. NaN fails both.
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&r) {
            Some(r as i64)
        } else {
            None
        }
    }

    #[inline]
    pub(super) fn dequantize(self, q: i64) -> f64 {
        let x = q as f64;
        if self.negative {
            x / self.scale
        } else {
            x * self.scale
        }
    }
}

/// The integer a value travels as: `round(value / 10^exp)`; `None` when the
/// value is not finite or the result does not fit in an `i64`.
pub fn quantize(value: f64, exp: i8) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    Quantum::new(exp).quantize(value)
}

/// The value a decoder reconstructs from the integer `q`: `q * 10^exp`.
pub fn dequantize(q: i64, exp: i8) -> f64 {
    Quantum::new(exp).dequantize(q)
}

/// Per-series delta state shared by encoder and decoder: the previous
/// quantised value and the series' quantum.
#[derive(Debug, Clone, Copy)]
pub(super) struct SeriesState {
    pub(super) prev: i64,
    pub(super) quantum: Quantum,
}
