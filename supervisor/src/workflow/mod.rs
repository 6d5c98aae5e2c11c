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
//! - Storage: the store's workflows ([`vcp_store::workflows`]); one
//!   [`Engine`] per store at a time. Ids are `wf-<n>`, from a counter kept
//!   in the store.
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

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use engine::Engine;
pub use vcp_core::workflow::{
    machine, template, Task, TaskDef, TaskState, Template, TemplateError, WorkflowInfo,
    WorkflowState, WorkflowView,
};
use vcp_store::workflows::WorkflowStoreError;
use vcp_store::StoreError;

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

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("workflow store: {0}")]
    Store(#[from] StoreError),
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

impl From<TemplateError> for WorkflowError {
    fn from(e: TemplateError) -> Self {
        WorkflowError::InvalidTemplate {
            template: e.template,
            reason: e.reason,
        }
    }
}

impl From<WorkflowStoreError> for WorkflowError {
    fn from(e: WorkflowStoreError) -> Self {
        match e {
            WorkflowStoreError::Store(e) => WorkflowError::Store(e),
            WorkflowStoreError::Closed => WorkflowError::Stopped,
        }
    }
}
