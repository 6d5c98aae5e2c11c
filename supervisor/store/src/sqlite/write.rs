//! The writer's side of SQLite: each group in one `BEGIN IMMEDIATE`
//! transaction, each write that can be refused on its own in a savepoint.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::to_sql;
use crate::backend::{Backend, Done, Write};
use crate::error::{corrupt, sql, StoreError};
use crate::records::PlaneState;
use vcp_core::workflow::machine::Workflow;
use vcp_core::workflow::WorkflowInfo;

pub(crate) struct Sqlite {
    conn: Connection,
    entries: u64,
}

impl Sqlite {
    pub(super) fn new(conn: Connection, entries: u64) -> Sqlite {
        Sqlite { conn, entries }
    }
}

impl Backend for Sqlite {
    fn entries(&self) -> u64 {
        self.entries
    }

    fn commit(&mut self, group: &[Write]) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin"))?;
        let mut out = Vec::with_capacity(group.len());
        for write in group {
            out.push(match write {
                // An upsert that fails is the database failing: the group
                // fails with it (no savepoint on the hot path).
                Write::Agent { .. } | Write::Barrier => Ok(apply(&tx, write)?),
                _ => {
                    let savepoint = tx.savepoint().map_err(sql("savepoint"))?;
                    let done = apply(&savepoint, write);
                    if done.is_ok() {
                        savepoint.commit().map_err(sql("release savepoint"))?;
                    } // else dropped: rolled back
                    done
                }
            });
        }
        tx.commit().map_err(sql("commit"))?;
        Ok(out)
    }
}

