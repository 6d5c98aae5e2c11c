//! One live session per identity, counted from the TLS handshake: when a
//! connection's certificate names an agent or module that already has a
//! connection, the new one replaces the old, which is closed with
//! `REPLACED`. The handle of a connection is let go as soon as its session
//! ends, so the connection's memory goes with it.
//!
//! Touched when connections open and close, never on a round's path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vcp_common::identity::Role;
use vcp_common::protocol::close;

type Key = (Role, String);

/// The live connection of every identity.
#[derive(Default)]
pub struct Live {
    by_id: Mutex<HashMap<Key, quinn::Connection>>,
}

/// A connection's hold on its identity; dropping it lets go.
pub struct Claim {
    live: Arc<Live>,
    key: Key,
    stable_id: usize,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, quinn::Connection>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `conn` the live connection of `id` in `role`, closing the one
    /// it replaces.
    pub fn claim(self: &Arc<Self>, role: Role, id: &str, conn: &quinn::Connection) -> Claim {
        let key = (role, id.to_owned());
        let old = self.lock().insert(key.clone(), conn.clone());
        if let Some(old) = old.filter(|o| o.stable_id() != conn.stable_id()) {
            tracing::info!(
                role = role.name(),
                id,
                "a newer connection replaces the live one"
            );
            old.close(
                close::REPLACED.into(),
                format!("replaced by a newer connection of {} {id}", role.name()).as_bytes(),
            );
        }
        Claim {
            live: self.clone(),
            key,
            stable_id: conn.stable_id(),
        }
    }

    /// Live connections now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every handle, so that a stopped endpoint can release its socket.
    pub fn forget_all(&self) {
        self.lock().clear();
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut map = self.live.lock();
        if map
            .get(&self.key)
            .is_some_and(|c| c.stable_id() == self.stable_id)
        {
            map.remove(&self.key);
        }
    }
}
