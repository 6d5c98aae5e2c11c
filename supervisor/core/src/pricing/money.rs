//! Integer money arithmetic: half-to-even division, ratio quantisation and
//! the customer/vendor split.

/// Ratios (payer split, savings share) are quantised to parts per million.
pub const SHARE_SCALE: i64 = 1_000_000;

/// `num / den` rounded half to even (banker's rounding). `den ≤ 0` gives 0
/// (never panics).
pub fn div_round_half_even(num: i128, den: i128) -> i128 {
    if den <= 0 {
        return 0;
    }
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den); // 0 ≤ r < den
                                 // Compare r with den − r rather than 2r with den: no overflow.
    match r.cmp(&(den - r)) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + q.rem_euclid(2),
    }
}

/// Saturating conversion of an intermediate to money.
pub(crate) fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// `round_half_even(quantity × price / den)`; a price ≤ 0 gives 0.
/// `u64 × i64` is below 2¹²⁷: the product never overflows `i128`.
pub(crate) fn price(quantity: u64, price: i64, den: i128) -> i64 {
    if price <= 0 {
        return 0;
    }
    saturate(div_round_half_even(
        i128::from(quantity) * i128::from(price),
        den,
    ))
}

/// A ratio in [0, 1] as parts per million, rounded half to even; values
/// outside [0, 1] are clamped, NaN gives 0.
pub fn ratio_ppm(ratio: f64) -> i64 {
    if ratio.is_nan() {
        return 0;
    }
    // In [0, 10⁶] after the clamp: the cast is exact.
    (ratio.clamp(0.0, 1.0) * SHARE_SCALE as f64).round_ties_even() as i64
}

/// A measured quantity (e.g. core-seconds) in millionths, rounded; negative
/// or NaN counts as 0, too large saturates at `u64::MAX`.
pub(crate) fn micro_quantity(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    // `as` saturates (+∞ → u64::MAX).
    (x * 1e6).round() as u64
}

/// Splits `amount` into `(customer, vendor)` parts with the customer's share
/// `customer_ppm` (clamped to [0, 10⁶]). The customer's part is
/// `⌈amount × ppm / 10⁶⌉` — the customer absorbs the rounding unit — and the
/// vendor's is the rest: the parts sum exactly to `amount`, and for
/// `amount ≥ 0` neither is negative.
pub fn split_customer_share(amount: i64, customer_ppm: i64) -> (i64, i64) {
    let ppm = i128::from(customer_ppm.clamp(0, SHARE_SCALE));
    let scale = i128::from(SHARE_SCALE);
    let scaled = i128::from(amount) * ppm;
    // Ceiling division (scale > 0).
    let customer = -((-scaled).div_euclid(scale));
    // |customer| ≤ |amount|, so both parts fit i64.
    let customer = saturate(customer);
    (customer, amount - customer)
}

/// `quantity × ppm / 10⁶` for display (the payer's share of a quantity).
pub(crate) fn scale_quantity(quantity: f64, ppm: i64) -> f64 {
    quantity * ppm as f64 / SHARE_SCALE as f64
}

/// A share in ppm as a percentage for descriptions: `30%`, `33.3333%`.
pub(crate) fn percent(ppm: i64) -> String {
    let whole = ppm / 10_000;
    let frac = ppm % 10_000;
    if frac == 0 {
        format!("{whole}%")
    } else {
        let digits = format!("{frac:04}");
        format!("{whole}.{}%", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_to_even() {
        let r = |n, d| div_round_half_even(n, d);
        assert_eq!(
            [r(5, 2), r(7, 2), r(9, 4), r(11, 4), r(-5, 2), r(-7, 2)],
            [2, 4, 2, 3, -2, -4]
        );
        assert_eq!(
            [r(35_500, 1000), r(36_500, 1000), r(36_501, 1000)],
            [36, 36, 37]
        );
        assert_eq!(r(1, 0), 0);
        assert_eq!(r(i128::MAX, i128::MAX), 1);
    }

    #[test]
    fn split_gives_the_customer_the_rounding_unit() {
        assert_eq!(split_customer_share(1200, 300_000), (360, 840));
        assert_eq!(split_customer_share(35, 300_000), (11, 24)); // 10.5 → 11
        assert_eq!(split_customer_share(100, 333_333), (34, 66)); // 33.3333 → 34
        assert_eq!(split_customer_share(1, 1), (1, 0));
        assert_eq!(split_customer_share(7, 0), (0, 7));
        assert_eq!(split_customer_share(7, SHARE_SCALE), (7, 0));
        assert_eq!(split_customer_share(7, -5), (0, 7));
        assert_eq!(split_customer_share(7, 2 * SHARE_SCALE), (7, 0));
        assert_eq!(
            split_customer_share(i64::MAX, 500_000),
            (i64::MAX / 2 + 1, i64::MAX / 2)
        );
    }

    #[test]
    fn ratios_and_quantities() {
        assert_eq!(ratio_ppm(0.3), 300_000);
        assert_eq!(ratio_ppm(1.0 / 3.0), 333_333);
        assert_eq!(ratio_ppm(0.000_000_5), 0); // half to even
        assert_eq!(ratio_ppm(0.000_001_5), 2);
        assert_eq!(
            [ratio_ppm(-1.0), ratio_ppm(2.0), ratio_ppm(f64::NAN)],
            [0, SHARE_SCALE, 0]
        );
        assert_eq!(micro_quantity(7200.0), 7_200_000_000);
        assert_eq!(micro_quantity(0.18), 180_000);
        assert_eq!([micro_quantity(-3.0), micro_quantity(f64::NAN)], [0, 0]);
        assert_eq!(micro_quantity(f64::INFINITY), u64::MAX);
        assert_eq!(price(u64::MAX, i64::MAX, 1), i64::MAX);
        assert_eq!(price(10, -5, 1), 0);
        assert_eq!(percent(300_000), "30%");
        assert_eq!(percent(333_333), "33.3333%");
        assert_eq!(percent(5_000), "0.5%");
    }
}
