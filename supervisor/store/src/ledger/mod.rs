//! The ledger: every charge between customers, vendors and the operator.
//!
//! - Money is integer micro-units (`i64`); it is never a float, not even
//!   when rendered (see [`statement::money`]).
//! - Double entry: a charge is ONE row holding both legs, the account that
//!   pays (`debit`) and the account paid (`credit`), for one positive amount.
//!   A charge can therefore never be half-recorded, and debits equal credits
//!   by construction; [`LedgerReader::totals`] still sums the two sides
//!   independently, per account, as a check.
//! - Idempotency: `key` is UNIQUE; recording a charge whose key is already
//!   there is a no-op (`ON CONFLICT(key) DO NOTHING`, the targeted form of
//!   `INSERT OR IGNORE`: any other constraint failure is still an error).
//! - Storage: `ledger.sqlite` in the data directory, WAL, `synchronous=FULL`;
//!   one writer thread commits in groups (see [`writer`]); readers use their
//!   own read-only connection and work without a writer (CLI). One writer
//!   (one [`Ledger::open`]) per file at a time: its entry count is its own.
//! - Statements: indexes on `(debit, at_ms)` and `(credit, at_ms)` serve an
//!   account's charges in a period from either side.

pub mod period;
pub mod reader;
pub mod statement;
pub mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use period::{Granularity, Period};
pub use reader::{LedgerReader, LedgerTotals};
pub use statement::{render, Format, Line, Statement};
pub use writer::Ledger;

/// The file in the data directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

pub use vcp_core::pricing::Charge;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("creating ledger directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no ledger at {path} (it is created by the supervisor)")]
    NotFound { path: PathBuf },
    #[error("ledger sqlite ({context}): {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("invalid charge {key:?}: {reason}")]
    InvalidCharge { key: String, reason: String },
    #[error("invalid period {label:?}: {reason}")]
    Period { label: String, reason: String },
    #[error("ledger commit failed: {0}")]
    Commit(String),
    #[error("{charges} recorded charge(s) were not committed: {error}")]
    Lost { charges: u64, error: String },
    #[error("amount overflows i64 micro-units in {what}")]
    Overflow { what: String },
    #[error("the ledger writer has stopped")]
    Closed,
}

pub(crate) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> LedgerError {
    move |source| LedgerError::Sqlite { context, source }
}

/// Validates every charge and drops the zero ones; refuses the whole batch
/// if one is invalid (nothing of it is queued).
pub(crate) fn checked(mut charges: Vec<Charge>) -> Result<Vec<Charge>, LedgerError> {
    let mut zero = false;
    for c in &charges {
        zero |= !c.validate().map_err(|reason| LedgerError::InvalidCharge {
            key: c.key.clone(),
            reason,
        })?;
    }
    if zero {
        charges.retain(|c| c.amount != 0);
    }
    Ok(charges)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    at_ms INTEGER NOT NULL,
    debit TEXT NOT NULL,
    credit TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    module TEXT NOT NULL,
    control_plane TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    quantity REAL NOT NULL,
    unit_price INTEGER NOT NULL,
    CHECK (debit <> credit)
);
CREATE INDEX IF NOT EXISTS entries_debit ON entries (debit, at_ms);
CREATE INDEX IF NOT EXISTS entries_credit ON entries (credit, at_ms);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    bytes BLOB NOT NULL
);";

/// A named blob kept beside the charges (what the supervisor resumes
/// from); written in the same transaction as the charges it goes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub name: String,
    pub at_ms: i64,
    pub bytes: Vec<u8>,
}

/// Opens (creating if needed) the ledger for writing.
pub(crate) fn open_writer(dir: &Path) -> Result<Connection, LedgerError> {
    std::fs::create_dir_all(dir).map_err(|source| LedgerError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let conn = Connection::open(dir.join(LEDGER_FILE)).map_err(sql("open"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql("busy_timeout"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql("journal_mode"))?;
    // FULL: a commit survives power loss, not only a process crash.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql("synchronous"))?;
    // 32 MiB of page cache keeps the three B-trees' hot pages in memory.
    conn.pragma_update(None, "cache_size", -32_768)
        .map_err(sql("cache_size"))?;
    conn.execute_batch(SCHEMA).map_err(sql("schema"))?;
    Ok(conn)
}
