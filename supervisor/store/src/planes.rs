//! The durable record of provisioned control planes and of customer
//! feedback. A plane is `registered` while its
//! workflow runs and `active` once in force; a restarted supervisor brings
//! the active ones back into force.

use std::sync::Arc;

use crate::backend::{Done, Reads, Write};
use crate::error::StoreError;
pub use crate::records::{FeedbackRecord, PlaneRecord, PlaneState};
use crate::unix_ms;
use crate::writer::Writer;
use vcp_core::plane::PlaneSpec;

/// The provisioned planes and the ratings; cheap to clone.
#[derive(Clone)]
pub struct PlaneStore {
    pub(crate) writer: Writer,
    pub(crate) reads: Arc<dyn Reads>,
}

impl PlaneStore {
    /// Records the plane of `spec.customer` as registered by `workflow`.
    /// Fails if another workflow holds the customer's plane.
    pub fn register(&self, spec: &PlaneSpec, workflow: &str) -> Result<(), String> {
        let done = self
            .writer
            .wait_blocking(Write::RegisterPlane {
                spec: spec.clone(),
                workflow: workflow.to_owned(),
                at_ms: unix_ms(),
            })
            .map_err(|e| e.to_string())?;
        match done {
            Done::Holder(holder) if holder == workflow => Ok(()),
            Done::Holder(holder) => Err(format!(
                "customer {:?} already has a control plane (provisioned by {holder})",
                spec.customer
            )),
            other => Err(format!("store answered {other:?} to a registration")),
        }
    }

    pub fn set_state(&self, customer: &str, state: PlaneState) -> Result<(), StoreError> {
        self.writer
            .wait_blocking(Write::PlaneState {
                customer: customer.to_owned(),
                state,
                at_ms: unix_ms(),
            })
            .map(drop)
    }

    pub fn remove(&self, customer: &str) -> Result<(), StoreError> {
        self.writer
            .wait_blocking(Write::RemovePlane {
                customer: customer.to_owned(),
            })
            .map(drop)
    }

    pub fn get(&self, customer: &str) -> Result<Option<PlaneRecord>, StoreError> {
        self.reads.plane(customer)
    }

    /// The planes in force, to bring back at start.
    pub fn active(&self) -> Result<Vec<PlaneSpec>, StoreError> {
        self.reads.active_planes()
    }

    /// Stores a rating; returns its number (ratings are numbered in the
    /// order they were given).
    pub fn add_feedback(&self, f: &FeedbackRecord) -> Result<i64, StoreError> {
        match self.writer.wait_blocking(Write::Feedback(f.clone()))? {
            Done::Number(n) => Ok(n),
            other => Err(StoreError::Commit(format!(
                "store answered {other:?} to a rating"
            ))),
        }
    }

    /// Every rating numbered after `after`, with its number, oldest first.
    pub fn feedback_after(&self, after: i64) -> Result<Vec<(i64, FeedbackRecord)>, StoreError> {
        self.reads.feedback_after(after)
    }

    /// How many ratings `account` gave `module` in `plane` since `since_ms`.
    pub fn feedback_since(
        &self,
        account: &str,
        module: &str,
        plane: &str,
        since_ms: i64,
    ) -> Result<usize, StoreError> {
        self.reads.feedback_count(account, module, plane, since_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
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
        let s = Store::open(dir.path()).unwrap().0.planes();
        s.register(&spec, "wf-1").unwrap();
        s.register(&spec, "wf-1").unwrap(); // idempotent for its workflow
        assert!(s.register(&spec, "wf-2").unwrap_err().contains("wf-1"));
        assert!(s.active().unwrap().is_empty());
        s.set_state("globex", PlaneState::Active).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap().0.planes();
        assert_eq!(s.active().unwrap(), vec![spec.clone()]);
        assert_eq!(s.get("globex").unwrap().unwrap().workflow, "wf-1");
        s.remove("globex").unwrap();
        assert!(s.get("globex").unwrap().is_none());
    }
}
