//! Workflows: persistent task state machines made from templates and driven
//! from a job queue (e.g. provisioning a virtual control plane).
//!
//! - A [`Template`] is a static list of [`TaskDef`]s, each naming the tasks
//!   it runs after; a task runs once all of its predecessors are done, and
//!   ready tasks run concurrently. Tasks are listed in a topological order
//!   (`after` names only earlier tasks), which rules out cycles.
//! - [`Engine::submit`] persists a workflow (every task pending) and wakes
//!   the runner: one tokio task that starts ready tasks (persisted as
//!   `running` before they start), runs them through the [`Actions`] and
//!   persists each outcome as it arrives.
//! - The first failed task puts the workflow in `rolling_back`: the runner
//!   waits for the tasks still in flight (recording their outcome), marks
//!   the never-started ones `skipped`, then undoes the done ones one by one
//!   in reverse order of completion. A failed undo ends in `rollback_failed`.
//! - Storage: one SQLite file (WAL, `synchronous=FULL`); one [`Engine`] per
//!   file at a time. Ids are `wf-<n>`, from a counter kept in the database.
//!   The runner does its database work on the blocking pool, never on the
//!   async runtime; [`Engine::submit`], [`Engine::get`] and
//!   [`Engine::list`] block, so async callers use `spawn_blocking`.
//! - Crashes: on [`Engine::open`] unfinished workflows resume. A task left
//!   `running` runs again (so [`Actions::run`] must be idempotent) and a task
//!   left `undoing` is undone again (so must [`Actions::undo`] be); a
//!   workflow that was rolling back goes on rolling back. A workflow whose
//!   template is no longer registered ends in `rollback_failed`.
//! - The state machine ([`machine`]) is pure and takes time as an argument;
//!   the clock, the database and the tokio tasks live in [`engine`].

pub mod engine;
pub mod machine;
pub mod store;
pub mod template;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use engine::Engine;
pub use template::{TaskDef, Template};

/// A boxed, sendable future (what [`Actions`] return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the tasks of a workflow do, for every registered template.
///
/// `run` must be idempotent: after a crash a task that was running runs
/// again. `undo` compensates a task that finished (a rollback undoes every
/// done task, in reverse order of completion); it is also re-run after a
/// crash, so it must be idempotent too. Errors are human-readable strings;
/// a panic counts as an error.
///
/// The engine makes the call itself on tokio's blocking pool, so work done
/// before the future is returned may block (SQLite, fsync); the returned
/// future runs on the async runtime and must not block.
pub trait Actions: Send + Sync + 'static {
    fn run(&self, wf: &WorkflowInfo, task: &str) -> BoxFuture<'static, Result<(), String>>;
    fn undo(&self, wf: &WorkflowInfo, task: &str) -> BoxFuture<'static, Result<(), String>>;
}

/// The immutable description of a workflow, given to [`Actions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowInfo {
    /// `wf-<n>`.
    pub id: String,
    pub template: String,
    /// Who asked for it (e.g. a customer id).
    pub owner: String,
    /// What it works on (e.g. a control plane id).
    pub subject: String,
    pub payload: serde_json::Value,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    Running,
    RollingBack,
    Succeeded,
    RolledBack,
    RollbackFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Running,
    Done,
    Failed,
    Undoing,
    Undone,
    /// Never started: the workflow began rolling back first.
    Skipped,
}

impl WorkflowState {
    pub const ALL: [WorkflowState; 5] = [
        Self::Running,
        Self::RollingBack,
        Self::Succeeded,
        Self::RolledBack,
        Self::RollbackFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::RollingBack => "rolling_back",
            Self::Succeeded => "succeeded",
            Self::RolledBack => "rolled_back",
            Self::RollbackFailed => "rollback_failed",
        }
    }

    /// Succeeded, rolled back or rollback failed: nothing more will happen.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Running | Self::RollingBack)
    }
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        Self::Pending,
        Self::Running,
        Self::Done,
        Self::Failed,
        Self::Undoing,
        Self::Undone,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Undoing => "undoing",
            Self::Undone => "undone",
            Self::Skipped => "skipped",
        }
    }
}

/// The value of `all` whose name is `s`.
fn parse_state<T: Copy>(all: &[T], name: fn(T) -> &'static str, s: &str) -> Option<T> {
    all.iter().copied().find(|v| name(*v) == s)
}

impl std::str::FromStr for WorkflowState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_state(&Self::ALL, Self::as_str, s)
            .ok_or_else(|| format!("unknown workflow state {s:?}"))
    }
}

impl std::str::FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_state(&Self::ALL, Self::as_str, s).ok_or_else(|| format!("unknown task state {s:?}"))
    }
}

/// A workflow as stored, for the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowView {
    pub id: String,
    pub template: String,
    pub owner: String,
    pub subject: String,
    pub state: WorkflowState,
    /// Why it rolled back, e.g. `task subscribe_sensors failed: ...`, and
    /// for `rollback_failed` also which undo failed.
    pub error: Option<String>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    /// In template order.
    pub tasks: Vec<Task>,
}

/// A task of a workflow: what the state machine keeps, the database
/// stores and the API shows (all but `done_order`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    pub after: Vec<String>,
    pub state: TaskState,
    /// How many times `run` was started (> 1 after a crash).
    pub attempts: u32,
    pub error: Option<String>,
    /// Of the latest run (or undo, once undoing).
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Rank of this task's completion among the workflow's (1, 2, …); a
    /// rollback undoes done tasks from the highest rank down. Internal to
    /// the engine: not in the API's JSON.
    #[serde(skip)]
    pub done_order: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("creating workflow directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("workflow sqlite ({context}): {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("corrupt workflow database: {0}")]
    Corrupt(String),
    #[error("invalid template {template:?}: {reason}")]
    InvalidTemplate { template: String, reason: String },
    #[error("unknown workflow template {0:?}")]
    UnknownTemplate(String),
    #[error("no workflow {0:?}")]
    NotFound(String),
    #[error("workflow {id} not finished after {timeout:?}")]
    Timeout { id: String, timeout: Duration },
    #[error("the workflow engine needs a tokio runtime")]
    NoRuntime,
    #[error("the workflow engine has stopped")]
    Stopped,
}

pub(crate) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> WorkflowError {
    move |source| WorkflowError::Sqlite { context, source }
}
