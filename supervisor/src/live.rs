//! One live session per identity, counted from the TLS handshake: when a
//! connection's certificate names an agent or module that already has a
//! connection, the new one replaces the old, which is closed with
//! `REPLACED`. The handle of a connection is let go as soon as its session
//! ends, so the connection's memory goes with it. A connection whose
//! certificate is revoked is closed with `REVOKED` ([`Live::close_revoked`]).
//!
//! Touched when connections open and close, never on a round's path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vcp_common::identity::Role;
use vcp_common::protocol::close;

type Key = (Role, String);

/// A live connection and the serial of the certificate it presented.
type Held = (quinn::Connection, String);

/// The live connection of every identity.
#[derive(Default)]
pub struct Live {
    by_id: Mutex<HashMap<Key, Held>>,
}

/// A connection's hold on its identity; dropping it lets go.
pub struct Claim {
    live: Arc<Live>,
    key: Key,
    stable_id: usize,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Held>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `conn` (which presented certificate `serial`) the live
    /// connection of `id` in `role`, closing the one it replaces.
    pub fn claim(
        self: &Arc<Self>,
        role: Role,
        id: &str,
        serial: &str,
        conn: &quinn::Connection,
    ) -> Claim {
        let key = (role, id.to_owned());
        let old = self
            .lock()
            .insert(key.clone(), (conn.clone(), serial.to_owned()));
        if let Some((old, _)) = old.filter(|(o, _)| o.stable_id() != conn.stable_id()) {
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

    /// Closes every live connection whose certificate `revoked` says is
    /// revoked, with `REVOKED`; how many.
    pub fn close_revoked(&self, revoked: impl Fn(Role, &str) -> bool) -> usize {
        let closing: Vec<(Key, quinn::Connection)> = self
            .lock()
            .iter()
            .filter(|((role, _), (_, serial))| revoked(*role, serial))
            .map(|(key, (conn, _))| (key.clone(), conn.clone()))
            .collect();
        for ((role, id), conn) in &closing {
            tracing::warn!(
                role = role.name(),
                id,
                "certificate revoked: closing the live connection"
            );
            conn.close(close::REVOKED.into(), b"certificate revoked");
        }
        closing.len()
    }

    /// The serial of the certificate the live connection of `id` in
    /// `role` presented, if it has one.
    pub fn serial(&self, role: Role, id: &str) -> Option<String> {
        let key = (role, id.to_owned());
        self.lock().get(&key).map(|(_, serial)| serial.clone())
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
            .is_some_and(|(c, _)| c.stable_id() == self.stable_id)
        {
            map.remove(&self.key);
        }
    }
}
