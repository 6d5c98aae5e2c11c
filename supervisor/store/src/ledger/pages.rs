//! A statement a page at a time, for peers: whatever the period holds, one
//! read returns at most [`MAX_PAGE_LINES`] lines, and the subtotals, total
//! and line count of the whole period come from aggregates in SQLite
//! (bounded by the account's modules × kinds, not its charges). The next
//! page starts after a [`Cursor`]; the chart of the cumulative cost is at
//! most a given number of points ([`LedgerReader::cost_points`]).

use std::collections::BTreeMap;

use rusqlite::params;

use super::period::rfc3339;
use super::reader::{line, LedgerReader};
use super::{sql, LedgerError, Period, Statement};

/// Lines one page holds at most.
pub const MAX_PAGE_LINES: usize = 10_000;

/// Where a page ends: the last line's time and entry id (lines are in
/// that order). Written `AT-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub id: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.at_ms, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Cursor, String> {
        let bad = || format!("cursor {s:?}: expected the `next` of the previous page");
        let (at, id) = s.rsplit_once('-').ok_or_else(bad)?;
        Ok(Cursor {
            at_ms: at.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// Both sides of the account's entries in the period: `(at_ms, module,
/// control_plane, kind, description, quantity, unit_price, signed amount,
/// counterparty, id)`, `?1` the account, `?2..?3` the period.
const SIDES: &str = "
    SELECT at_ms, module, control_plane, kind, description, quantity, unit_price,
           amount AS amount, credit AS counterparty, id FROM entries
      WHERE debit = ?1 AND at_ms >= ?2 AND at_ms < ?3
    UNION ALL
    SELECT at_ms, module, control_plane, kind, description, quantity, unit_price,
           -amount, debit, id FROM entries
      WHERE credit = ?1 AND at_ms >= ?2 AND at_ms < ?3";

impl LedgerReader {
    /// The statement of `account` in `period` with at most `limit` (≤
    /// [`MAX_PAGE_LINES`]) lines after `after`; its subtotals, total and
    /// `line_count` cover the whole period, `next` is set when more lines
    /// follow.
    pub fn statement_page(
        &self,
        account: &str,
        period: &Period,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Statement, LedgerError> {
        let (start, end) = period.range_ms();
        let limit = limit.min(MAX_PAGE_LINES);
        let after = after.unwrap_or(Cursor {
            at_ms: i64::MIN,
            id: i64::MIN,
        });
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT * FROM ({SIDES}) WHERE at_ms > ?4 OR (at_ms = ?4 AND id > ?5)
                 ORDER BY at_ms, id LIMIT ?6"
            ))
            .map_err(sql("prepare statement page"))?;
        let rows = stmt
            .query_map(
                params![account, start, end, after.at_ms, after.id, limit as i64 + 1],
                |r| Ok((line(r)?, r.get::<_, i64>(9)?)),
            )
            .map_err(sql("statement page"))?;
        let mut lines = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("statement page"))?;
        let next = (lines.len() > limit).then(|| {
            lines.truncate(limit);
            lines.last().map(|(l, id)| Cursor {
                at_ms: l.at_ms,
                id: *id,
            })
        });
        let mut statement = self.summary(account, period)?;
        statement.lines = lines.into_iter().map(|(l, _)| l).collect();
        statement.next = next.flatten().map(|c| c.to_string());
        Ok(statement)
    }

    /// Subtotals, total and line count of the period, without lines.
    fn summary(&self, account: &str, period: &Period) -> Result<Statement, LedgerError> {
        let (start, end) = period.range_ms();
        let what = |by: &str| LedgerError::Overflow {
            what: format!("the {by} of {account:?} for {period}"),
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT module, kind, SUM(amount), COUNT(*) FROM ({SIDES}) GROUP BY module, kind"
            ))
            .map_err(sql("prepare statement summary"))?;
        let groups = stmt
            .query_map(params![account, start, end], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(sql("statement summary"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("statement summary"))?;
        let (mut by_module, mut by_kind) = (BTreeMap::new(), BTreeMap::new());
        let (mut total, mut count) = (0i64, 0u64);
        for (module, kind, sum, n) in groups {
            let m: &mut i64 = by_module.entry(module).or_default();
            *m = m
                .checked_add(sum)
                .ok_or_else(|| what("subtotal by module"))?;
            let k: &mut i64 = by_kind.entry(kind).or_default();
            *k = k.checked_add(sum).ok_or_else(|| what("subtotal by kind"))?;
            total = total.checked_add(sum).ok_or_else(|| what("total"))?;
            count += n as u64;
        }
        Ok(Statement {
            account: account.to_owned(),
            period: period.to_string(),
            lines: Vec::new(),
            line_count: count,
            next: None,
            subtotals_by_module: by_module.into_iter().collect(),
            subtotals_by_kind: by_kind.into_iter().collect(),
            total,
        })
    }

    /// The account's cumulative cost over the period at most `points`
    /// times: charges summed into equal spans between its first and last
    /// charge, each point at its span's last charge.
    pub fn cost_points(
        &self,
        account: &str,
        period: &Period,
        points: usize,
    ) -> Result<Vec<(i64, i64)>, LedgerError> {
        let (start, end) = period.range_ms();
        let span: Option<(i64, i64)> = self
            .conn
            .prepare_cached(&format!("SELECT MIN(at_ms), MAX(at_ms) FROM ({SIDES})"))
            .and_then(|mut s| {
                s.query_row(params![account, start, end], |r| {
                    Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?))
                })
            })
            .map_err(sql("statement span"))?;
        let Some((first, last)) = span else {
            return Ok(Vec::new());
        };
        let width = ((i128::from(last) - i128::from(first)) / points.max(1) as i128 + 1)
            .min(i128::from(i64::MAX)) as i64;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT (at_ms - ?4) / ?5, MAX(at_ms), SUM(amount) FROM ({SIDES})
                 GROUP BY 1 ORDER BY 1"
            ))
            .map_err(sql("prepare cost points"))?;
        let spans = stmt
            .query_map(params![account, start, end, first, width], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .map_err(sql("cost points"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("cost points"))?;
        let mut total: i64 = 0;
        spans
            .into_iter()
            .map(|(at_ms, sum)| {
                total = total
                    .checked_add(sum)
                    .ok_or_else(|| LedgerError::Overflow {
                        what: format!("the cost of {account:?} up to {}", rfc3339(at_ms)),
                    })?;
                Ok((at_ms, total))
            })
            .collect()
    }
}
