//! The seam between the store's API and the database behind it.
//!
//! Every durable change is a [`Write`]: data saying what to record, not how.
//! The one writer thread ([`crate::writer`]) hands groups of writes to a
//! [`Backend`], which commits each group as one transaction; every read
//! goes through [`Reads`]. SQLite ([`crate::sqlite`]) implements both today;
//! another database is another implementation of these two traits, with the
//! handles (`agents`, `ledger`, `accounts`, `planes`, `workflows`) unchanged.

use crate::error::StoreError;
use crate::records::{
    AgentRecord, AuditRecord, Charge, CredentialRow, FeedbackRecord, PlaneRecord, PlaneState,
    StateRow, TokenRow,
};
use vcp_core::plane::PlaneSpec;
use vcp_core::workflow::machine::Workflow;
use vcp_core::workflow::Template;

/// One durable change.
#[derive(Debug)]
pub(crate) enum Write {
    /// An agent's cursor and totals (upsert).
    Agent {
        id: String,
        record: AgentRecord,
    },
    /// Ledger charges; a key already there is a no-op. Done: rows new.
    Charges(Vec<Charge>),
    /// A named checkpoint; an older one never replaces a newer one.
    State(StateRow),
    /// Several writes that hold together or not at all (charges and the
    /// state that goes with them).
    All(Vec<Write>),
    /// A new token, by its digest; bumps the tokens' version.
    Token(TokenRow),
    /// Revokes the unrevoked token whose id is `id`; bumps the tokens'
    /// version.
    RevokeToken {
        id: String,
        at_ms: i64,
    },
    /// Takes one use of a join token; refused when none is left.
    SpendToken {
        hash: String,
    },
    /// When tokens were last used (a later time than stored wins).
    TokensUsed(Vec<(String, i64)>),
    /// A line of the audit trail.
    Audit(AuditRecord),
    /// A certificate seen or issued (a later `last_seen_ms` wins).
    Credential(CredentialRow),
    /// Revokes every certificate of `id` in `role` not yet revoked; bumps
    /// the credentials' version.
    RevokeCredentials {
        role: String,
        id: String,
        at_ms: i64,
    },
    /// Inserts the customer's plane if absent. Done: the holding workflow.
    RegisterPlane {
        spec: PlaneSpec,
        workflow: String,
        at_ms: i64,
    },
    PlaneState {
        customer: String,
        state: PlaneState,
        at_ms: i64,
    },
    RemovePlane {
        customer: String,
    },
    /// A customer's rating. Done: its number.
    Feedback(FeedbackRecord),
    /// A new workflow under the next id. Done: the workflow.
    InsertWorkflow {
        template: Template,
        owner: String,
        subject: String,
        payload: serde_json::Value,
        now_ms: i64,
    },
    /// A workflow's state and its tasks at `changed`.
    SaveWorkflow {
        workflow: Box<Workflow>,
        changed: Vec<usize>,
    },
    /// Nothing: resolves once everything queued before it has committed.
    /// Done: the ledger's entry count.
    Barrier,
}

impl Write {
    /// How much the write weighs in a group (charges count one each).
    pub(crate) fn weight(&self) -> usize {
        match self {
            Write::Charges(c) => c.len(),
            Write::All(w) => w.iter().map(Write::weight).sum(),
            _ => 1,
        }
    }
}

/// What a committed write gives back.
#[derive(Debug)]
pub(crate) enum Done {
    Nothing,
    /// Rows new in the ledger.
    Rows(usize),
    /// The workflow holding a customer's plane.
    Holder(String),
    /// A rating's number, an audit line's place.
    Number(i64),
    Workflow(Box<Workflow>),
    /// Entries in the ledger.
    Entries(u64),
}

/// A database that commits groups of writes.
pub(crate) trait Backend: Send + 'static {
    /// Entries in the ledger when the store opened.
    fn entries(&self) -> u64;

    /// Commits `group` as one transaction, each write on its own so that a
    /// refused write does not refuse the others: one outcome per write,
    /// in order. `Err` when the transaction as a whole did not commit.
    fn commit(&mut self, group: &[Write]) -> Result<Vec<Result<Done, StoreError>>, StoreError>;
}

/// Everything the store reads back, over connections of its own (reads
/// never wait for the writer's group).
pub(crate) trait Reads: Send + Sync + 'static {
    /// The tokens' version: changes whenever a token is created or
    /// revoked, by this process or another.
    fn tokens_version(&self) -> Result<i64, StoreError>;
    fn tokens(&self) -> Result<Vec<TokenRow>, StoreError>;
    /// The credentials' version: changes whenever one is revoked.
    fn credentials_version(&self) -> Result<i64, StoreError>;
    /// Every certificate recorded, by role, id and first sight.
    fn credentials(&self) -> Result<Vec<CredentialRow>, StoreError>;
    /// At most `limit` lines of the audit trail after `after`, oldest first.
    fn audit(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
    fn plane(&self, customer: &str) -> Result<Option<PlaneRecord>, StoreError>;
    fn active_planes(&self) -> Result<Vec<PlaneSpec>, StoreError>;
    fn feedback_after(&self, after: i64) -> Result<Vec<(i64, FeedbackRecord)>, StoreError>;
    fn feedback_count(
        &self,
        account: &str,
        module: &str,
        plane: &str,
        since_ms: i64,
    ) -> Result<usize, StoreError>;
    fn workflow(&self, id: &str) -> Result<Option<Workflow>, StoreError>;
    fn workflows(&self, owner: Option<&str>) -> Result<Vec<Workflow>, StoreError>;
    fn unfinished_workflows(&self) -> Result<Vec<String>, StoreError>;
}
