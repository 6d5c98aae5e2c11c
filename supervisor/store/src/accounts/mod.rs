//! Who may call the provisioning API: accounts with a role, and their
//! bearer tokens. A token is shown once when created; only its SHA-256 is
//! stored, so a copy of the database does not give access. A token has a
//! public id (the first [`ID_LEN`] hex digits of that digest), an expiry
//! (default [`DEFAULT_TTL`]; only the operator's may never expire) and may
//! be revoked. Requests authenticate against the tokens in memory
//! ([`table`]); creating and revoking, here or in another process, reach
//! them at the next [`Accounts::refresh`].

mod table;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use vcp_common::identity::Role as PeerRole;

use crate::backend::{Reads, Write};
use crate::error::StoreError;
use crate::records::{AuditRecord, TokenRow};
pub use crate::records::{Principal, Role};
use crate::writer::Writer;
pub(crate) use table::TokenTable;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("no token {0:?}")]
    NotFound(String),
    /// A join token that may not enrol this agent, and why.
    #[error("{0}")]
    Refused(String),
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("unknown token")]
    Unknown,
    #[error("token {id} expired at {}", rfc3339(*.at_ms))]
    Expired { id: String, at_ms: i64 },
    #[error("token {id} was revoked at {}", rfc3339(*.at_ms))]
    Revoked { id: String, at_ms: i64 },
}

/// How long a new token lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Only for the operator's tokens.
    Never,
    For(Duration),
}

/// A token's life when none is asked for: 90 days.
pub const DEFAULT_TTL: Ttl = Ttl::For(Duration::from_secs(90 * 24 * 3600));

impl std::str::FromStr for Ttl {
    type Err = String;
    /// `never`, or a duration such as `3s`, `1h`, `30d`, `1h 30m`.
    fn from_str(s: &str) -> Result<Ttl, String> {
        if s == "never" {
            return Ok(Ttl::Never);
        }
        match humantime::parse_duration(s) {
            Ok(d) if d >= Duration::from_secs(1) => Ok(Ttl::For(d)),
            Ok(_) => Err(format!("{s:?}: a token lives at least a second")),
            Err(e) => Err(format!("{s:?}: {e} (say 3s, 1h, 30d or never)")),
        }
    }
}

/// A token, as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub account: String,
    pub role: Role,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    /// Enrolments left (join tokens); `None`: no bound.
    pub uses_left: Option<i64>,
}

impl TokenInfo {
    fn of(row: &TokenRow, last_used_ms: Option<i64>) -> TokenInfo {
        TokenInfo {
            id: id_of(&row.hash).to_owned(),
            account: row.principal.account.clone(),
            role: row.principal.role,
            created_ms: row.created_ms,
            expires_ms: row.expires_ms,
            revoked_ms: row.revoked_ms,
            last_used_ms,
            uses_left: row.uses_left,
        }
    }
}

/// What a join token's scope says of enrolling `id` as a `role`: a module
/// scope is `module:` and then a pattern, an agent scope the pattern alone;
/// the pattern is an id, `prefix-*` or `*`.
pub fn in_scope(scope: &str, role: PeerRole, id: &str) -> bool {
    let (scope_role, pattern) = split_scope(scope);
    scope_role == role
        && match pattern.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => id == pattern,
        }
}

/// The role a scope enrols and its pattern.
fn split_scope(scope: &str) -> (PeerRole, &str) {
    match scope.strip_prefix(MODULE_SCOPE) {
        Some(pattern) => (PeerRole::Module, pattern),
        None => (PeerRole::Agent, scope),
    }
}

/// How a join token's scope names modules rather than agents.
pub const MODULE_SCOPE: &str = "module:";

/// Checks a join token's scope: an id, an id's prefix and `*`, or `*`,
/// after `module:` for modules.
fn valid_scope(scope: &str) -> Result<(), AccountsError> {
    let (_, pattern) = split_scope(scope);
    let prefix = pattern.strip_suffix('*').unwrap_or(pattern);
    let ok = prefix.is_empty() && pattern == "*"
        || prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !prefix.is_empty()
            && prefix.len() <= vcp_common::identity::MAX_ID_LEN;
    if ok {
        Ok(())
    } else {
        Err(AccountsError::Invalid(format!(
            "scope {scope:?}: an agent id, a prefix ending in * (rack-7-*), or *; \
             for modules the same after module: (module:acme-*)"
        )))
    }
}

/// A token just made: its secret is shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// The tokens; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) writer: Writer,
    pub(crate) reads: Arc<dyn Reads>,
    pub(crate) table: Arc<TokenTable>,
}

/// Token prefix: makes a leaked token easy to recognise.
const PREFIX: &str = "vcp_";

