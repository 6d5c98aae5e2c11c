//! The client side of vcp's QUIC protocols, shared by the agent and by
//! remote control plane modules: TLS set-up, framed streams, and the module
//! SDK. Writing a custom module means implementing
//! [`vcp_common::module::ModuleLogic`] and calling [`module::run`].

pub mod framed;
pub mod module;
pub mod predictive;
pub mod tls;
