//! Stores of earlier versions kept the ledger in `ledger.sqlite` and the
//! tokens, planes, feedback and workflows in `control.sqlite`. At open,
//! each such file is copied into the one store in one transaction (rows
//! already there are kept, so an interrupted copy is simply done again),
//! then renamed `<file>.migrated` with its WAL, so it is read only once and
//! still there for the operator.

use std::path::Path;

use rusqlite::Connection;

use super::schema::columns;
use crate::error::{sql, StoreError};

const LEGACY: &[(&str, &[&str])] = &[
    ("ledger.sqlite", &["entries", "state"]),
    (
        "control.sqlite",
        &[
            "tokens",
            "control_planes",
            "feedback",
            "counters",
            "workflows",
            "tasks",
        ],
    ),
];

pub(super) fn legacy_files(conn: &Connection, dir: &Path) -> Result<(), StoreError> {
    for (file, tables) in LEGACY {
        let path = dir.join(file);
        if path.is_file() {
            copy(conn, &path, tables)?;
            for suffix in ["", "-wal", "-shm"] {
                let from = dir.join(format!("{file}{suffix}"));
                let to = dir.join(format!("{file}.migrated{suffix}"));
                if from.exists() {
                    std::fs::rename(&from, &to).map_err(|source| StoreError::Dir {
                        path: from.clone(),
                        source,
                    })?;
                }
            }
            tracing::info!(from = %path.display(), "earlier store file copied into the store");
        }
    }
    Ok(())
}

fn copy(conn: &Connection, path: &Path, tables: &[&str]) -> Result<(), StoreError> {
    let name = path.to_string_lossy();
    conn.execute("ATTACH DATABASE ?1 AS legacy", [name.as_ref()])
        .map_err(sql("attach earlier store file"))?;
    let copied = (|| {
        let tx = conn.unchecked_transaction().map_err(sql("begin"))?;
        for table in tables {
            let cols = columns(conn, "legacy", table)?.join(", ");
            if !cols.is_empty() {
                tx.execute_batch(&format!(
                    "INSERT OR IGNORE INTO main.{table} ({cols}) SELECT {cols} FROM legacy.{table}"
                ))
                .map_err(sql("copy earlier store file"))?;
            }
        }
        tx.commit().map_err(sql("commit"))
    })();
    conn.execute_batch("DETACH DATABASE legacy")
        .map_err(sql("detach earlier store file"))?;
    copied
}

#[cfg(test)]
mod tests {
    use crate::ledger::LedgerReader;
    use crate::Store;

    #[test]
    fn files_of_earlier_versions_are_copied_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = rusqlite::Connection::open(dir.path().join("ledger.sqlite")).unwrap();
        ledger
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE entries (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
                   at_ms INTEGER NOT NULL, debit TEXT NOT NULL, credit TEXT NOT NULL,
                   amount INTEGER NOT NULL, module TEXT NOT NULL, control_plane TEXT NOT NULL,
                   kind TEXT NOT NULL, description TEXT NOT NULL, quantity REAL NOT NULL,
                   unit_price INTEGER NOT NULL);
                 INSERT INTO entries VALUES (7, 'k', 1, 'customer:acme', 'operator', 250,
                   'm', 'default', 'solicitation', 'd', 1.0, 250);",
            )
            .unwrap();
        let control = rusqlite::Connection::open(dir.path().join("control.sqlite")).unwrap();
        control
            .execute_batch(
                "CREATE TABLE feedback (id INTEGER PRIMARY KEY, module TEXT NOT NULL,
                   control_plane TEXT NOT NULL, account TEXT NOT NULL, rating REAL NOT NULL,
                   comment TEXT NOT NULL, at_ms INTEGER NOT NULL);
                 INSERT INTO feedback VALUES (3, 'm', 'acme', 'acme', 0.5, 'ok', 9);",
            )
            .unwrap();
        // The earlier ledger is still open, its row only in the WAL.
        {
            let (store, _) = Store::open(dir.path()).unwrap();
            let reader = LedgerReader::open(dir.path()).unwrap();
            assert_eq!(reader.totals().unwrap().entries, 1);
            assert_eq!(reader.account_balance("customer:acme").unwrap(), 250);
            let feedback = store.planes().feedback_after(0).unwrap();
            assert_eq!(feedback.len(), 1);
            assert_eq!(feedback[0].0, 3, "ratings keep their numbers");
        }
        drop((ledger, control));
        for file in ["ledger.sqlite", "control.sqlite"] {
            assert!(!dir.path().join(file).exists(), "{file} moved aside");
            assert!(dir.path().join(format!("{file}.migrated")).exists());
        }
        let (_store, _) = Store::open(dir.path()).unwrap();
        let reader = LedgerReader::open(dir.path()).unwrap();
        assert_eq!(reader.totals().unwrap().entries, 1, "copied once");
    }
}
