//! The supervisor's embedded store: SQLite in WAL mode in the data directory.
//!
//! One writer thread owns the connection and commits in groups: callers send
//! what to write and wait for the commit before they acknowledge anything to
//! a peer, so nothing acknowledged is lost when the supervisor is killed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};

pub use vcp_common::session::agent::{AgentRecord, AgentTotals};
use vcp_common::session::cursor::Cursor;

/// Writes queued for the writer thread at most; a caller past it waits
/// (nothing is dropped: every write is an agent's acknowledgement).
pub const QUEUE_WRITES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sqlite ({context}): {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the store writer has stopped")]
    Closed,
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { context, source }
}

struct Write {
    agent_id: String,
    record: AgentRecord,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Write>,
    /// Times a caller found the queue full and waited.
    pub full: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agent_cursor (
    agent_id TEXT PRIMARY KEY,
    incarnation INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    batches INTEGER NOT NULL,
    readings INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    dropped_batches INTEGER NOT NULL,
    wire_bytes INTEGER NOT NULL,
    lost_readings INTEGER NOT NULL DEFAULT 0
);";

/// Columns added since the first schema, for stores made before them.
const ADDED: &[(&str, &str)] = &[("lost_readings", "INTEGER NOT NULL DEFAULT 0")];

/// Opens (creating if needed) the store in `dir`.
pub fn open_connection(dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let conn = Connection::open(dir.join("vcp.sqlite")).map_err(sql("open"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql("journal_mode"))?;
    // FULL: a commit survives power loss, not only a process crash.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql("synchronous"))?;
    conn.execute_batch(SCHEMA).map_err(sql("schema"))?;
    for (column, decl) in ADDED {
        let has: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('agent_cursor') WHERE name = ?1")
            .and_then(|mut s| s.exists([column]))
            .map_err(sql("schema"))?;
        if !has {
            conn.execute_batch(&format!(
                "ALTER TABLE agent_cursor ADD COLUMN {column} {decl}"
            ))
            .map_err(sql("schema"))?;
        }
    }
    Ok(conn)
}

// SQLite integers are i64; u64 values round-trip through their bit pattern.
fn to_sql(v: u64) -> i64 {
    v as i64
}
fn from_sql(v: i64) -> u64 {
    v as u64
}

impl Store {
    /// Opens the store, loads every agent's record, and starts the writer.
    pub fn open(dir: &Path) -> Result<(Store, HashMap<String, AgentRecord>), StoreError> {
        let conn = open_connection(dir)?;
        let records = load_agents(&conn)?;
        let (tx, rx) = mpsc::channel(QUEUE_WRITES);
        std::thread::Builder::new()
            .name("vcp-store".into())
            .spawn(move || writer(conn, rx))
            .map_err(|source| StoreError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        Ok((
            Store {
                tx,
                full: Default::default(),
            },
            records,
        ))
    }

    /// Durably records an agent's cursor and totals; returns after commit.
    pub async fn save_agent(&self, agent_id: &str, record: AgentRecord) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        let write = Write {
            agent_id: agent_id.to_owned(),
            record,
            done,
        };
        let write = match self.tx.try_send(write) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(w)) => Some(w),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(StoreError::Closed),
        };
        if let Some(write) = write {
            let n = self.full.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if (n + 1).is_power_of_two() {
                tracing::warn!(
                    times = n + 1,
                    "store queue full: ingest waits for the writer"
                );
            }
            self.tx.send(write).await.map_err(|_| StoreError::Closed)?;
        }
        wait.await.map_err(|_| StoreError::Closed)?
    }
}

fn load_agents(conn: &Connection) -> Result<HashMap<String, AgentRecord>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT agent_id, incarnation, last_seq, batches, readings, duplicates, dropped_batches, wire_bytes, lost_readings FROM agent_cursor")
        .map_err(sql("load agents"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                AgentRecord {
                    cursor: Cursor {
                        incarnation: from_sql(r.get(1)?),
                        last_seq: from_sql(r.get(2)?),
                    },
                    totals: AgentTotals {
                        batches: from_sql(r.get(3)?),
                        readings: from_sql(r.get(4)?),
                        duplicates: from_sql(r.get(5)?),
                        lost_batches: from_sql(r.get(6)?),
                        wire_bytes: from_sql(r.get(7)?),
                        lost_readings: from_sql(r.get(8)?),
                    },
                },
            ))
        })
        .map_err(sql("load agents"))?;
    rows.collect::<Result<_, _>>().map_err(sql("load agents"))
}

fn writer(mut conn: Connection, mut rx: mpsc::Receiver<Write>) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let result = commit(&mut conn, &group).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = group.len(), "store commit failed");
        }
        for w in group {
            let _ = w.done.send(result.clone().map_err(StoreError::Commit));
        }
    }
}

fn commit(conn: &mut Connection, group: &[Write]) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(sql("begin"))?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO agent_cursor (agent_id, incarnation, last_seq, batches, readings, duplicates, dropped_batches, wire_bytes, lost_readings)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(agent_id) DO UPDATE SET incarnation = ?2, last_seq = ?3, batches = ?4,
                   readings = ?5, duplicates = ?6, dropped_batches = ?7, wire_bytes = ?8, lost_readings = ?9",
            )
            .map_err(sql("prepare cursor"))?;
        for w in group {
            let (c, t) = (w.record.cursor, w.record.totals);
            stmt.execute(params![
                w.agent_id,
                to_sql(c.incarnation),
                to_sql(c.last_seq),
                to_sql(t.batches),
                to_sql(t.readings),
                to_sql(t.duplicates),
                to_sql(t.lost_batches),
                to_sql(t.wire_bytes),
                to_sql(t.lost_readings),
            ])
            .map_err(sql("save cursor"))?;
        }
    }
    tx.commit().map_err(sql("commit"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            store.save_agent("agent-1", rec).await.unwrap();
        }
        let (_store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.get("agent-1"), Some(&rec));
    }
}