/// Hex digits of a token's digest that make its public id.
pub const ID_LEN: usize = 12;

/// A token's SHA-256, in hex: what is stored, and what names a token
/// anywhere else (never the secret itself).
pub fn digest(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The public id of the token whose digest is `hash`.
fn id_of(hash: &str) -> &str {
    hash.get(..ID_LEN).unwrap_or(hash)
}

/// Unix ms as RFC 3339 (UTC, seconds).
pub fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

impl Accounts {
    /// Creates a token for `account` with `role`, living [`DEFAULT_TTL`];
    /// returns the secret, which is not kept.
    pub fn create_token(&self, account: &str, role: Role) -> Result<String, AccountsError> {
        Ok(self.issue(account, role, DEFAULT_TTL, "supervisor")?.token)
    }

    /// Creates a token for `account` with `role` living `ttl`, on behalf
    /// of `actor` (audited).
    pub fn issue(
        &self,
        account: &str,
        role: Role,
        ttl: Ttl,
        actor: &str,
    ) -> Result<Issued, AccountsError> {
        self.create(account, role, ttl, None, actor)
    }

    /// Creates a join token enrolling agents in `scope` (an id,
    /// `prefix-*` or `*`; modules: the same after `module:`) at most
    /// `uses` times (no bound when `None`).
    pub fn issue_join(
        &self,
        scope: &str,
        ttl: Ttl,
        uses: Option<u32>,
        actor: &str,
    ) -> Result<Issued, AccountsError> {
        self.create(scope, Role::Enrol, ttl, uses, actor)
    }

    fn create(
        &self,
        account: &str,
        role: Role,
        ttl: Ttl,
        uses: Option<u32>,
        actor: &str,
    ) -> Result<Issued, AccountsError> {
        if role == Role::Enrol {
            valid_scope(account)?;
        } else {
            vcp_common::identity::validate_id(account)
                .map_err(|e| AccountsError::Invalid(e.to_string()))?;
        }
        if ttl == Ttl::Never && role != Role::Operator {
            return Err(AccountsError::Invalid(format!(
                "only the operator's tokens may never expire; give a {role} token a --ttl"
            )));
        }
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| AccountsError::Invalid("no system randomness".into()))?;
        let token: String = std::iter::once(PREFIX.to_owned())
            .chain(secret.iter().map(|b| format!("{b:02x}")))
            .collect();
        let now = crate::unix_ms();
        let expires_ms = match ttl {
            Ttl::Never => None,
            Ttl::For(d) => Some(now.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)),
        };
        let row = TokenRow {
            hash: digest(&token),
            principal: Principal {
                account: account.to_owned(),
                role,
            },
            created_ms: now,
            expires_ms,
            revoked_ms: None,
            last_used_ms: None,
            uses_left: uses.map(i64::from),
        };
        let info = TokenInfo::of(&row, None);
        let expiry = expires_ms.map_or("never expires".to_owned(), |e| {
            format!("expires {}", rfc3339(e))
        });
        self.writer.wait_blocking(Write::All(vec![
            Write::Token(row),
            audit(
                actor,
                "token.create",
                &info.id,
                format!("{role} {account}, {expiry}"),
            ),
        ]))?;
        self.table.refresh(&*self.reads)?;
        Ok(Issued { token, info })
    }

    /// Revokes the token `id` on behalf of `actor` (audited); revoking a
    /// revoked token changes nothing.
    pub fn revoke(&self, id: &str, actor: &str) -> Result<TokenInfo, AccountsError> {
        self.table.refresh(&*self.reads)?;
        let found = self
            .table
            .find(id)
            .ok_or_else(|| AccountsError::NotFound(id.to_owned()))?;
        if found.revoked_ms.is_some() {
            return Ok(found);
        }
        let detail = format!("{} {}", found.role, found.account);
        self.writer.wait_blocking(Write::All(vec![
            Write::RevokeToken {
                id: id.to_owned(),
                at_ms: crate::unix_ms(),
            },
            audit(actor, "token.revoke", id, detail),
        ]))?;
        self.table.refresh(&*self.reads)?;
        self.table
            .find(id)
            .ok_or_else(|| AccountsError::NotFound(id.to_owned()))
    }

    /// Takes one use of the join token `token` for the agent or module
    /// `id`, or says why it may not: not a join token, expired, revoked,
    /// spent, or `id` outside its scope. Durable before it returns.
    pub fn enrol(&self, token: &str, role: PeerRole, id: &str) -> Result<TokenInfo, AccountsError> {
        let refused = |why: String| AccountsError::Refused(why);
        let principal = self
            .authenticate(token)
            .map_err(|r| refused(r.to_string()))?;
        if principal.role != Role::Enrol {
            return Err(refused(
                "not a join token (vcp token create --role enrol)".into(),
            ));
        }
        if !in_scope(&principal.account, role, id) {
            return Err(refused(format!(
                "{} id {id:?} is outside the join token's scope {:?}",
                role.name(),
                principal.account
            )));
        }
        let hash = digest(token);
        let detail = format!("{} {id}", role.name());
        let id = id_of(&hash).to_owned();
        match self.writer.wait_blocking(Write::All(vec![
            Write::SpendToken { hash },
            audit(&principal.ledger_account(), "token.enrol", &id, detail),
        ])) {
            Err(StoreError::Refused(why)) => return Err(refused(why)),
            other => other?,
        };
        self.table.refresh(&*self.reads)?;
        self.table
            .find(&id)
            .ok_or_else(|| AccountsError::NotFound(id.clone()))
    }

    /// Every token, oldest first (after a refresh).
    pub fn list(&self) -> Result<Vec<TokenInfo>, AccountsError> {
        self.table.refresh(&*self.reads)?;
        Ok(self.table.list())
    }

    /// The principal a token stands for, or why it is refused. In memory:
    /// no database read.
    pub fn authenticate(&self, token: &str) -> Result<Principal, Refused> {
        if !token.starts_with(PREFIX) || token.len() > 128 {
            return Err(Refused::Unknown);
        }
        self.table.check(&digest(token), crate::unix_ms())
    }

    /// Reads the tokens again if another process changed them, and writes
    /// back when tokens were last used (a token's first use this run is
    /// audited). Blocking: call it every second or so, off the runtime.
    pub fn refresh(&self) -> Result<(), StoreError> {
        self.table.refresh(&*self.reads)?;
        let uses = self.table.take_uses();
        if uses.is_empty() {
            return Ok(());
        }
        let mut writes: Vec<Write> = uses
            .iter()
            .filter(|u| u.first)
            .map(|u| {
                let who = u.principal.ledger_account();
                audit(
                    &who,
                    "token.use",
                    &u.id,
                    "first use since the supervisor started".into(),
                )
            })
            .collect();
        writes.push(Write::TokensUsed(
            uses.into_iter().map(|u| (u.hash, u.at_ms)).collect(),
        ));
        self.writer.wait_blocking(Write::All(writes)).map(drop)
    }
}

