//! What the supervisor resumes from after a restart, beside the ledger's
//! charges: the judge's reputation, contribution and goal windows, every
//! module instance's request counters (its unbilled usage), and the
//! biller's baselines. One row of the ledger's `state` table, written every
//! second by the biller and — with the baselines it moves to — in the same
//! transaction as each billing run's charges, so after a crash the
//! baselines are exactly those of the last durable run and the counters at
//! least as far (nothing charged twice; at most the last second of usage
//! before a crash goes unbilled).

use serde::{Deserialize, Serialize};
use vcp_common::module::Kind;

use vcp_core::stats::ModuleSummary;
use vcp_core::stats::StatsState;

/// The ledger state row's name.
pub const NAME: &str = "supervisor";

/// One module instance's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub control_plane: String,
    pub module: String,
    pub kind: Kind,
    pub remote: bool,
    pub shadow: bool,
    pub stats: StatsState,
}

/// What the biller charged up to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BillerState {
    pub last_ms: i64,
    pub period: String,
    pub modules: Vec<((String, String), ModuleSummary)>,
    pub goals: Vec<(String, (u64, u64))>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub at_ms: i64,
    /// The judge's state, in the judge's own encoding.
    pub judge: Vec<u8>,
    pub usage: Vec<Usage>,
    pub biller: BillerState,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// The checkpoint in `bytes`; `None` (and a log line) when it cannot
    /// be read, as after an upgrade that changed its shape.
    pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        match postcard::from_bytes(bytes) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "the saved supervisor state cannot be read; starting afresh");
                None
            }
        }
    }

    /// The usage counters of `(control_plane, module)`.
    pub fn usage(&self, control_plane: &str, module: &str) -> Option<&Usage> {
        self.usage
            .iter()
            .find(|u| u.control_plane == control_plane && u.module == module)
    }
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
