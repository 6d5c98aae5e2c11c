//! The certificates of agents and modules: each one the supervisor saw at
//! a handshake or issued (enrolment, renewal), with its serial, expiry and
//! whether it is revoked. Revoking an agent or module revokes every
//! certificate of it recorded so far; a certificate issued to it later
//! (a new enrolment) is its own. The revoked serials are held in memory,
//! read again when the credentials' version in the store moves (a
//! revocation here or by `vcp agent revoke` in another process), so a
//! handshake checks them without a database read.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::backend::{Reads, Write};
use crate::error::StoreError;
pub use crate::records::CredentialRow;
use crate::writer::Writer;
use vcp_common::identity::Role;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no certificate of {role} {id:?} is known: it never connected and was not enrolled")]
    NotFound { role: &'static str, id: String },
}

/// The revoked serials, shared by every handle.
#[derive(Default)]
pub(crate) struct Revoked {
    /// `None` until first read.
    version: Option<i64>,
    serials: HashSet<(String, String)>,
}

/// The credentials; cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) writer: Writer,
    pub(crate) reads: Arc<dyn Reads>,
    pub(crate) revoked: Arc<RwLock<Revoked>>,
}

impl Credentials {
    fn revoked(&self) -> std::sync::RwLockReadGuard<'_, Revoked> {
        self.revoked.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the certificate `serial` of a `role` is revoked (in memory).
    pub fn is_revoked(&self, role: Role, serial: &str) -> bool {
        self.revoked()
            .serials
            .contains(&(role.name().to_owned(), serial.to_owned()))
    }

    /// The version of the revoked serials held (`None` before the first
    /// read): it moves whenever they change.
    pub fn version(&self) -> Option<i64> {
        self.revoked().version
    }

    /// Reads the revoked serials again if the version moved; whether it did.
    pub fn refresh(&self) -> Result<bool, StoreError> {
        let version = self.reads.credentials_version()?;
        if self.revoked().version == Some(version) {
            return Ok(false);
        }
        let serials = self
            .reads
            .credentials()?
            .into_iter()
            .filter(|c| c.revoked_ms.is_some())
            .map(|c| (c.role, c.serial))
            .collect();
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) = Revoked {
            version: Some(version),
            serials,
        };
        Ok(true)
    }

    /// Records that `id` presented certificate `serial` (expiring at
    /// `not_after_ms`) now, or was issued it.
    pub async fn seen(
        &self,
        role: Role,
        id: &str,
        serial: &str,
        not_after_ms: i64,
    ) -> Result<(), StoreError> {
        self.writer
            .wait(Write::Credential(row(role, id, serial, not_after_ms)))
            .await
            .map(drop)
    }

    /// Records the certificate `serial` issued to `id` (`how`: `enrol` or
    /// `renew`) on behalf of `actor`, audited.
    pub async fn issued(
        &self,
        role: Role,
        id: &str,
        serial: &str,
        not_after_ms: i64,
        how: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let action = format!("{}.{how}", role.name());
        let detail = format!("certificate {serial}");
        self.writer
            .wait(Write::All(vec![
                Write::Credential(row(role, id, serial, not_after_ms)),
                crate::accounts::audit(actor, &action, id, detail),
            ]))
            .await
            .map(drop)
    }

    /// Revokes every recorded certificate of `id`, on behalf of `actor`
    /// (audited); how many were revoked now (0 if all already were).
    pub fn revoke(&self, role: Role, id: &str, actor: &str) -> Result<usize, CredentialsError> {
        self.revoke_with(role, id, None, actor)
    }

    /// Revokes the certificate `serial` of `id` (valid until
    /// `not_after_ms`) whether or not it was ever presented — one made by
    /// `vcp certs` and not yet used, say — and every other recorded one of
    /// `id`; how many were revoked now.
    pub fn revoke_certificate(
        &self,
        role: Role,
        id: &str,
        (serial, not_after_ms): (&str, i64),
        actor: &str,
    ) -> Result<usize, CredentialsError> {
        self.revoke_with(role, id, Some(row(role, id, serial, not_after_ms)), actor)
    }

    fn revoke_with(
        &self,
        role: Role,
        id: &str,
        also: Option<CredentialRow>,
        actor: &str,
    ) -> Result<usize, CredentialsError> {
        let mut mine: Vec<_> = self
            .list()?
            .into_iter()
            .filter(|c| c.role == role.name() && c.id == id)
            .collect();
        let mut writes = Vec::new();
        let mut detail = String::new();
        if let Some(c) = also {
            detail = format!("certificate {}", c.serial);
            if !mine.iter().any(|m| m.serial == c.serial) {
                mine.push(c.clone());
            }
            writes.push(Write::Credential(c));
        }
        if mine.is_empty() {
            return Err(CredentialsError::NotFound {
                role: role.name(),
                id: id.to_owned(),
            });
        }
        let action = format!("{}.revoke", role.name());
        writes.push(Write::RevokeCredentials {
            role: role.name().to_owned(),
            id: id.to_owned(),
            at_ms: crate::unix_ms(),
        });
        writes.push(crate::accounts::audit(actor, &action, id, detail));
        self.writer.wait_blocking(Write::All(writes))?;
        self.refresh()?;
        Ok(mine.iter().filter(|c| c.revoked_ms.is_none()).count())
    }

    /// Every certificate recorded, by role, id and first sight.
    pub fn list(&self) -> Result<Vec<CredentialRow>, StoreError> {
        self.reads.credentials()
    }
}

