//! Who may call the provisioning API: accounts with a role, and their
//! bearer tokens. A token is shown once when created; only its SHA-256 is
//! stored, so a copy of the database does not give access.

use std::sync::Arc;

use crate::backend::{Reads, Write};
use crate::error::StoreError;
pub use crate::records::{Principal, Role};
use crate::writer::Writer;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// The tokens; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) writer: Writer,
    pub(crate) reads: Arc<dyn Reads>,
}

/// Token prefix: makes a leaked token easy to recognise.
const PREFIX: &str = "vcp_";

/// A token's SHA-256, in hex: what is stored, and what names a token
/// anywhere else (never the secret itself).
pub fn digest(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Accounts {
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
        self.writer.wait_blocking(Write::Token {
            hash: digest(&token),
            account: account.to_owned(),
            role,
            at_ms: crate::unix_ms(),
        })?;
        Ok(token)
    }

    /// The principal a token stands for; `None` for an unknown token.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, AccountsError> {
        if !token.starts_with(PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        Ok(self.reads.token(&digest(token))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn tokens_authenticate_and_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Store::open(dir.path()).unwrap().0.accounts();
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
        // Only the digest is on disk; reopened, the token still works. (The
        // writer closes on its own thread: a WAL it checkpoints and removes
        // while this reads is in the main file by then.)
        drop(accounts);
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let Ok(raw) = std::fs::read(f.unwrap().path()) else {
                continue;
            };
            assert!(!raw.windows(t.len()).any(|w| w == t.as_bytes()));
        }
        let accounts = Store::open(dir.path()).unwrap().0.accounts();
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
