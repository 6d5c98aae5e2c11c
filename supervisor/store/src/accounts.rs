//! Who may call the provisioning API: accounts with a role, and their
//! bearer tokens. A token is shown once when created; only its SHA-256 is
//! stored, so a copy of the database does not give access.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The database of the supervisor's own records besides telemetry and the
/// ledger: tokens, provisioned control planes, feedback and workflows.
pub const CONTROL_DB: &str = "control.sqlite";

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
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Role::Operator, Role::Customer, Role::Vendor]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: operator, customer or vendor"))
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Customer => "customer",
            Role::Vendor => "vendor",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        [Role::Operator, Role::Customer, Role::Vendor]
            .into_iter()
            .find(|r| r.as_str() == s)
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
        }
    }

    /// Whether the caller may read the ledger account `account`
    /// (`customer:<id>`, `vendor:<id>` or `operator`).
    pub fn may_read_account(&self, account: &str) -> bool {
        self.is_operator() || self.ledger_account() == account
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("{what}: {source}")]
    Sql {
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> AccountsError {
    move |source| AccountsError::Sql { what, source }
}

/// Opens (creating) the control database in `dir`: WAL, durable commits.
pub fn open_db(dir: &Path) -> rusqlite::Result<Connection> {
    std::fs::create_dir_all(dir)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let conn = Connection::open(dir.join(CONTROL_DB))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// The tokens table.
pub struct Accounts {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    role TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);";

/// Token prefix: makes a leaked token easy to recognise.
const PREFIX: &str = "vcp_";

fn digest(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Accounts {
    pub fn open(dir: &Path) -> Result<Accounts, AccountsError> {
        let conn = open_db(dir).map_err(sql("open control database"))?;
        conn.execute_batch(SCHEMA).map_err(sql("tokens schema"))?;
        Ok(Accounts {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a token for `account` with `role`; returns the secret, which
    /// is not kept.
    pub fn create_token(&self, account: &str, role: Role) -> Result<String, AccountsError> {
        vcp_common::identity::validate_id(account)
            .map_err(|e| AccountsError::Invalid(e.to_string()))?;
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| AccountsError::Invalid("no system randomness".into()))?;
        let token: String = std::iter::once(PREFIX.to_owned())
            .chain(secret.iter().map(|b| format!("{b:02x}")))
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.conn()
            .execute(
                "INSERT INTO tokens (hash, account, role, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![digest(&token), account, role.as_str(), now],
            )
            .map_err(sql("insert token"))?;
        Ok(token)
    }

    /// The principal a token stands for; `None` for an unknown token.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, AccountsError> {
        if !token.starts_with(PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT account, role FROM tokens WHERE hash = ?1",
                params![digest(token)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql("look up token"))?;
        Ok(row
            .and_then(|(account, role)| Role::parse(&role).map(|role| Principal { account, role })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_and_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(dir.path()).unwrap();
        let t = accounts.create_token("acme", Role::Customer).unwrap();
        assert!(t.starts_with("vcp_") && t.len() == 4 + 64);
        assert_eq!(
            accounts.authenticate(&t).unwrap(),
            Some(Principal {
                account: "acme".into(),
                role: Role::Customer
            })
        );
        assert_eq!(accounts.authenticate("vcp_00").unwrap(), None);
        assert_eq!(accounts.authenticate("garbage").unwrap(), None);
        let other = accounts.create_token("acme", Role::Customer).unwrap();
        assert_ne!(t, other);
        // Only the digest is on disk; reopened, the token still works.
        drop(accounts);
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let raw = std::fs::read(f.unwrap().path()).unwrap();
            assert!(!raw.windows(t.len()).any(|w| w == t.as_bytes()));
        }
        let accounts = Accounts::open(dir.path()).unwrap();
        assert!(accounts.authenticate(&t).unwrap().is_some());
        assert!(accounts.create_token("bad id!", Role::Vendor).is_err());
    }

    #[test]
    fn principals_act_only_for_themselves() {
        let acme = Principal {
            account: "acme".into(),
            role: Role::Customer,
        };
        let op = Principal {
            account: "operator".into(),
            role: Role::Operator,
        };
        assert!(acme.acts_for_customer("acme") && !acme.acts_for_customer("globex"));
        assert!(!acme.acts_for_vendor("acme"));
        assert!(op.acts_for_customer("globex") && op.acts_for_vendor("v"));
        assert!(acme.may_read_account("customer:acme"));
        assert!(!acme.may_read_account("acme") && !acme.may_read_account("vendor:acme"));
        assert!(op.may_read_account("vendor:v"));
    }
}
