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
//! - Storage: the `entries` and `state` tables of the store; charges are
//!   committed in groups by the store's one writer (see [`record`]); readers
//!   use their own read-only connection and work without a writer (CLI).
//!   One writer (one [`crate::Store::open`]) per data directory at a time:
//!   its entry count is its own.
//! - Statements: indexes on `(debit, at_ms)` and `(credit, at_ms)` serve an
//!   account's charges in a period from either side.

pub mod pages;
pub mod period;
pub mod reader;
pub mod record;
pub mod statement;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::error::StoreError;

pub use pages::{Cursor, MAX_PAGE_LINES};
pub use period::{Granularity, Period};
pub use reader::{LedgerReader, LedgerTotals};
pub use record::Ledger;
pub use statement::{render, Format, Line, Statement};

pub use crate::sqlite::STORE_FILE;

pub use crate::records::{Charge, StateRow};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
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
    #[error("{charges} recorded charge(s) were not committed: {error}")]
    Lost { charges: u64, error: String },
    #[error("amount overflows i64 micro-units in {what}")]
    Overflow { what: String },
    #[error(transparent)]
    Store(#[from] StoreError),
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
