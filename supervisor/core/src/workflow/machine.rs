//! The workflow state machine: pure transitions that take time as an
//! argument and say what to persist and what to launch. No I/O here.

use std::sync::Arc;

use super::{Task, TaskDef, TaskState, WorkflowInfo, WorkflowState, WorkflowView};

/// A workflow in memory, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub info: Arc<WorkflowInfo>,
    pub state: WorkflowState,
    pub error: Option<String>,
    pub finished_ms: Option<i64>,
    /// In template order.
    pub tasks: Vec<Task>,
}

/// Which action of a task to launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Run,
    Undo,
}

/// What a transition asks of the engine: persist the workflow row and the
/// `changed` tasks (in one transaction), then launch `launch`.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    pub changed: Vec<usize>,
    pub launch: Vec<(usize, Op)>,
}

impl Workflow {
    /// A new workflow: running, every task pending.
    pub fn new(info: WorkflowInfo, defs: &[TaskDef]) -> Workflow {
        let tasks = defs
            .iter()
            .map(|d| Task {
                name: d.name.to_owned(),
                after: d.after.iter().map(|s| (*s).to_owned()).collect(),
                state: TaskState::Pending,
                attempts: 0,
                error: None,
                started_ms: None,
                finished_ms: None,
                done_order: None,
            })
            .collect();
        Workflow {
            info: Arc::new(info),
            state: WorkflowState::Running,
            error: None,
            finished_ms: None,
            tasks,
        }
    }

    fn is_done(&self, name: &str) -> bool {
        self.tasks
            .iter()
            .any(|t| t.name == name && t.state == TaskState::Done)
    }

    /// A run or an undo is in flight.
    pub fn in_flight(&self) -> bool {
        self.tasks
            .iter()
            .any(|t| matches!(t.state, TaskState::Running | TaskState::Undoing))
    }

    fn finish(&mut self, state: WorkflowState, now_ms: i64) {
        self.state = state;
        self.finished_ms = Some(now_ms);
    }

    fn launch(&mut self, i: usize, op: Op, now_ms: i64, fx: &mut Effects) {
        let task = &mut self.tasks[i];
        match op {
            Op::Run => {
                task.state = TaskState::Running;
                task.attempts += 1;
            }
            Op::Undo => task.state = TaskState::Undoing,
        }
        task.started_ms = Some(now_ms);
        task.finished_ms = None;
        fx.changed.push(i);
        fx.launch.push((i, op));
    }

    /// Takes the next steps: starts the ready tasks of a running workflow
    /// (or ends it succeeded); once nothing of a rolling-back workflow is in
    /// flight, skips its never-started tasks and undoes the latest done task
    /// (or ends it rolled back). Idempotent: calling it again with nothing
    /// landed in between changes nothing.
    pub fn advance(&mut self, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        match self.state {
            WorkflowState::Running => {
                if self.tasks.iter().all(|t| t.state == TaskState::Done) {
                    self.finish(WorkflowState::Succeeded, now_ms);
                    return fx;
                }
                let ready: Vec<usize> = (0..self.tasks.len())
                    .filter(|&i| {
                        let t = &self.tasks[i];
                        t.state == TaskState::Pending && t.after.iter().all(|p| self.is_done(p))
                    })
                    .collect();
                for i in ready {
                    self.launch(i, Op::Run, now_ms, &mut fx);
                }
            }
            WorkflowState::RollingBack if !self.in_flight() => {
                for (i, t) in self.tasks.iter_mut().enumerate() {
                    if t.state == TaskState::Pending {
                        t.state = TaskState::Skipped;
                        fx.changed.push(i);
                    }
                }
                let latest = (0..self.tasks.len())
                    .filter(|&i| self.tasks[i].state == TaskState::Done)
                    .max_by_key(|&i| self.tasks[i].done_order);
                match latest {
                    Some(i) => self.launch(i, Op::Undo, now_ms, &mut fx),
                    None => self.finish(WorkflowState::RolledBack, now_ms),
                }
            }
            _ => {}
        }
        fx
    }

    /// After a restart: runs again the tasks left running and undoes again
    /// the tasks left undoing (the machine state is otherwise unchanged).
    pub fn resume(&mut self, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        if self.state.is_final() {
            return fx;
        }
        for i in 0..self.tasks.len() {
            match self.tasks[i].state {
                TaskState::Running => self.launch(i, Op::Run, now_ms, &mut fx),
                TaskState::Undoing => self.launch(i, Op::Undo, now_ms, &mut fx),
                _ => {}
            }
        }
        fx
    }

    /// Records the outcome of a launched run or undo of task `i`. Returns
    /// false (and changes nothing) if that task was not in flight for `op`.
    pub fn land(&mut self, i: usize, op: Op, result: Result<(), String>, now_ms: i64) -> bool {
        let next_rank = self.tasks.iter().filter_map(|t| t.done_order).max();
        let Some(task) = self.tasks.get_mut(i) else {
            return false;
        };
        let expected = match op {
            Op::Run => TaskState::Running,
            Op::Undo => TaskState::Undoing,
        };
        if task.state != expected {
            return false;
        }
        task.finished_ms = Some(now_ms);
        match (op, result) {
            (Op::Run, Ok(())) => {
                task.state = TaskState::Done;
                task.error = None;
                task.done_order = Some(next_rank.unwrap_or(0) + 1);
            }
            (Op::Run, Err(e)) => {
                task.state = TaskState::Failed;
                let error = format!("task {} failed: {e}", task.name);
                task.error = Some(e);
                if self.state == WorkflowState::Running {
                    self.state = WorkflowState::RollingBack;
                    self.error = Some(error);
                }
            }
            (Op::Undo, Ok(())) => {
                task.state = TaskState::Undone;
                task.error = None;
            }
            (Op::Undo, Err(e)) => {
                task.state = TaskState::Failed;
                let error = format!("undo of task {} failed: {e}", task.name);
                task.error = Some(format!("undo failed: {e}"));
                self.error = Some(match self.error.take() {
                    Some(cause) => format!("{cause}; {error}"),
                    None => error,
                });
                self.finish(WorkflowState::RollbackFailed, now_ms);
            }
        }
        true
    }

    /// Ends an unfinished workflow that cannot go on (e.g. its template is
    /// gone) in `rollback_failed`: what was done stays done, what was in
    /// flight is failed (it will not run again), the rest is skipped, so no
    /// task of a final workflow shows as running.
    pub fn abandon(&mut self, reason: String, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        for (i, t) in self.tasks.iter_mut().enumerate() {
            match t.state {
                TaskState::Running | TaskState::Undoing => {
                    t.state = TaskState::Failed;
                    t.error = Some("interrupted, not resumed: the workflow was abandoned".into());
                    t.finished_ms = Some(now_ms);
                }
                TaskState::Pending => t.state = TaskState::Skipped,
                _ => continue,
            }
            fx.changed.push(i);
        }
        self.error = Some(match self.error.take() {
            Some(cause) => format!("{cause}; {reason}"),
            None => reason,
        });
        self.finish(WorkflowState::RollbackFailed, now_ms);
        fx
    }

    pub fn view(&self) -> WorkflowView {
        let info = &self.info;
        WorkflowView {
            id: info.id.clone(),
            template: info.template.clone(),
            owner: info.owner.clone(),
            subject: info.subject.clone(),
            state: self.state,
            error: self.error.clone(),
            created_ms: info.created_ms,
            finished_ms: self.finished_ms,
            tasks: self.tasks.clone(),
        }
    }
}
