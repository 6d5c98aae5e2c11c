//! QUIC transport settings shared by every supervisor connection.

use vcp_common::protocol::{IDLE_TIMEOUT, KEEP_ALIVE};

/// Agents are long-lived connections: keep them alive and notice a dead
/// peer within seconds rather than quinn's 30 s default.
pub fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.max_idle_timeout(IDLE_TIMEOUT.try_into().ok());
    t
}
