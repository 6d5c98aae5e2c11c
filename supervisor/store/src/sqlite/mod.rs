//! The store on SQLite: one file, `vcp.sqlite` in the data directory, in
//! WAL mode with `synchronous=FULL` (a commit survives power loss, not
//! only a process crash). The writer thread owns one connection
//! ([`write::Sqlite`]); reads use another ([`read::SqliteReads`]); the
//! ledger's statements and the CLI open their own read-only one
//! ([`crate::ledger::LedgerReader`]).

mod migrate;
mod read;
mod schema;
mod write;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{sql, StoreError};
use crate::records::AgentRecord;

pub(crate) use read::SqliteReads;
pub(crate) use write::Sqlite;

/// The store's file in the data directory.
pub const STORE_FILE: &str = "vcp.sqlite";

/// Opens (creating if needed) the store in `dir`, bringing in the files of
/// earlier versions; returns the writer's backend, the reads and every
/// agent's record.
pub(crate) fn open(
    dir: &Path,
) -> Result<(Sqlite, SqliteReads, HashMap<String, AgentRecord>), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let conn = connect(dir)?;
    schema::create(&conn)?;
    migrate::legacy_files(&conn, dir)?;
    let agents = read::agents(&conn)?;
    let entries: i64 = conn
        .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
        .map_err(sql("count entries"))?;
    let reads = connect(dir)?;
    reads
        .pragma_update(None, "query_only", true)
        .map_err(sql("query_only"))?;
    Ok((
        Sqlite::new(conn, entries as u64),
        SqliteReads::new(reads),
        agents,
    ))
}

fn connect(dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(dir.join(STORE_FILE)).map_err(sql("open"))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql("busy_timeout"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql("journal_mode"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql("synchronous"))?;
    // 32 MiB of page cache keeps the ledger's B-trees' hot pages in memory.
    conn.pragma_update(None, "cache_size", -32_768)
        .map_err(sql("cache_size"))?;
    Ok(conn)
}

// SQLite integers are i64; u64 values round-trip through their bit pattern.
fn to_sql(v: u64) -> i64 {
    v as i64
}
fn from_sql(v: i64) -> u64 {
    v as u64
}
