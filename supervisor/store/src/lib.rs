//! vcp's durable store, everything the supervisor keeps on disk, behind one
//! API with one group-commit writer:
//!
//! - `agents`: each agent's exactly-once cursor and totals;
//! - `ledger`: the double-entry ledger and the checkpoint rows beside it
//!   (judge state, module counters, the biller's baselines);
//! - `accounts`: accounts and their tokens;
//! - `audit`: the append-only trail of who changed credentials and planes;
//! - `credentials`: agents' and modules' certificates, and revocations;
//! - `planes`: the planes provisioned through the API, and the ratings;
//! - `workflows`: the provisioning workflows and their tasks.
//!
//! [`Store::open`] opens it and starts the writer; the handles it gives
//! are cheap clones that all write through that one thread, which commits
//! whatever is queued, of every kind, as one transaction. Nothing is
//! acknowledged to a peer before its commit. The database sits behind the
//! traits of [`backend`]: SQLite today (`vcp.sqlite` in the data directory,
//! WAL, `synchronous=FULL`). The crate depends on the core's vocabulary and
//! on nothing of the supervisor's shell.

pub mod accounts;
pub mod agents;
pub mod audit;
mod backend;
pub mod credentials;
pub mod error;
pub mod ledger;
pub mod planes;
mod records;
mod sqlite;
pub mod workflows;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub use error::StoreError;
pub use records::AgentRecord;
pub use sqlite::STORE_FILE;
pub use writer::{GROUP_WEIGHT, QUEUE_WRITES};

use backend::Reads;
use writer::Writer;

/// The store: hands out the handles to its parts. Cheap to clone; the
/// writer stops once the store and every handle are dropped, after
/// committing what was queued.
#[derive(Clone)]
pub struct Store {
    writer: Writer,
    reads: Arc<dyn Reads>,
    tokens: Arc<accounts::TokenTable>,
    revoked: Arc<std::sync::RwLock<credentials::Revoked>>,
    workflows_closed: Arc<std::sync::Mutex<bool>>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, bringing in the files
    /// of earlier versions, and starts its writer; returns it with every
    /// agent's stored record.
    pub fn open(dir: &Path) -> Result<(Store, HashMap<String, AgentRecord>), StoreError> {
        let (backend, reads, agents) = sqlite::open(dir)?;
        let writer = Writer::start(backend).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let reads: Arc<dyn Reads> = Arc::new(reads);
        let tokens = Arc::new(accounts::TokenTable::default());
        tokens.refresh(&*reads)?;
        let store = Store {
            writer,
            reads,
            tokens,
            revoked: Default::default(),
            workflows_closed: Default::default(),
        };
        store.credentials().refresh()?;
        Ok((store, agents))
    }

    pub fn agents(&self) -> agents::Agents {
        agents::Agents {
            writer: self.writer.clone(),
        }
    }

    pub fn ledger(&self) -> ledger::Ledger {
        ledger::Ledger {
            writer: self.writer.clone(),
        }
    }

    pub fn accounts(&self) -> accounts::Accounts {
        accounts::Accounts {
            writer: self.writer.clone(),
            reads: self.reads.clone(),
            table: self.tokens.clone(),
        }
    }

    pub fn credentials(&self) -> credentials::Credentials {
        credentials::Credentials {
            writer: self.writer.clone(),
            reads: self.reads.clone(),
            revoked: self.revoked.clone(),
        }
    }

    pub fn audit(&self) -> audit::Audit {
        audit::Audit {
            writer: self.writer.clone(),
            reads: self.reads.clone(),
        }
    }

    pub fn planes(&self) -> planes::PlaneStore {
        planes::PlaneStore {
            writer: self.writer.clone(),
            reads: self.reads.clone(),
        }
    }

    /// The workflows (every handle shares one closed flag).
    pub fn workflows(&self) -> workflows::Workflows {
        workflows::Workflows {
            writer: self.writer.clone(),
            reads: self.reads.clone(),
            closed: self.workflows_closed.clone(),
        }
    }
}

/// Wall-clock time in milliseconds since the Unix epoch (0 if the clock is
/// before it).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
