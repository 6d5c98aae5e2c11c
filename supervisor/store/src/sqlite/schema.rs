//! Every table of the store, created if absent.

use rusqlite::Connection;

use crate::error::{sql, StoreError};

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
);
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
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    role TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked_ms INTEGER,
    last_used_ms INTEGER,
    uses_left INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_id ON tokens (substr(hash, 1, 12));
CREATE TABLE IF NOT EXISTS credentials (
    role TEXT NOT NULL,
    id TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_after_ms INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    revoked_ms INTEGER,
    PRIMARY KEY (role, id, serial)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TABLE IF NOT EXISTS control_planes (
    customer TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    workflow TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    module TEXT NOT NULL,
    control_plane TEXT NOT NULL,
    account TEXT NOT NULL,
    rating REAL NOT NULL,
    comment TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    template TEXT NOT NULL,
    owner TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX IF NOT EXISTS workflows_owner ON workflows (owner, seq);
CREATE INDEX IF NOT EXISTS workflows_state ON workflows (state);
CREATE TABLE IF NOT EXISTS tasks (
    workflow TEXT NOT NULL REFERENCES workflows (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    after TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    started_ms INTEGER,
    finished_ms INTEGER,
    done_order INTEGER,
    PRIMARY KEY (workflow, position)
) WITHOUT ROWID;";

/// Columns added since a table's first schema, for stores made before them.
const ADDED: &[(&str, &str, &str)] = &[
    (
        "agent_cursor",
        "lost_readings",
        "INTEGER NOT NULL DEFAULT 0",
    ),
    ("tokens", "expires_ms", "INTEGER"),
    ("tokens", "revoked_ms", "INTEGER"),
    ("tokens", "last_used_ms", "INTEGER"),
    ("tokens", "uses_left", "INTEGER"),
];

pub(super) fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(sql("schema"))?;
    for (table, column, decl) in ADDED {
        if !columns(conn, "main", table)?.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))
                .map_err(sql("schema"))?;
        }
    }
    Ok(())
}

/// The columns of `schema.table` (none if it does not exist).
pub(super) fn columns(
    conn: &Connection,
    schema: &str,
    table: &str,
) -> Result<Vec<String>, StoreError> {
    conn.prepare("SELECT name FROM pragma_table_info(?1, ?2)")
        .and_then(|mut s| s.query_map([table, schema], |r| r.get(0))?.collect())
        .map_err(sql("table columns"))
}
