//! The durable record of provisioned control planes and of customer
//! feedback, in the control database. A plane is `registered` while its
//! workflow runs and `active` once in force; a restarted supervisor brings
//! the active ones back into force.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::accounts::open_db;
use crate::unix_ms;
use vcp_core::plane::PlaneSpec;

#[derive(Debug, thiserror::Error)]
pub enum PlaneStoreError {
    #[error("control database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored control plane of {customer:?} is unreadable: {source}")]
    Corrupt {
        customer: String,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaneState {
    Registered,
    Active,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaneRecord {
    pub spec: PlaneSpec,
    pub state: PlaneState,
    /// The workflow that provisioned the plane.
    pub workflow: String,
    pub updated_ms: i64,
}

/// One customer feedback on a module.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackRecord {
    pub module: String,
    pub control_plane: String,
    pub account: String,
    pub rating: f64,
    pub comment: String,
    pub at_ms: i64,
}

const SCHEMA: &str = "
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
);";

pub struct PlaneStore {
    conn: Mutex<Connection>,
}

impl PlaneStore {
    pub fn open(dir: &Path) -> Result<PlaneStore, PlaneStoreError> {
        let conn = open_db(dir)?;
        conn.execute_batch(SCHEMA)?;
        Ok(PlaneStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the plane of `spec.customer` as registered by `workflow`.
    /// Fails if another workflow holds the customer's plane.
    pub fn register(&self, spec: &PlaneSpec, workflow: &str) -> Result<(), String> {
        let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        // Insert-if-absent and read back the holder under one lock: two
        // workflows racing for a customer cannot both win.
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO control_planes (customer, spec, state, workflow, updated_ms)
             VALUES (?1, ?2, 'registered', ?3, ?4)",
            params![spec.customer, json, workflow, unix_ms()],
        )
        .map_err(|e| e.to_string())?;
        let holder: String = conn
            .query_row(
                "SELECT workflow FROM control_planes WHERE customer = ?1",
                params![spec.customer],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if holder == workflow {
            Ok(())
        } else {
            Err(format!(
                "customer {:?} already has a control plane (provisioned by {holder})",
                spec.customer
            ))
        }
    }

    pub fn set_state(&self, customer: &str, state: PlaneState) -> Result<(), PlaneStoreError> {
        let s = match state {
            PlaneState::Registered => "registered",
            PlaneState::Active => "active",
        };
        self.conn().execute(
            "UPDATE control_planes SET state = ?2, updated_ms = ?3 WHERE customer = ?1",
            params![customer, s, unix_ms()],
        )?;
        Ok(())
    }

    pub fn remove(&self, customer: &str) -> Result<(), PlaneStoreError> {
        self.conn().execute(
            "DELETE FROM control_planes WHERE customer = ?1",
            params![customer],
        )?;
        Ok(())
    }

    pub fn get(&self, customer: &str) -> Result<Option<PlaneRecord>, PlaneStoreError> {
        let row: Option<(String, String, String, i64)> = self
            .conn()
            .query_row(
                "SELECT spec, state, workflow, updated_ms FROM control_planes WHERE customer = ?1",
                params![customer],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(spec, state, workflow, updated_ms)| {
            Ok(PlaneRecord {
                spec: serde_json::from_str(&spec).map_err(|source| PlaneStoreError::Corrupt {
                    customer: customer.to_owned(),
                    source,
                })?,
                state: if state == "active" {
                    PlaneState::Active
                } else {
                    PlaneState::Registered
                },
                workflow,
                updated_ms,
            })
        })
        .transpose()
    }

    /// The planes in force, to bring back at start.
    pub fn active(&self) -> Result<Vec<PlaneSpec>, PlaneStoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT customer, spec FROM control_planes WHERE state = 'active' ORDER BY customer",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (customer, spec) = row?;
            out.push(
                serde_json::from_str(&spec)
                    .map_err(|source| PlaneStoreError::Corrupt { customer, source })?,
            );
        }
        Ok(out)
    }

    /// Stores a rating; returns its number (ratings are numbered in the
    /// order they were given).
    pub fn add_feedback(&self, f: &FeedbackRecord) -> Result<i64, PlaneStoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO feedback (module, control_plane, account, rating, comment, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                f.module,
                f.control_plane,
                f.account,
                f.rating,
                f.comment,
                f.at_ms
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Every rating numbered after `after`, with its number, oldest first.
    pub fn feedback_after(
        &self,
        after: i64,
    ) -> Result<Vec<(i64, FeedbackRecord)>, PlaneStoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT rowid, module, control_plane, account, rating, comment, at_ms FROM feedback
             WHERE rowid > ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![after], |r| {
            Ok((
                r.get(0)?,
                FeedbackRecord {
                    module: r.get(1)?,
                    control_plane: r.get(2)?,
                    account: r.get(3)?,
                    rating: r.get(4)?,
                    comment: r.get(5)?,
                    at_ms: r.get(6)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many ratings `account` gave `module` in `plane` since `since_ms`.
    pub fn feedback_since(
        &self,
        account: &str,
        module: &str,
        plane: &str,
        since_ms: i64,
    ) -> Result<usize, PlaneStoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM feedback
             WHERE account = ?1 AND module = ?2 AND control_plane = ?3 AND at_ms >= ?4",
            params![account, module, plane, since_ms],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::module::Kind;
    use vcp_core::plane::Choice;
    use vcp_core::plane::Mode;

    #[test]
    fn planes_survive_reopen_and_one_workflow_holds_a_customer() {
        let dir = tempfile::tempdir().unwrap();
        let spec = PlaneSpec {
            customer: "globex".into(),
            modules: [(
                Kind::Autoscaling,
                Choice {
                    mode: Mode::Replace,
                    module: Some("globex-scaler".into()),
                },
            )]
            .into(),
        };
        let s = PlaneStore::open(dir.path()).unwrap();
        s.register(&spec, "wf-1").unwrap();
        s.register(&spec, "wf-1").unwrap(); // idempotent for its workflow
        assert!(s.register(&spec, "wf-2").unwrap_err().contains("wf-1"));
        assert!(s.active().unwrap().is_empty());
        s.set_state("globex", PlaneState::Active).unwrap();
        drop(s);
        let s = PlaneStore::open(dir.path()).unwrap();
        assert_eq!(s.active().unwrap(), vec![spec.clone()]);
        assert_eq!(s.get("globex").unwrap().unwrap().workflow, "wf-1");
        s.remove("globex").unwrap();
        assert!(s.get("globex").unwrap().is_none());
    }
}
