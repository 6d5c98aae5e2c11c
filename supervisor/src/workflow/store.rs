//! Workflows in SQLite: one row per workflow, one per task, written in one
//! transaction per transition. Off the hot path: a std mutex guards the
//! connection, and is never held across an await.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::machine::Workflow;
use super::{sql, Task, Template, WorkflowError, WorkflowInfo};

const SCHEMA: &str = "
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

const WORKFLOW_COLUMNS: &str =
    "id, template, owner, subject, payload, state, error, created_ms, finished_ms";

/// The workflow database. After [`Store::close`] it refuses writes (reads
/// still work): a write that began before `close` returned has committed,
/// and none begins after.
pub struct Store {
    db: Mutex<Db>,
}

struct Db {
    conn: Connection,
    closed: bool,
}

fn corrupt(what: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Corrupt(what.to_string())
}

impl Store {
    /// Opens (creating it and its directory if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, WorkflowError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| WorkflowError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(sql("open"))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql("busy_timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("journal_mode"))?;
        // FULL: a transition survives power loss, not only a process crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql("synchronous"))?;
        conn.execute_batch(SCHEMA).map_err(sql("schema"))?;
        Ok(Store {
            db: Mutex::new(Db {
                conn,
                closed: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave a transaction half
        // applied (it rolls back on drop), so a poisoned lock is usable.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses every later write with [`WorkflowError::Stopped`].
    pub fn close(&self) {
        self.lock().closed = true;
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, WorkflowError>,
    ) -> Result<T, WorkflowError> {
        let mut db = self.lock();
        if db.closed {
            return Err(WorkflowError::Stopped);
        }
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin"))?;
        let out = f(&tx)?;
        tx.commit().map_err(sql("commit"))?;
        Ok(out)
    }

    /// Persists a new workflow of `template`, every task pending, under the
    /// next id `wf-<n>` (the counter never goes back, across restarts too).
    pub fn insert(
        &self,
        template: &Template,
        owner: &str,
        subject: &str,
        payload: serde_json::Value,
        now_ms: i64,
    ) -> Result<Workflow, WorkflowError> {
        self.write(|tx| {
            let seq: i64 = tx
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
                owner: owner.to_owned(),
                subject: subject.to_owned(),
                payload,
                created_ms: now_ms,
            };
            let wf = Workflow::new(info, template.tasks);
            tx.execute(
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
                put_task(tx, &wf, i)?;
            }
            Ok(wf)
        })
    }

    /// Persists the workflow's state and the tasks at `changed`.
    pub fn save(&self, wf: &Workflow, changed: &[usize]) -> Result<(), WorkflowError> {
        self.write(|tx| {
            tx.prepare_cached(
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
                put_task(tx, wf, i)?;
            }
            Ok(())
        })
    }

    pub fn load(&self, id: &str) -> Result<Option<Workflow>, WorkflowError> {
        let db = self.lock();
        let head = db
            .conn
            .prepare_cached(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id], Head::read).optional())
            .map_err(sql("load workflow"))?;
        head.map(|h| h.with_tasks(&db.conn)).transpose()
    }

    /// Every workflow, or `owner`'s, oldest first.
    pub fn list(&self, owner: Option<&str>) -> Result<Vec<Workflow>, WorkflowError> {
        let db = self.lock();
        let heads = db
            .conn
            .prepare_cached(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows
                 WHERE ?1 IS NULL OR owner = ?1 ORDER BY seq"
            ))
            .and_then(|mut s| {
                s.query_map([owner], Head::read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("list workflows"))?;
        heads.into_iter().map(|h| h.with_tasks(&db.conn)).collect()
    }

    /// The ids of the workflows that are running or rolling back.
    pub fn unfinished(&self) -> Result<Vec<String>, WorkflowError> {
        let db = self.lock();
        db.conn
            .prepare_cached(
                "SELECT id FROM workflows WHERE state IN ('running', 'rolling_back') ORDER BY seq",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql("unfinished workflows"))
    }
}

fn put_task(tx: &rusqlite::Transaction<'_>, wf: &Workflow, i: usize) -> Result<(), WorkflowError> {
    let t = &wf.tasks[i];
    let after = serde_json::to_string(&t.after).map_err(corrupt)?;
    tx.prepare_cached(
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

    fn with_tasks(self, conn: &Connection) -> Result<Workflow, WorkflowError> {
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
            .collect::<Result<Vec<_>, WorkflowError>>()?;
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