fn apply(conn: &Connection, write: &Write) -> Result<Done, StoreError> {
    match write {
        Write::Agent { id, record } => {
            let (c, t) = (record.cursor, record.totals);
            conn.prepare_cached(
                "INSERT INTO agent_cursor (agent_id, incarnation, last_seq, batches, readings, duplicates, dropped_batches, wire_bytes, lost_readings)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(agent_id) DO UPDATE SET incarnation = ?2, last_seq = ?3, batches = ?4,
                   readings = ?5, duplicates = ?6, dropped_batches = ?7, wire_bytes = ?8, lost_readings = ?9",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    to_sql(c.incarnation),
                    to_sql(c.last_seq),
                    to_sql(t.batches),
                    to_sql(t.readings),
                    to_sql(t.duplicates),
                    to_sql(t.lost_batches),
                    to_sql(t.wire_bytes),
                    to_sql(t.lost_readings),
                ])
            })
            .map_err(sql("save cursor"))?;
            Ok(Done::Nothing)
        }
        Write::Charges(charges) => {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO entries (key, at_ms, debit, credit, amount, module, control_plane,
                       kind, description, quantity, unit_price)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT(key) DO NOTHING",
                )
                .map_err(sql("prepare insert"))?;
            let mut new = 0;
            for c in charges {
                new += stmt
                    .execute(params![
                        c.key,
                        c.at_ms,
                        c.debit,
                        c.credit,
                        c.amount,
                        c.module,
                        c.control_plane,
                        c.kind,
                        c.description,
                        c.quantity,
                        c.unit_price,
                    ])
                    .map_err(sql("insert charge"))?;
            }
            Ok(Done::Rows(new))
        }
        Write::State(row) => {
            conn.prepare_cached(
                "INSERT INTO state (name, at_ms, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET at_ms = ?2, bytes = ?3 WHERE ?2 >= state.at_ms",
            )
            .and_then(|mut s| s.execute(params![row.name, row.at_ms, row.bytes]))
            .map_err(sql("save state"))?;
            Ok(Done::Nothing)
        }
        Write::All(writes) => {
            let mut new = 0;
            for w in writes {
                if let Done::Rows(n) = apply(conn, w)? {
                    new += n;
                }
            }
            Ok(Done::Rows(new))
        }
        Write::Token(t) => {
            conn.execute(
                "INSERT INTO tokens (hash, account, role, created_ms, expires_ms, uses_left)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    t.hash,
                    t.principal.account,
                    t.principal.role.as_str(),
                    t.created_ms,
                    t.expires_ms,
                    t.uses_left
                ],
            )
            .map_err(sql("insert token"))?;
            bump_version(conn, "tokens")?;
            Ok(Done::Nothing)
        }
        Write::RevokeToken { id, at_ms } => {
            conn.execute(
                    "UPDATE tokens SET revoked_ms = ?2 WHERE substr(hash, 1, ?3) = ?1 AND revoked_ms IS NULL",
                    params![id, at_ms, crate::accounts::ID_LEN],
                )
                .map_err(sql("revoke token"))?;
            bump_version(conn, "tokens")?;
            Ok(Done::Nothing)
        }
        Write::SpendToken { hash } => {
            let left: Option<Option<i64>> = conn
                .query_row(
                    "SELECT uses_left FROM tokens WHERE hash = ?1",
                    params![hash],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("read token uses"))?;
            match left {
                None => return Err(StoreError::Refused("unknown token".into())),
                Some(Some(n)) if n <= 0 => {
                    return Err(StoreError::Refused("the join token is spent".into()))
                }
                Some(Some(_)) => {
                    conn.execute(
                        "UPDATE tokens SET uses_left = uses_left - 1 WHERE hash = ?1",
                        params![hash],
                    )
                    .map_err(sql("spend token"))?;
                    bump_version(conn, "tokens")?;
                }
                Some(None) => {}
            }
            Ok(Done::Nothing)
        }
        Write::TokensUsed(used) => {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE tokens SET last_used_ms = max(coalesce(last_used_ms, 0), ?2) WHERE hash = ?1",
                )
                .map_err(sql("prepare token use"))?;
            for (hash, at_ms) in used {
                stmt.execute(params![hash, at_ms])
                    .map_err(sql("record token use"))?;
            }
            Ok(Done::Nothing)
        }
        Write::Credential(c) => {
            conn.prepare_cached(
                "INSERT INTO credentials (role, id, serial, not_after_ms, first_seen_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (role, id, serial) DO UPDATE
                   SET last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    c.role,
                    c.id,
                    c.serial,
                    c.not_after_ms,
                    c.first_seen_ms,
                    c.last_seen_ms
                ])
            })
            .map_err(sql("record credential"))?;
            Ok(Done::Nothing)
        }
        Write::RevokeCredentials { role, id, at_ms } => {
            conn.execute(
                "UPDATE credentials SET revoked_ms = ?3
                 WHERE role = ?1 AND id = ?2 AND revoked_ms IS NULL",
                params![role, id, at_ms],
            )
            .map_err(sql("revoke credentials"))?;
            bump_version(conn, "credentials")?;
            Ok(Done::Nothing)
        }
        Write::Audit(a) => {
            conn.prepare_cached(
                "INSERT INTO audit (at_ms, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![a.at_ms, a.actor, a.action, a.subject, a.detail]))
            .map_err(sql("append to the audit trail"))?;
            Ok(Done::Number(conn.last_insert_rowid()))
        }
        Write::RegisterPlane {
            spec,
            workflow,
            at_ms,
        } => {
            let json = serde_json::to_string(spec).map_err(corrupt)?;
            // Insert-if-absent and read back the holder in one transaction
            // of the one writer: two workflows racing cannot both win.
            conn.execute(
                "INSERT OR IGNORE INTO control_planes (customer, spec, state, workflow, updated_ms)
                 VALUES (?1, ?2, 'registered', ?3, ?4)",
                params![spec.customer, json, workflow, at_ms],
            )
            .map_err(sql("register plane"))?;
            let holder = conn
                .query_row(
                    "SELECT workflow FROM control_planes WHERE customer = ?1",
                    params![spec.customer],
                    |r| r.get(0),
                )
                .map_err(sql("plane holder"))?;
            Ok(Done::Holder(holder))
        }
        Write::PlaneState {
            customer,
            state,
            at_ms,
        } => {
            let state = match state {
                PlaneState::Registered => "registered",
                PlaneState::Active => "active",
            };
            conn.execute(
                "UPDATE control_planes SET state = ?2, updated_ms = ?3 WHERE customer = ?1",
                params![customer, state, at_ms],
            )
            .map_err(sql("plane state"))?;
            Ok(Done::Nothing)
        }
        Write::RemovePlane { customer } => {
            conn.execute(
                "DELETE FROM control_planes WHERE customer = ?1",
                params![customer],
            )
            .map_err(sql("remove plane"))?;
            Ok(Done::Nothing)
        }
        Write::Feedback(f) => {
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
            )
            .map_err(sql("insert feedback"))?;
            Ok(Done::Number(conn.last_insert_rowid()))
        }
        Write::InsertWorkflow {
            template,
            owner,
            subject,
            payload,
            now_ms,
        } => {
            let seq: i64 = conn
                .query_row(
                    "INSERT INTO counters (name, value) VALUES ('workflow', 1)
                     ON CONFLICT (name) DO UPDATE SET value = value + 1
                     RETURNING value",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql("next workflow id"))?;
            let info = WorkflowInfo {
                id: format!("wf-{seq}"),
                template: template.name.to_owned(),
                owner: owner.clone(),
                subject: subject.clone(),
                payload: payload.clone(),
                created_ms: *now_ms,
            };
            let wf = Workflow::new(info, template.tasks);
            conn.execute(
                "INSERT INTO workflows (id, seq, template, owner, subject, payload, state, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    wf.info.id,
                    seq,
                    wf.info.template,
                    wf.info.owner,
                    wf.info.subject,
                    wf.info.payload.to_string(),
                    wf.state.as_str(),
                    now_ms,
                ],
            )
            .map_err(sql("insert workflow"))?;
            for i in 0..wf.tasks.len() {
                put_task(conn, &wf, i)?;
            }
            Ok(Done::Workflow(Box::new(wf)))
        }
        Write::SaveWorkflow { workflow, changed } => {
            let wf = workflow.as_ref();
            conn.prepare_cached(
                "UPDATE workflows SET state = ?2, error = ?3, finished_ms = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    wf.info.id,
                    wf.state.as_str(),
                    wf.error,
                    wf.finished_ms
                ])
            })
            .map_err(sql("update workflow"))?;
            for &i in changed {
                put_task(conn, wf, i)?;
            }
            Ok(Done::Nothing)
        }
        Write::Barrier => Ok(Done::Nothing),
    }
}

fn put_task(conn: &Connection, wf: &Workflow, i: usize) -> Result<(), StoreError> {
    let t = wf
        .tasks
        .get(i)
        .ok_or_else(|| corrupt(format!("{} has no task {i}", wf.info.id)))?;
    let after = serde_json::to_string(&t.after).map_err(corrupt)?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO tasks (workflow, position, name, after, state, attempts,
             error, started_ms, finished_ms, done_order)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            wf.info.id,
            i as i64,
            t.name,
            after,
            t.state.as_str(),
            t.attempts,
            t.error,
            t.started_ms,
            t.finished_ms,
            t.done_order,
        ])
    })
    .map_err(sql("save task"))?;
    Ok(())
}

/// Tells every process holding `name` (tokens, credentials) in memory to
/// read them again.
fn bump_version(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO counters (name, value) VALUES (?1, 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1",
        [name],
    )
    .map(drop)
    .map_err(sql("bump version"))
}
