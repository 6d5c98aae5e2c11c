//! The vcp supervisor: ingests agent telemetry into a lock-free fleet view,
//! runs the control planes over it, bills them, and serves the provisioning
//! API, metrics and dashboard.

pub mod api;
pub mod biller;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod dashboard;
pub mod dispatch;
pub mod enrol;
pub mod fleet;
pub mod freshness;
pub mod http;
pub mod ingest;
pub mod judge;
pub mod live;
pub mod metrics;
pub mod modules;
pub mod overview;
pub mod provision;
pub mod provisioner;
pub mod queue;
pub mod remote;
pub mod server;
pub mod solicit;
pub mod stream;
pub mod tls;
pub mod workflow;

pub use server::{ApiOptions, EnrolmentOptions, Supervisor, SupervisorConfig};

/// Wall-clock time in milliseconds since the Unix epoch (0 if the clock is
/// before it).
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
