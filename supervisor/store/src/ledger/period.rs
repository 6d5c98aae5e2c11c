//! Billing periods (UTC): an hour, a day, a month, or everything.
//!
//! Labels: `2026-11-26T10` (hour), `2026-11-26` (day), `2026-11` (month),
//! `all`. The calendar math is Howard Hinnant's days-from-civil algorithm
//! (proleptic Gregorian), so no date library is needed.

use std::fmt;

use super::LedgerError;

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// How long a period is, for [`Period::containing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
    Month,
}

/// A billing period; its range is half-open, `[start, end)` in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    All,
    Month {
        year: i64,
        month: u32,
    },
    Day {
        year: i64,
        month: u32,
        day: u32,
    },
    Hour {
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
    },
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// RFC 3339 UTC with milliseconds: `2026-11-26T10:04:05.123Z`.
pub fn rfc3339(at_ms: i64) -> String {
    let days = at_ms.div_euclid(MS_PER_DAY);
    let ms = at_ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        ms / MS_PER_HOUR,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

fn bad(label: &str, reason: impl Into<String>) -> LedgerError {
    LedgerError::Period {
        label: label.to_owned(),
        reason: reason.into(),
    }
}

/// A fixed-width field of ASCII digits.
fn digits(label: &str, field: &str, what: &str, width: usize) -> Result<u32, LedgerError> {
    if field.len() != width || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            label,
            format!("{what} {field:?} is not {width} digits; expected YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH or all"),
        ));
    }
    field
        .parse()
        .map_err(|_| bad(label, format!("{what} {field:?} is not a number")))
}

impl Period {
    /// Parses a label: `2026-11-26T10`, `2026-11-26`, `2026-11` or `all`.
    pub fn parse(label: &str) -> Result<Period, LedgerError> {
        let text = label.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(Period::All);
        }
        let (date, hour) = match text.split_once('T') {
            Some((date, hour)) => (date, Some(hour)),
            None => (text, None),
        };
        let parts: Vec<&str> = date.split('-').collect();
        if !(2..=3).contains(&parts.len()) || (hour.is_some() && parts.len() != 3) {
            return Err(bad(
                label,
                "expected YYYY-MM (month), YYYY-MM-DD (day), YYYY-MM-DDTHH (hour, UTC) or all",
            ));
        }
        let year = i64::from(digits(label, parts[0], "year", 4)?);
        let month = digits(label, parts[1], "month", 2)?;
        if !(1..=12).contains(&month) {
            return Err(bad(label, format!("month {month} is not in 01..=12")));
        }
        if parts.len() == 2 {
            return Ok(Period::Month { year, month });
        }
        let day = digits(label, parts[2], "day", 2)?;
        let last = days_in_month(year, month);
        if !(1..=last).contains(&day) {
            return Err(bad(
                label,
                format!("day {day} is not in 01..={last} for {year:04}-{month:02}"),
            ));
        }
        let Some(hour) = hour else {
            return Ok(Period::Day { year, month, day });
        };
        let hour = digits(label, hour, "hour", 2)?;
        if hour > 23 {
            return Err(bad(label, format!("hour {hour} is not in 00..=23")));
        }
        Ok(Period::Hour {
            year,
            month,
            day,
            hour,
        })
    }

    /// The half-open range `[start, end)` in Unix ms; `All` is `[i64::MIN, i64::MAX)`.
    pub fn range_ms(&self) -> (i64, i64) {
        let day_ms = |y, m, d| days_from_civil(y, m, d) * MS_PER_DAY;
        match *self {
            Period::All => (i64::MIN, i64::MAX),
            Period::Month { year, month } => {
                let (ny, nm) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                (day_ms(year, month, 1), day_ms(ny, nm, 1))
            }
            Period::Day { year, month, day } => {
                let start = day_ms(year, month, day);
                (start, start + MS_PER_DAY)
            }
            Period::Hour {
                year,
                month,
                day,
                hour,
            } => {
                let start = day_ms(year, month, day) + i64::from(hour) * MS_PER_HOUR;
                (start, start + MS_PER_HOUR)
            }
        }
    }

    /// The period of `granularity` that contains the instant `at_ms`.
    pub fn containing(at_ms: i64, granularity: Granularity) -> Period {
        let (year, month, day) = civil_from_days(at_ms.div_euclid(MS_PER_DAY));
        match granularity {
            Granularity::Month => Period::Month { year, month },
            Granularity::Day => Period::Day { year, month, day },
            Granularity::Hour => Period::Hour {
                year,
                month,
                day,
                hour: (at_ms.rem_euclid(MS_PER_DAY) / MS_PER_HOUR) as u32,
            },
        }
    }

    /// Whether `at_ms` falls in this period.
    pub fn contains(&self, at_ms: i64) -> bool {
        let (start, end) = self.range_ms();
        *self == Period::All || (start <= at_ms && at_ms < end)
    }
}

