//! The reading side of SQLite, over its own `query_only` connection.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::from_sql;
use crate::backend::Reads;
use crate::error::{corrupt, sql, StoreError};
use crate::records::{
    AgentRecord, AgentTotals, AuditRecord, CredentialRow, FeedbackRecord, PlaneRecord, PlaneState,
    Principal, Role, TokenRow,
};
use vcp_common::session::cursor::Cursor;
use vcp_core::plane::PlaneSpec;
use vcp_core::workflow::machine::Workflow;
use vcp_core::workflow::{Task, WorkflowInfo};

pub(crate) struct SqliteReads {
    conn: Mutex<Connection>,
}

impl SqliteReads {
    pub(super) fn new(conn: Connection) -> SqliteReads {
        SqliteReads {
            conn: Mutex::new(conn),
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while reading leaves nothing half done.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counter `name` (0 before its first change).
    fn version(&self, name: &str) -> Result<i64, StoreError> {
        self.conn()
            .query_row(
                "SELECT coalesce(max(value), 0) FROM counters WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(sql("read version"))
    }
}

/// Every agent's record (read once, at open).
pub(super) fn agents(conn: &Connection) -> Result<HashMap<String, AgentRecord>, StoreError> {
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

fn plane_spec(customer: &str, json: &str) -> Result<PlaneSpec, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| corrupt(format!("stored control plane of {customer:?}: {e}")))
}

const WORKFLOW_COLUMNS: &str =
    "id, template, owner, subject, payload, state, error, created_ms, finished_ms";

impl Reads for SqliteReads {
    fn tokens_version(&self) -> Result<i64, StoreError> {
        self.version("tokens")
    }

    fn credentials_version(&self) -> Result<i64, StoreError> {
        self.version("credentials")
    }

    fn credentials(&self) -> Result<Vec<CredentialRow>, StoreError> {
        self.conn()
            .prepare(
                "SELECT role, id, serial, not_after_ms, first_seen_ms, last_seen_ms, revoked_ms
                 FROM credentials ORDER BY role, id, first_seen_ms, serial",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(CredentialRow {
                        role: r.get(0)?,
                        id: r.get(1)?,
                        serial: r.get(2)?,
                        not_after_ms: r.get(3)?,
                        first_seen_ms: r.get(4)?,
                        last_seen_ms: r.get(5)?,
                        revoked_ms: r.get(6)?,
                    })
                })?
                .collect()
            })
            .map_err(sql("read credentials"))
    }

    fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        // hash, account, role, created; expires, revoked, last used, uses left.
        type Raw = (String, String, String, i64, [Option<i64>; 4]);
        let rows: Vec<Raw> = self
            .conn()
            .prepare(
                "SELECT hash, account, role, created_ms, expires_ms, revoked_ms, last_used_ms,
                        uses_left
                 FROM tokens ORDER BY created_ms, hash",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
                    ))
                })?
                .collect()
            })
            .map_err(sql("read tokens"))?;
        rows.into_iter()
            .map(
                |(
                    hash,
                    account,
                    role,
                    created_ms,
                    [expires_ms, revoked_ms, last_used_ms, uses_left],
                )| {
                    let role = role
                        .parse::<Role>()
                        .map_err(|e| corrupt(format!("token of {account:?}: {e}")))?;
                    Ok(TokenRow {
                        hash,
                        principal: Principal { account, role },
                        created_ms,
                        expires_ms,
                        revoked_ms,
                        last_used_ms,
                        uses_left,
                    })
                },
            )
            .collect()
    }

    fn audit(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT seq, at_ms, actor, action, subject, detail FROM audit
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![after, limit as i64], |r| {
                    Ok(AuditRecord {
                        seq: r.get(0)?,
                        at_ms: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        subject: r.get(4)?,
                        detail: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(sql("read the audit trail"))
    }

    fn plane(&self, customer: &str) -> Result<Option<PlaneRecord>, StoreError> {
        let row: Option<(String, String, String, i64)> = self
            .conn()
            .query_row(
                "SELECT spec, state, workflow, updated_ms FROM control_planes WHERE customer = ?1",
                params![customer],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(sql("read plane"))?;
        row.map(|(spec, state, workflow, updated_ms)| {
            Ok(PlaneRecord {
                spec: plane_spec(customer, &spec)?,
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

    fn active_planes(&self) -> Result<Vec<PlaneSpec>, StoreError> {
        let rows: Vec<(String, String)> = self
            .conn()
            .prepare(
                "SELECT customer, spec FROM control_planes WHERE state = 'active' ORDER BY customer",
            )
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(sql("active planes"))?;
        rows.iter()
            .map(|(customer, spec)| plane_spec(customer, spec))
            .collect()
    }

    fn feedback_after(&self, after: i64) -> Result<Vec<(i64, FeedbackRecord)>, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT id, module, control_plane, account, rating, comment, at_ms FROM feedback
                 WHERE id > ?1 ORDER BY id",
            )
            .and_then(|mut s| {
                s.query_map(params![after], |r| {
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
                })?
                .collect()
            })
            .map_err(sql("read feedback"))
    }

    fn feedback_count(
        &self,
        account: &str,
        module: &str,
        plane: &str,
        since_ms: i64,
    ) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM feedback
                 WHERE account = ?1 AND module = ?2 AND control_plane = ?3 AND at_ms >= ?4",
                params![account, module, plane, since_ms],
                |r| r.get(0),
            )
            .map_err(sql("count feedback"))?;
        Ok(n as usize)
    }

    fn workflow(&self, id: &str) -> Result<Option<Workflow>, StoreError> {
        let conn = self.conn();
        let head = conn
            .prepare_cached(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id], Head::read).optional())
            .map_err(sql("load workflow"))?;
        head.map(|h| h.with_tasks(&conn)).transpose()
    }

    fn workflows(&self, owner: Option<&str>) -> Result<Vec<Workflow>, StoreError> {
        let conn = self.conn();
        let heads = conn
            .prepare_cached(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows
                 WHERE ?1 IS NULL OR owner = ?1 ORDER BY seq"
            ))
            .and_then(|mut s| {
                s.query_map([owner], Head::read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("list workflows"))?;
        heads.into_iter().map(|h| h.with_tasks(&conn)).collect()
    }

    fn unfinished_workflows(&self) -> Result<Vec<String>, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT id FROM workflows WHERE state IN ('running', 'rolling_back') ORDER BY seq",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql("unfinished workflows"))
    }
}

/// A workflow row, before its text columns are parsed.
struct Head {
    id: String,
    template: String,
    owner: String,
    subject: String,
    payload: String,
    state: String,
    error: Option<String>,
    created_ms: i64,
    finished_ms: Option<i64>,
}

impl Head {
    fn read(r: &Row<'_>) -> rusqlite::Result<Head> {
        Ok(Head {
            id: r.get(0)?,
            template: r.get(1)?,
            owner: r.get(2)?,
            subject: r.get(3)?,
            payload: r.get(4)?,
            state: r.get(5)?,
            error: r.get(6)?,
            created_ms: r.get(7)?,
            finished_ms: r.get(8)?,
        })
    }

    fn with_tasks(self, conn: &Connection) -> Result<Workflow, StoreError> {
        type Raw = (String, String, String, u32, Option<String>);
        type Times = (Option<i64>, Option<i64>, Option<u32>);
        let rows: Vec<(Raw, Times)> = conn
            .prepare_cached(
                "SELECT name, after, state, attempts, error, started_ms, finished_ms, done_order
                 FROM tasks WHERE workflow = ?1 ORDER BY position",
            )
            .and_then(|mut s| {
                s.query_map([&self.id], |r| {
                    Ok((
                        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                        (r.get(5)?, r.get(6)?, r.get(7)?),
                    ))
                })?
                .collect()
            })
            .map_err(sql("load tasks"))?;
        let id = &self.id;
        let tasks = rows
            .into_iter()
            .map(|((name, after, state, attempts, error), times)| {
                Ok(Task {
                    after: serde_json::from_str(&after)
                        .map_err(|e| corrupt(format!("{id} task {name} after: {e}")))?,
                    state: state.parse().map_err(|e| corrupt(format!("{id}: {e}")))?,
                    name,
                    attempts,
                    error,
                    started_ms: times.0,
                    finished_ms: times.1,
                    done_order: times.2,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if tasks.is_empty() {
            return Err(corrupt(format!("{id} has no tasks")));
        }
        Ok(Workflow {
            state: self
                .state
                .parse()
                .map_err(|e| corrupt(format!("{id}: {e}")))?,
            error: self.error,
            finished_ms: self.finished_ms,
            tasks,
            info: std::sync::Arc::new(WorkflowInfo {
                payload: serde_json::from_str(&self.payload)
                    .map_err(|e| corrupt(format!("{id} payload: {e}")))?,
                id: self.id,
                template: self.template,
                owner: self.owner,
                subject: self.subject,
                created_ms: self.created_ms,
            }),
        })
    }
}
