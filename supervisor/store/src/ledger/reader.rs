//! Reading the ledger over its own read-only connection: totals, balances,
//! statements. Works while the writer runs (WAL) and without one (CLI).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

use super::period::rfc3339;
use super::{sql, LedgerError, Line, Period, StateRow, Statement, STORE_FILE};

/// Everything in the ledger. Double entry: `total_debits == total_credits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LedgerTotals {
    pub entries: u64,
    /// Sum over every account of what it paid, micro-units.
    pub total_debits: i64,
    /// Sum over every account of what it was paid, micro-units.
    pub total_credits: i64,
}

pub struct LedgerReader {
    pub(super) conn: Connection,
}

fn overflow(what: impl Into<String>) -> LedgerError {
    LedgerError::Overflow { what: what.into() }
}

/// Sums per-account sums (as SQLite returns them) in i128, checked into i64.
fn sum_side(conn: &Connection, query: &str, side: &str) -> Result<i64, LedgerError> {
    let mut stmt = conn.prepare_cached(query).map_err(sql("prepare totals"))?;
    let mut rows = stmt.query([]).map_err(sql("totals"))?;
    let mut total: i128 = 0;
    while let Some(row) = rows.next().map_err(sql("totals"))? {
        total += i128::from(row.get::<_, i64>(0).map_err(sql("totals"))?);
    }
    i64::try_from(total).map_err(|_| overflow(format!("the total of {side}")))
}

impl LedgerReader {
    /// Opens the store in `dir` read-only; it must exist.
    pub fn open(dir: &Path) -> Result<LedgerReader, LedgerError> {
        let path = dir.join(STORE_FILE);
        if !path.is_file() {
            return Err(LedgerError::NotFound { path });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("open read-only"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql("busy_timeout"))?;
        Ok(LedgerReader { conn })
    }

    /// Entry count and both sides, each summed per account then over accounts.
    pub fn totals(&self) -> Result<LedgerTotals, LedgerError> {
        // One read transaction so the three figures are of the same snapshot.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sql("begin read"))?;
        let entries: i64 = tx
            .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
            .map_err(sql("count entries"))?;
        let total_debits = sum_side(
            &tx,
            "SELECT SUM(amount) FROM entries GROUP BY debit",
            "debits",
        )?;
        let total_credits = sum_side(
            &tx,
            "SELECT SUM(amount) FROM entries GROUP BY credit",
            "credits",
        )?;
        tx.finish().map_err(sql("end read"))?;
        Ok(LedgerTotals {
            entries: entries as u64,
            total_debits,
            total_credits,
        })
    }

    /// What `account` paid minus what it was paid (positive: it owes), all time.
    pub fn account_balance(&self, account: &str) -> Result<i64, LedgerError> {
        let (debits, credits): (i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT COALESCE(SUM(amount), 0) FROM entries WHERE debit = ?1),
                        (SELECT COALESCE(SUM(amount), 0) FROM entries WHERE credit = ?1)",
                params![account],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql("account balance"))?;
        debits
            .checked_sub(credits)
            .ok_or_else(|| overflow(format!("the balance of {account:?}")))
    }

    /// Every account that appears on either side, sorted.
    pub fn accounts(&self) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT debit FROM entries UNION SELECT credit FROM entries ORDER BY 1")
            .map_err(sql("accounts"))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(sql("accounts"))?;
        rows.collect::<Result<_, _>>().map_err(sql("accounts"))
    }

    /// The state row `name`, if one was written.
    pub fn state(&self, name: &str) -> Result<Option<StateRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at_ms, bytes FROM state WHERE name = ?1")
            .map_err(sql("state"))?;
        let mut rows = stmt
            .query_map(params![name], |r| {
                Ok(StateRow {
                    name: name.to_owned(),
                    at_ms: r.get(0)?,
                    bytes: r.get(1)?,
                })
            })
            .map_err(sql("state"))?;
        rows.next().transpose().map_err(sql("state"))
    }

    /// Whether a charge with this idempotency key is recorded.
    pub fn has_key(&self, key: &str) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM entries WHERE key = ?1)",
                params![key],
                |r| r.get(0),
            )
            .map_err(sql("has key"))
    }

    /// The charges of `account` in `period`, oldest first, with subtotals.
    /// A line's amount is positive when the account pays, negative when paid.
    pub fn statement(&self, account: &str, period: &Period) -> Result<Statement, LedgerError> {
        let (start, end) = period.range_ms();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT at_ms, module, control_plane, kind, description, quantity, unit_price,
                        amount, credit, id FROM entries
                   WHERE debit = ?1 AND at_ms >= ?2 AND at_ms < ?3
                 UNION ALL
                 SELECT at_ms, module, control_plane, kind, description, quantity, unit_price,
                        -amount, debit, id FROM entries
                   WHERE credit = ?1 AND at_ms >= ?2 AND at_ms < ?3
                 ORDER BY 1, 10",
            )
            .map_err(sql("prepare statement"))?;
        let rows = stmt
            .query_map(params![account, start, end], line)
            .map_err(sql("statement"))?;
        let lines: Vec<Line> = rows.collect::<Result<_, _>>().map_err(sql("statement"))?;
        build_statement(account, &period.to_string(), lines)
    }
}

/// A statement's line from a row of `at_ms, module, control_plane, kind,
/// description, quantity, unit_price, signed amount, counterparty`.
pub(super) fn line(r: &rusqlite::Row<'_>) -> rusqlite::Result<Line> {
    let at_ms: i64 = r.get(0)?;
    Ok(Line {
        at_ms,
        time: rfc3339(at_ms),
        module: r.get(1)?,
        control_plane: r.get(2)?,
        kind: r.get(3)?,
        description: r.get(4)?,
        quantity: r.get(5)?,
        unit_price: r.get(6)?,
        amount: r.get(7)?,
        counterparty: r.get(8)?,
    })
}

/// Subtotals and total of `lines`, in exact i64 arithmetic.
pub fn build_statement(
    account: &str,
    period: &str,
    lines: Vec<Line>,
) -> Result<Statement, LedgerError> {
    let what = |by: &str| overflow(format!("the {by} of {account:?} for {period}"));
    let mut by_module: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, i64> = BTreeMap::new();
    let mut total: i64 = 0;
    for l in &lines {
        let m = by_module.entry(&l.module).or_default();
        *m = m
            .checked_add(l.amount)
            .ok_or_else(|| what("subtotal by module"))?;
        let k = by_kind.entry(&l.kind).or_default();
        *k = k
            .checked_add(l.amount)
            .ok_or_else(|| what("subtotal by kind"))?;
        total = total.checked_add(l.amount).ok_or_else(|| what("total"))?;
    }
    let owned = |m: BTreeMap<&str, i64>| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Ok(Statement {
        account: account.to_owned(),
        period: period.to_owned(),
        subtotals_by_module: owned(by_module),
        subtotals_by_kind: owned(by_kind),
        total,
        line_count: lines.len() as u64,
        next: None,
        lines,
    })
}
