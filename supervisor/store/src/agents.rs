//! Each agent's position: its cursor (incarnation and last sequence taken)
//! and its totals, saved before the agent's batch is acknowledged, so a
//! killed supervisor never takes a batch twice nor loses one it acked.

pub use crate::records::{AgentRecord, AgentTotals};

use crate::backend::Write;
use crate::error::StoreError;
use crate::writer::Writer;

/// The agents' positions; cheap to clone.
#[derive(Clone)]
pub struct Agents {
    pub(crate) writer: Writer,
}

impl Agents {
    /// Durably records an agent's cursor and totals; returns after commit.
    pub async fn save_agent(&self, agent_id: &str, record: AgentRecord) -> Result<(), StoreError> {
        self.writer
            .wait(Write::Agent {
                id: agent_id.to_owned(),
                record,
            })
            .await
            .map(drop)
    }

    /// Times a writer found the store's queue full and waited.
    pub fn full(&self) -> u64 {
        self.writer.full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use vcp_common::session::cursor::Cursor;

    #[tokio::test]
    async fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let rec = AgentRecord {
            cursor: Cursor {
                incarnation: u64::MAX - 3,
                last_seq: 42,
            },
            totals: AgentTotals {
                batches: 42,
                readings: 2520,
                duplicates: 1,
                lost_batches: 2,
                lost_readings: 17,
                wire_bytes: 9000,
            },
        };
        {
            let (store, loaded) = Store::open(dir.path()).unwrap();
            assert!(loaded.is_empty());
            store.agents().save_agent("agent-1", rec).await.unwrap();
        }
        let (_store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.get("agent-1"), Some(&rec));
    }
}
