//! [`split_amount`]: integer micro-units split in proportion to weights,
//! summing exactly to the total (largest-remainder rounding).

/// Weights are quantised to integers `round_down(w / w_max · 2^62)` so the
/// split itself is exact integer arithmetic (in `u128`).
const SCALE: f64 = (1u64 << 62) as f64;

/// Splits `total_micros` in proportion to `weights`, returning one part per
/// entry in input order, with the same keys. The parts sum exactly to the
/// total:
///
/// - each entry gets `⌊|total| · q_i / Σq⌋` with `q_i` its quantised weight,
///   and the few units left over go one each to the entries with the largest
///   remainders (ties: earlier entry first) — deterministic;
/// - a weight that is negative, NaN or infinite counts as 0;
/// - if every weight is 0, the total is split equally (earlier entries get
///   the leftover units);
/// - a negative total is split as its magnitude, every part negated (so no
///   part is positive); a non-negative total gives no negative part;
/// - no weights → no parts (the caller keeps the total).
pub fn split_amount<K: Clone>(total_micros: i64, weights: &[(K, f64)]) -> Vec<(K, i64)> {
    if weights.is_empty() {
        return Vec::new();
    }
    let clean: Vec<f64> = weights
        .iter()
        .map(|&(_, w)| if w.is_finite() && w > 0.0 { w } else { 0.0 })
        .collect();
    let max = clean.iter().copied().fold(0.0_f64, f64::max);
    let q: Vec<u128> = if max > 0.0 {
        // w / max ∈ [0, 1]; × 2^62 is exact in f64 and fits u128.
        clean.iter().map(|w| (w / max * SCALE) as u128).collect()
    } else {
        vec![1; clean.len()]
    };
    // The largest weight quantises to exactly 2^62 (or all are 1): Σq > 0.
    let qsum: u128 = q.iter().sum::<u128>().max(1);
    let magnitude = u128::from(total_micros.unsigned_abs());

    let mut parts: Vec<u128> = Vec::with_capacity(q.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(q.len());
    for (i, &qi) in q.iter().enumerate() {
        // ≤ 2^63 · 2^62: no overflow.
        let scaled = magnitude * qi;
        parts.push(scaled / qsum);
        remainders.push((scaled % qsum, i));
    }
    let assigned: u128 = parts.iter().sum();
    let leftover = magnitude.saturating_sub(assigned);
    // Largest remainder first, then input order.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders
        .iter()
        .take(usize::try_from(leftover).unwrap_or(usize::MAX))
    {
        parts[i] += 1;
    }

    weights
        .iter()
        .zip(parts)
        .map(|((k, _), p)| {
            // |part| ≤ |total|, so both conversions fit.
            let signed = if total_micros < 0 {
                -(p as i128)
            } else {
                p as i128
            };
            let part =
                i64::try_from(signed).unwrap_or(if total_micros < 0 { i64::MIN } else { i64::MAX });
            (k.clone(), part)
        })
        .collect()
}
