//! Workflows: one row per workflow, one per task, each transition written
//! in one commit. After [`Workflows::close`] writes are refused (reads
//! still work): a write that began before `close` returned has committed,
//! and none begins after.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Done, Reads, Write};
use crate::error::StoreError;
use crate::writer::Writer;
use vcp_core::workflow::machine::Workflow;
use vcp_core::workflow::Template;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the workflow store is closed")]
    Closed,
}

/// The workflows; cheap to clone (clones share the closed flag).
#[derive(Clone)]
pub struct Workflows {
    pub(crate) writer: Writer,
    pub(crate) reads: Arc<dyn Reads>,
    pub(crate) closed: Arc<Mutex<bool>>,
}

impl Workflows {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses every later write with [`WorkflowStoreError::Closed`].
    pub fn close(&self) {
        *self.lock() = true;
    }

    /// Writes and waits for the commit, holding the flag so that `close`
    /// waits for a write in flight.
    fn write(&self, write: Write) -> Result<Done, WorkflowStoreError> {
        let closed = self.lock();
        if *closed {
            return Err(WorkflowStoreError::Closed);
        }
        Ok(self.writer.wait_blocking(write)?)
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
    ) -> Result<Workflow, WorkflowStoreError> {
        match self.write(Write::InsertWorkflow {
            template: *template,
            owner: owner.to_owned(),
            subject: subject.to_owned(),
            payload,
            now_ms,
        })? {
            Done::Workflow(wf) => Ok(*wf),
            other => Err(
                StoreError::Commit(format!("store answered {other:?} to a new workflow")).into(),
            ),
        }
    }

    /// Persists the workflow's state and the tasks at `changed`.
    pub fn save(&self, wf: &Workflow, changed: &[usize]) -> Result<(), WorkflowStoreError> {
        self.write(Write::SaveWorkflow {
            workflow: Box::new(wf.clone()),
            changed: changed.to_vec(),
        })
        .map(drop)
    }

    pub fn load(&self, id: &str) -> Result<Option<Workflow>, StoreError> {
        self.reads.workflow(id)
    }

    /// Every workflow, or `owner`'s, oldest first.
    pub fn list(&self, owner: Option<&str>) -> Result<Vec<Workflow>, StoreError> {
        self.reads.workflows(owner)
    }

    /// The ids of the workflows that are running or rolling back.
    pub fn unfinished(&self) -> Result<Vec<String>, StoreError> {
        self.reads.unfinished_workflows()
    }
}
