//! How the dashboard prints numbers. Every format is a pure function of
//! the value the JSON API returns for the same thing, so a test (or a
//! person comparing the two) can compute the page's text from the API's
//! JSON:
//!
//! | what                          | API field                      | printed as                          |
//! |-------------------------------|--------------------------------|-------------------------------------|
//! | CPU utilisation, reward share | ratio 0..1                     | `{:.1}%` of ratio × 100: `12.5%`    |
//! | memory used / total           | bytes                          | `{:.2} GiB` of bytes / 2^30         |
//! | reputation and components     | 0..1                           | `{:.3}`: `0.873`                    |
//! | contribution                  | cumulative credit              | `{:.3}`                             |
//! | decision value                | number                         | at most 3 decimals, no trailing 0s  |
//! | statement line quantity       | number                         | at most 6 decimals, no trailing 0s  |
//! | money                         | integer micro-units            | `ledger::statement::money`: `1.234567` |
//! | times                         | milliseconds since the epoch   | `ledger::period::rfc3339`           |
//! | counts (requests, rounds)     | integer                        | decimal, no separators              |
//!
//! A missing value prints as [`MISSING`].

/// What an absent reading prints as.
pub const MISSING: &str = "–";

/// A ratio (0..1) as a percentage with one decimal: `0.125` → `12.5%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// An optional ratio as [`percent`], or [`MISSING`].
pub fn percent_opt(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| MISSING.to_owned(), percent)
}

/// Bytes as GiB with two decimals: `1073741824` → `1.00 GiB`.
pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / (1u64 << 30) as f64)
}

/// Optional bytes as [`gib`], or [`MISSING`].
pub fn gib_opt(bytes: Option<f64>) -> String {
    bytes.map_or_else(|| MISSING.to_owned(), gib)
}

/// A score (reputation, a component, a contribution) with three decimals.
pub fn score(v: f64) -> String {
    format!("{v:.3}")
}

/// `v` with at most `decimals` decimals and no trailing zeros.
fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    match s {
        "" | "-" | "-0" => "0".to_owned(),
        s => s.to_owned(),
    }
}

/// A number with at most three decimals and no trailing zeros:
/// `3.0` → `3`, `0.25` → `0.25`, `1.23456` → `1.235`.
pub fn number(v: f64) -> String {
    trimmed(v, 3)
}

/// A statement line's quantity: at most six decimals, no trailing zeros
/// (as the ledger's table prints it).
pub fn quantity(q: f64) -> String {
    trimmed(q, 6)
}

/// Micro-units as currency units (see `ledger::statement::money`).
pub fn money(micros: i64) -> String {
    vcp_store::ledger::statement::money(micros)
}

/// A time in milliseconds since the epoch as RFC 3339 UTC; `never` for 0.
pub fn time(at_ms: i64) -> String {
    if at_ms <= 0 {
        "never".to_owned()
    } else {
        vcp_store::ledger::period::rfc3339(at_ms)
    }
}

/// `yes` / `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_deterministic() {
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent_opt(None), MISSING);
        assert_eq!(gib(1_073_741_824.0), "1.00 GiB");
        assert_eq!(gib(3.5 * 1_073_741_824.0), "3.50 GiB");
        assert_eq!(score(0.87349), "0.873");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.23456), "1.235");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(1e6), "1000000");
        assert_eq!(quantity(0.000_001), "0.000001");
        assert_eq!(quantity(12.5), "12.5");
        assert_eq!(money(-1_234_567), "-1.234567");
        assert_eq!(time(0), "never");
        assert_eq!(time(1_000), "1970-01-01T00:00:01.000Z");
    }
}
