//! The audit trail: who created, revoked or first used a token, who
//! provisioned or removed a control plane, who enrolled or revoked an
//! agent. Append-only: the database refuses to change or delete a line.

use std::sync::Arc;

use crate::backend::{Done, Reads};
use crate::error::StoreError;
pub use crate::records::AuditRecord;
use crate::writer::Writer;

/// Lines one read returns at most.
pub const MAX_PAGE: usize = 1000;

/// The trail; cheap to clone.
#[derive(Clone)]
pub struct Audit {
    pub(crate) writer: Writer,
    pub(crate) reads: Arc<dyn Reads>,
}

impl Audit {
    /// Appends a line and waits for its commit; returns its place.
    pub async fn record(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: String,
    ) -> Result<i64, StoreError> {
        let write = crate::accounts::audit(actor, action, subject, detail);
        match self.writer.wait(write).await? {
            Done::Number(seq) => Ok(seq),
            other => Err(StoreError::Commit(format!("audit line answered {other:?}"))),
        }
    }

    /// At most `limit` (≤ [`MAX_PAGE`]) lines after `after`, oldest first.
    pub fn after(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.reads.audit(after, limit.min(MAX_PAGE))
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[tokio::test]
    async fn lines_append_in_order_and_cannot_change() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Store::open(dir.path()).unwrap().0.audit();
        let a = audit.record("operator", "plane.provision", "acme", "wf-1".into());
        let first = a.await.unwrap();
        let b = audit.record("customer:acme", "plane.remove", "acme", String::new());
        assert!(b.await.unwrap() > first);
        let all = audit.after(0, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].actor.as_str(), all[0].action.as_str()),
            ("operator", "plane.provision")
        );
        assert_eq!(audit.after(first, 10).unwrap().len(), 1);
        assert_eq!(audit.after(0, 1).unwrap().len(), 1);
        let conn = rusqlite::Connection::open(dir.path().join(crate::STORE_FILE)).unwrap();
        for change in ["UPDATE audit SET actor = 'x'", "DELETE FROM audit"] {
            let e = conn.execute(change, []).unwrap_err().to_string();
            assert!(e.contains("append-only"), "{change}: {e}");
        }
    }
}