impl fmt::Display for Period {
    /// The label that [`Period::parse`] accepts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::All => f.write_str("all"),
            Period::Month { year, month } => write!(f, "{year:04}-{month:02}"),
            Period::Day { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
            Period::Hour {
                year,
                month,
                day,
                hour,
            } => write!(f, "{year:04}-{month:02}-{day:02}T{hour:02}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = MS_PER_DAY;

    fn ms(label: &str) -> (i64, i64) {
        Period::parse(label).unwrap().range_ms()
    }

    #[test]
    fn civil_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for d in (-800_000..800_000).step_by(97) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn parses_valid_labels_and_round_trips_them() {
        for label in [
            "2026-11-26T10",
            "2026-11-26",
            "2026-11",
            "all",
            "2024-02-29",
        ] {
            assert_eq!(Period::parse(label).unwrap().to_string(), label);
        }
        assert_eq!(Period::parse(" ALL ").unwrap(), Period::All);
        // 2026-11-26T10:00:00Z = 1795687200000 ms.
        assert_eq!(ms("2026-11-26T10"), (1_795_687_200_000, 1_795_690_800_000));
        assert_eq!(ms("2026-11-26").0, 1_795_651_200_000);
        assert_eq!(ms("all"), (i64::MIN, i64::MAX));
    }

    #[test]
    fn boundaries_of_months_and_leap_years() {
        let (s, e) = ms("2024-02");
        assert_eq!((e - s) / DAY, 29, "2024 is a leap year");
        let (s, e) = ms("2023-02");
        assert_eq!((e - s) / DAY, 28);
        let (s, e) = ms("2000-02");
        assert_eq!((e - s) / DAY, 29, "divisible by 400");
        let (s, e) = ms("1900-02");
        assert_eq!((e - s) / DAY, 28, "divisible by 100");
        // December runs into January of the next year.
        assert_eq!(ms("2026-12").1, ms("2027-01").0);
        assert_eq!(ms("2026-12-31").1, ms("2027-01-01").0);
        assert_eq!(ms("2026-12-31T23").1, ms("2027-01-01T00").0);
        assert_eq!(ms("2024-02-29").1, ms("2024-03-01").0);
        assert_eq!(ms("2026-11").1, ms("2026-12").0);
    }

    #[test]
    fn rejects_invalid_labels_with_reasons() {
        let cases = [
            ("2026-13", "month 13"),
            ("2026-00", "month 0"),
            ("2026-02-29", "day 29 is not in 01..=28 for 2026-02"),
            ("2026-04-31", "day 31"),
            ("2026-11-26T24", "hour 24"),
            ("2026-11T10", "expected"),
            ("26-11", "year \"26\""),
            ("2026-1", "month \"1\""),
            ("2026-11-26T1", "hour \"1\""),
            ("2026/11", "expected"),
            ("", "expected"),
            ("yesterday", "expected"),
            ("2026-11-26-01", "expected"),
            ("2026-+1", "month \"+1\""),
        ];
        for (label, want) in cases {
            let err = Period::parse(label).unwrap_err().to_string();
            assert!(err.contains(want), "{label:?}: {err}");
            assert!(err.contains(&format!("{label:?}")), "{label:?}: {err}");
        }
    }

    #[test]
    fn containing_labels_instants() {
        let at = 1_795_687_200_000 + 59 * 60_000; // 2026-11-26T10:59Z
        assert_eq!(
            Period::containing(at, Granularity::Hour).to_string(),
            "2026-11-26T10"
        );
        assert_eq!(
            Period::containing(at, Granularity::Day).to_string(),
            "2026-11-26"
        );
        assert_eq!(
            Period::containing(at, Granularity::Month).to_string(),
            "2026-11"
        );
        assert_eq!(
            Period::containing(-1, Granularity::Hour).to_string(),
            "1969-12-31T23"
        );
        let p = Period::parse("2026-11").unwrap();
        assert!(p.contains(p.range_ms().0) && !p.contains(p.range_ms().1));
        assert_eq!(rfc3339(at + 5_123), "2026-11-26T10:59:05.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
