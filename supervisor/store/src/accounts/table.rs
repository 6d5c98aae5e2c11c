//! Every token, in memory: a request authenticates with one hash lookup
//! under a read lock, never on the database. The table is read again
//! whenever the tokens' version in the store moves (a token created or
//! revoked here or by `vcp token` in another process; see
//! [`super::Accounts::refresh`]), so a revocation reaches every request
//! after the next refresh. When each token was last used is kept here and
//! written back in batches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use super::{id_of, Refused, TokenInfo};
use crate::backend::Reads;
use crate::error::StoreError;
use crate::records::{Principal, TokenRow};

struct Entry {
    row: TokenRow,
    id: String,
    /// Unix ms of the last use (0: never).
    last_used: AtomicI64,
    /// What of `last_used` is in the store; 0 if not yet this run.
    flushed: AtomicI64,
}

#[derive(Default)]
struct Loaded {
    /// `None` until first loaded.
    version: Option<i64>,
    by_hash: HashMap<String, Arc<Entry>>,
}

/// A use to record: the token, when, and whether it is the token's first
/// this run (audited).
pub(crate) struct Use {
    pub hash: String,
    pub id: String,
    pub at_ms: i64,
    pub first: bool,
    pub principal: Principal,
}

#[derive(Default)]
pub(crate) struct TokenTable {
    loaded: RwLock<Loaded>,
}

impl TokenTable {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the tokens again if their version moved since the last load.
    pub(crate) fn refresh(&self, reads: &dyn Reads) -> Result<(), StoreError> {
        let version = reads.tokens_version()?;
        if self.read().version == Some(version) {
            return Ok(());
        }
        // The version is read first: a change after it is seen next time.
        let rows = reads.tokens()?;
        let old = self.read();
        let by_hash = rows
            .into_iter()
            .map(|row| {
                let prior = old.by_hash.get(&row.hash);
                let used =
                    |f: fn(&Entry) -> &AtomicI64| prior.map_or(0, |e| f(e).load(Ordering::Relaxed));
                let stored = row.last_used_ms.unwrap_or(0);
                let entry = Entry {
                    id: id_of(&row.hash).to_owned(),
                    last_used: AtomicI64::new(used(|e| &e.last_used).max(stored)),
                    flushed: AtomicI64::new(used(|e| &e.flushed)),
                    row,
                };
                (entry.row.hash.clone(), Arc::new(entry))
            })
            .collect();
        drop(old);
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Loaded {
            version: Some(version),
            by_hash,
        };
        Ok(())
    }

    /// The principal of the token whose digest is `hash`, at `now_ms`,
    /// noting the use.
    pub(crate) fn check(&self, hash: &str, now_ms: i64) -> Result<Principal, Refused> {
        let loaded = self.read();
        let entry = loaded.by_hash.get(hash).ok_or(Refused::Unknown)?;
        let id = || entry.id.clone();
        if let Some(at_ms) = entry.row.revoked_ms {
            return Err(Refused::Revoked { id: id(), at_ms });
        }
        if let Some(at_ms) = entry.row.expires_ms.filter(|&e| e <= now_ms) {
            return Err(Refused::Expired { id: id(), at_ms });
        }
        entry.last_used.fetch_max(now_ms, Ordering::Relaxed);
        Ok(entry.row.principal.clone())
    }

    /// The uses not yet written back, marked as written.
    pub(crate) fn take_uses(&self) -> Vec<Use> {
        self.read()
            .by_hash
            .values()
            .filter_map(|e| {
                let at_ms = e.last_used.load(Ordering::Relaxed);
                let flushed = e.flushed.swap(at_ms, Ordering::Relaxed);
                (at_ms > flushed).then(|| Use {
                    hash: e.row.hash.clone(),
                    id: e.id.clone(),
                    at_ms,
                    first: flushed == 0,
                    principal: e.row.principal.clone(),
                })
            })
            .collect()
    }

    /// Every token, oldest first.
    pub(crate) fn list(&self) -> Vec<TokenInfo> {
        let mut all: Vec<TokenInfo> = self.read().by_hash.values().map(|e| info(e)).collect();
        all.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        all
    }

    pub(crate) fn find(&self, id: &str) -> Option<TokenInfo> {
        self.read()
            .by_hash
            .values()
            .find(|e| e.id == id)
            .map(|e| info(e))
    }
}

fn info(e: &Entry) -> TokenInfo {
    let last_used = e.last_used.load(Ordering::Relaxed);
    TokenInfo::of(&e.row, (last_used > 0).then_some(last_used))
}
