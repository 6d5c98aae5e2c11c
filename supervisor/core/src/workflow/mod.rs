//! Workflows as data: templates of tasks with dependencies, the state of
//! a workflow and its tasks, and the pure state machine that moves them
//! ([`machine`], time passed in). The engine that persists them and runs
//! the tasks is the supervisor's.

pub mod machine;
pub mod template;

use serde::{Deserialize, Serialize};

pub use template::{TaskDef, Template, TemplateError};

/// The immutable description of a workflow, given to the tasks.
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
