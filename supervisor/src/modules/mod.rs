//! Control plane modules inside the supervisor: the operator's built-in
//! default modules, remote custom modules connected over QUIC, and the
//! per-instance bookkeeping the solicitor uses.

pub mod instance;
pub mod registry;
pub mod runner;
