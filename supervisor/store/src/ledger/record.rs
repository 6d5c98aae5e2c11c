//! Recording charges, through the store's one writer (see
//! [`crate::writer`]: groups, back-pressure, nothing dropped).
//!
//! - [`Ledger::record`] is fire-and-forget: validated, queued, returns.
//! - [`Ledger::flush`] resolves once everything queued before it is
//!   committed; it reports a failed commit of fire-and-forget writes since
//!   the previous flush as [`LedgerError::Lost`].
//! - [`Ledger::record_durable`] resolves after its own commit, with the
//!   number of charges that were new (not already there by key).

use std::path::Path;

use super::{checked, Charge, LedgerError, LedgerReader, StateRow};
use crate::backend::{Done, Write};
use crate::error::StoreError;
use crate::writer::Writer;

/// The ledger's writing side; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) writer: Writer,
}

impl Ledger {
    /// Opens the store in `dir` for its ledger alone, with a read-only
    /// reader of it (tools, tests and benches; the supervisor takes the
    /// ledger from its [`crate::Store`]).
    pub fn open(dir: &Path) -> Result<(Ledger, LedgerReader), LedgerError> {
        let (store, _) = crate::Store::open(dir)?;
        Ok((store.ledger(), LedgerReader::open(dir)?))
    }

    /// Queues charges for the next group commit and returns at once.
    /// Zero charges are skipped; an invalid charge refuses the whole batch.
    pub fn record(&self, charges: Vec<Charge>) -> Result<(), LedgerError> {
        let charges = checked(charges)?;
        if charges.is_empty() {
            return Ok(());
        }
        Ok(self.writer.queue(Write::Charges(charges))?)
    }

    /// Records charges and waits for their commit; returns how many were new.
    pub async fn record_durable(&self, charges: Vec<Charge>) -> Result<usize, LedgerError> {
        self.record_durable_with(charges, Vec::new()).await
    }

    /// Records charges and state rows in one transaction and waits for its
    /// commit: the state holds exactly when the charges do.
    pub async fn record_durable_with(
        &self,
        charges: Vec<Charge>,
        state: Vec<StateRow>,
    ) -> Result<usize, LedgerError> {
        let charges = checked(charges)?;
        if charges.is_empty() && state.is_empty() {
            return Ok(0);
        }
        let writes = std::iter::once(Write::Charges(charges))
            .chain(state.into_iter().map(Write::State))
            .collect();
        match self.writer.wait(Write::All(writes)).await? {
            Done::Rows(n) => Ok(n),
            other => Err(StoreError::Commit(format!("store answered {other:?} to charges")).into()),
        }
    }

    /// Queues a state row for the next group commit (a checkpoint: the
    /// newest one written wins). Returns at once.
    pub fn save_state(&self, row: StateRow) -> Result<(), LedgerError> {
        Ok(self.writer.queue(Write::State(row))?)
    }

    /// Waits until everything queued before it is committed; returns the
    /// number of entries in the ledger.
    pub async fn flush(&self) -> Result<u64, LedgerError> {
        match self.writer.wait(Write::Barrier).await {
            Ok(Done::Entries(n)) => Ok(n),
            Ok(other) => {
                Err(StoreError::Commit(format!("store answered {other:?} to a flush")).into())
            }
            Err(StoreError::Lost { weight, error }) => Err(LedgerError::Lost {
                charges: weight,
                error,
            }),
            Err(e) => Err(e.into()),
        }
    }
}
