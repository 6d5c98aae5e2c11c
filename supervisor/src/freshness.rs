//! What another process may change under a running supervisor — `vcp
//! token revoke`, `vcp agent revoke` write to the store directly — and the
//! supervisor must see within seconds: every [`REFRESH`] it reads the
//! tokens and the revoked certificates again when their versions in the
//! store moved (one small read each otherwise), writes back when tokens
//! were last used, and closes every live connection whose certificate is
//! now revoked.

use std::sync::Arc;
use std::time::Duration;

use crate::live::Live;
use vcp_store::accounts::Accounts;
use vcp_store::credentials::Credentials;

/// How often the store is looked at.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Refreshes until aborted.
pub fn keep_fresh(
    accounts: Arc<Accounts>,
    credentials: Credentials,
    live: Arc<Live>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The revocations the live connections were last checked against.
        let mut checked = None;
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (a, c, l) = (accounts.clone(), credentials.clone(), live.clone());
            let done = tokio::task::spawn_blocking(move || {
                if let Err(e) = a.refresh() {
                    tracing::warn!(error = %e, "tokens could not be refreshed");
                }
                if let Err(e) = c.refresh() {
                    tracing::warn!(error = %e, "revocations could not be read");
                }
                // Revoked here (already read) or elsewhere (read just now).
                if checked != c.version() {
                    l.close_revoked(|role, serial| c.is_revoked(role, serial));
                }
                c.version()
            });
            match done.await {
                Ok(version) => checked = version,
                Err(e) => tracing::warn!(error = %e, "refresh failed"),
            }
        }
    })
}