/// A certificate of `id` seen or issued now.
fn row(role: Role, id: &str, serial: &str, not_after_ms: i64) -> CredentialRow {
    let now = crate::unix_ms();
    CredentialRow {
        role: role.name().to_owned(),
        id: id.to_owned(),
        serial: serial.to_owned(),
        not_after_ms,
        first_seen_ms: now,
        last_seen_ms: now,
        revoked_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn revoking_an_agent_revokes_its_certificates_seen_so_far() {
        let dir = tempfile::tempdir().unwrap();
        let creds = Store::open(dir.path()).unwrap().0.credentials();
        creds.seen(Role::Agent, "h1", "0a", 1000).await.unwrap();
        creds.seen(Role::Agent, "h1", "0a", 1000).await.unwrap();
        creds.seen(Role::Agent, "h2", "0b", 1000).await.unwrap();
        creds.seen(Role::Module, "h1", "0c", 1000).await.unwrap();
        assert_eq!(creds.list().unwrap().len(), 3, "a certificate once");
        assert!(!creds.is_revoked(Role::Agent, "0a"));

        // Revoked through another handle, as by `vcp agent revoke`.
        let other = Store::open(dir.path()).unwrap().0.credentials();
        let c = other.clone();
        let n = tokio::task::spawn_blocking(move || c.revoke(Role::Agent, "h1", "cli (root)"));
        assert_eq!(n.await.unwrap().unwrap(), 1);
        assert!(other.is_revoked(Role::Agent, "0a"));
        assert!(!creds.is_revoked(Role::Agent, "0a"), "not read yet");
        assert!(creds.refresh().unwrap());
        assert!(!creds.refresh().unwrap(), "nothing moved");
        assert!(creds.is_revoked(Role::Agent, "0a"));
        assert!(!creds.is_revoked(Role::Agent, "0b") && !creds.is_revoked(Role::Module, "0c"));
        // A certificate issued after the revocation is its own.
        creds.seen(Role::Agent, "h1", "0d", 2000).await.unwrap();
        creds.refresh().unwrap();
        assert!(!creds.is_revoked(Role::Agent, "0d"));
        let c = creds.clone();
        let missing = tokio::task::spawn_blocking(move || c.revoke(Role::Agent, "h9", "x"));
        assert!(matches!(
            missing.await.unwrap(),
            Err(CredentialsError::NotFound { .. })
        ));
        // A certificate never presented is revoked ahead of its first use.
        let c = creds.clone();
        let ahead = tokio::task::spawn_blocking(move || {
            c.revoke_certificate(Role::Module, "m2", ("0e", 3000), "x")
        });
        assert_eq!(ahead.await.unwrap().unwrap(), 1);
        assert!(creds.is_revoked(Role::Module, "0e") && !creds.is_revoked(Role::Agent, "0e"));
        let audit = Store::open(dir.path())
            .unwrap()
            .0
            .audit()
            .after(0, 10)
            .unwrap();
        assert_eq!(
            (
                audit[0].actor.as_str(),
                audit[0].action.as_str(),
                audit[0].subject.as_str()
            ),
            ("cli (root)", "agent.revoke", "h1")
        );
    }
}
