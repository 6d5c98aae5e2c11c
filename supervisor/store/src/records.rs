//! What the store keeps, as data: the types its handles take and give and
//! its backends read and write. Depends on nothing else of the crate.

use serde::{Deserialize, Serialize};
use vcp_core::plane::PlaneSpec;

pub use vcp_common::session::agent::{AgentRecord, AgentTotals};
pub use vcp_core::pricing::Charge;

/// What an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the fleet: sees and changes everything.
    Operator,
    /// Owns service sets and a virtual control plane.
    Customer,
    /// Offers custom modules.
    Vendor,
    /// A join token: enrols agents whose id is in its scope (the token's
    /// account: an id, `prefix-*` or `*`), and nothing else.
    Enrol,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Role::Operator, Role::Customer, Role::Vendor, Role::Enrol]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: operator, customer, vendor or enrol"))
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Customer => "customer",
            Role::Vendor => "vendor",
            Role::Enrol => "enrol",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of a request, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub account: String,
    pub role: Role,
}

impl Principal {
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// Whether the caller is the customer `customer` (or the operator).
    pub fn acts_for_customer(&self, customer: &str) -> bool {
        self.is_operator() || (self.role == Role::Customer && self.account == customer)
    }

    /// Whether the caller is the vendor `vendor` (or the operator).
    pub fn acts_for_vendor(&self, vendor: &str) -> bool {
        self.is_operator() || (self.role == Role::Vendor && self.account == vendor)
    }

    /// The caller's own account in the ledger.
    pub fn ledger_account(&self) -> String {
        match self.role {
            Role::Operator => vcp_core::pricing::OPERATOR_ACCOUNT.to_owned(),
            Role::Customer => vcp_core::pricing::customer_account(&self.account),
            Role::Vendor => vcp_core::pricing::vendor_account(&self.account),
            // No ledger account is named so: a join token reads nothing.
            Role::Enrol => format!("enrol:{}", self.account),
        }
    }

    /// Whether the caller may read the ledger account `account`
    /// (`customer:<id>`, `vendor:<id>` or `operator`).
    pub fn may_read_account(&self, account: &str) -> bool {
        self.is_operator() || self.ledger_account() == account
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaneState {
    Registered,
    Active,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaneRecord {
    pub spec: PlaneSpec,
    pub state: PlaneState,
    /// The workflow that provisioned the plane.
    pub workflow: String,
    pub updated_ms: i64,
}

/// One customer feedback on a module.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackRecord {
    pub module: String,
    pub control_plane: String,
    pub account: String,
    pub rating: f64,
    pub comment: String,
    pub at_ms: i64,
}

/// A named blob kept beside the charges (what the supervisor resumes
/// from); written in the same transaction as the charges it goes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub name: String,
    pub at_ms: i64,
    pub bytes: Vec<u8>,
}

/// A token as stored (its secret is not: `hash` is its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub hash: String,
    pub principal: Principal,
    pub created_ms: i64,
    /// `None`: never expires.
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    /// Enrolments left (join tokens); `None`: no bound.
    pub uses_left: Option<i64>,
}

/// One line of the audit trail: who did what to which subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Its place in the trail (0 before it is stored).
    pub seq: i64,
    pub at_ms: i64,
    /// Who: `operator`, `customer:acme`, `cli (alice)`, `supervisor`.
    pub actor: String,
    /// What: `token.create`, `token.revoke`, `token.use`, `plane.provision`…
    pub action: String,
    /// To what: a token's id, a customer, an agent.
    pub subject: String,
    pub detail: String,
}

/// A certificate an agent or a module presented or was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialRow {
    /// `agent` or `module`.
    pub role: String,
    pub id: String,
    /// The certificate's serial number, in hex.
    pub serial: String,
    pub not_after_ms: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub revoked_ms: Option<i64>,
}
