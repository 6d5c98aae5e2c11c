//! The vcp supervisor: ingests agent telemetry into a lock-free fleet view
//! and (in later stages) runs the control planes over it.

pub mod fleet;
pub mod ingest;
pub mod server;
pub mod store;
pub mod tls;
pub mod transport;
pub mod view;

pub use server::{Supervisor, SupervisorConfig};