/// A line of the audit trail, now.
pub(crate) fn audit(actor: &str, action: &str, subject: &str, detail: String) -> Write {
    Write::Audit(AuditRecord {
        seq: 0,
        at_ms: crate::unix_ms(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail,
    })
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
            accounts.authenticate(&t),
            Ok(Principal {
                account: "acme".into(),
                role: Role::Customer
            })
        );
        assert_eq!(accounts.authenticate("vcp_00"), Err(Refused::Unknown));
        assert_eq!(accounts.authenticate("garbage"), Err(Refused::Unknown));
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
        assert!(accounts.authenticate(&t).is_ok());
        assert!(accounts.create_token("bad id!", Role::Vendor).is_err());
    }

    #[test]
    fn tokens_expire_and_are_revoked_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Store::open(dir.path()).unwrap().0.accounts();
        let brief = accounts
            .issue("acme", Role::Customer, "1s".parse().unwrap(), "operator")
            .unwrap();
        let info = &brief.info;
        assert_eq!(info.expires_ms, Some(info.created_ms + 1000));
        assert!(accounts.authenticate(&brief.token).is_ok());
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            accounts.authenticate(&brief.token),
            Err(Refused::Expired {
                id: info.id.clone(),
                at_ms: info.created_ms + 1000
            })
        );
        let op = accounts
            .issue("operator", Role::Operator, Ttl::Never, "cli (root)")
            .unwrap();
        assert_eq!(op.info.expires_ms, None);
        let never = accounts.issue("acme", Role::Customer, Ttl::Never, "operator");
        assert!(matches!(never, Err(AccountsError::Invalid(_))), "{never:?}");

        // Revoked through another handle on the store, as `vcp token
        // revoke` is from another process: this one sees it at refresh.
        let other = Store::open(dir.path()).unwrap().0.accounts();
        let revoked = other.revoke(&op.info.id, "cli (root)").unwrap();
        let at_ms = revoked.revoked_ms.unwrap();
        assert!(accounts.authenticate(&op.token).is_ok(), "not yet read");
        accounts.refresh().unwrap();
        assert_eq!(
            accounts.authenticate(&op.token),
            Err(Refused::Revoked {
                id: op.info.id.clone(),
                at_ms
            })
        );
        assert_eq!(
            other.revoke(&op.info.id, "x").unwrap().revoked_ms,
            Some(at_ms)
        );
        assert!(matches!(
            other.revoke("000000000000", "x"),
            Err(AccountsError::NotFound(_))
        ));

        let listed = other.list().unwrap();
        let ids: Vec<_> = listed.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, [info.id.as_str(), op.info.id.as_str()]);
        // The operator's token was used once (written back by refresh).
        accounts.refresh().unwrap();
        drop(accounts);
        let audit = Store::open(dir.path()).unwrap().0.audit();
        let mut lines: Vec<_> = audit
            .after(0, 100)
            .unwrap()
            .into_iter()
            .map(|a| (a.actor, a.action, a.subject))
            .collect();
        let line = |who: &str, what: &str, id: &str| (who.into(), what.into(), id.to_owned());
        // The uses were written back by the refresh after the revocation,
        // in no particular order.
        lines[3..].sort();
        let mut uses = [
            line("operator", "token.use", &op.info.id),
            line("customer:acme", "token.use", &info.id),
        ];
        uses.sort();
        assert_eq!(&lines[3..], &uses);
        assert_eq!(
            lines[..3],
            [
                line("operator", "token.create", &info.id),
                line("cli (root)", "token.create", &op.info.id),
                line("cli (root)", "token.revoke", &op.info.id),
            ]
        );
    }

    #[test]
    fn join_tokens_enrol_in_their_scope_until_spent() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Store::open(dir.path()).unwrap().0.accounts();
        const A: PeerRole = PeerRole::Agent;
        let ttl = "1h".parse().unwrap();
        let join = accounts
            .issue_join("rack-7-*", ttl, Some(2), "operator")
            .unwrap();
        assert_eq!(join.info.uses_left, Some(2));
        let refused = |r: Result<TokenInfo, AccountsError>| match r {
            Err(AccountsError::Refused(why)) => why,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            accounts
                .enrol(&join.token, A, "rack-7-a")
                .unwrap()
                .uses_left,
            Some(1)
        );
        let why = refused(accounts.enrol(&join.token, A, "rack-8-a"));
        assert!(why.contains("outside the join token's scope"), "{why}");
        assert_eq!(
            accounts
                .enrol(&join.token, A, "rack-7-b")
                .unwrap()
                .uses_left,
            Some(0)
        );
        assert!(refused(accounts.enrol(&join.token, A, "rack-7-c")).contains("spent"));
        let op = accounts.create_token("operator", Role::Operator).unwrap();
        assert!(refused(accounts.enrol(&op, A, "rack-7-d")).contains("not a join token"));
        assert!(refused(accounts.enrol("vcp_nope", A, "rack-7-d")).contains("unknown token"));
        let brief = accounts
            .issue_join("h1", "1s".parse().unwrap(), None, "x")
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(refused(accounts.enrol(&brief.token, A, "h1")).contains("expired"));
        assert!(accounts.issue_join("*", ttl, None, "x").is_ok());
        let vendor = accounts
            .issue_join("module:acme-*", ttl, None, "x")
            .unwrap();
        let why = refused(accounts.enrol(&vendor.token, A, "acme-1"));
        assert!(why.contains("agent id \"acme-1\" is outside"), "{why}");
        assert!(accounts
            .enrol(&vendor.token, PeerRole::Module, "acme-1")
            .is_ok());
        let any = accounts.issue_join("*", ttl, None, "x").unwrap();
        let why = refused(accounts.enrol(&any.token, PeerRole::Module, "rack-7-e"));
        assert!(why.contains("module id"), "{why}");
        for bad in ["", "Rack-*", "a*b", "**", "module:", "module:A*", "agent:x"] {
            let r = accounts.issue_join(bad, ttl, None, "x");
            assert!(matches!(r, Err(AccountsError::Invalid(_))), "{bad:?}");
        }
        assert!(in_scope("*", A, "any") && in_scope("h1", A, "h1") && !in_scope("h1", A, "h10"));
        assert!(
            in_scope("module:*", PeerRole::Module, "m") && !in_scope("*", PeerRole::Module, "m")
        );
    }

    #[test]
    fn ttls_parse() {
        assert_eq!("never".parse(), Ok(Ttl::Never));
        assert_eq!("3s".parse(), Ok(Ttl::For(Duration::from_secs(3))));
        assert_eq!(
            "30d".parse(),
            Ok(Ttl::For(Duration::from_secs(30 * 86_400)))
        );
        assert_eq!("1h".parse(), Ok(Ttl::For(Duration::from_secs(3600))));
        for bad in ["", "0s", "10ms", "soon", "-1h"] {
            assert!(bad.parse::<Ttl>().is_err(), "{bad:?}");
        }
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
