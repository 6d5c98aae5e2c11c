//! vcp's shared vocabulary and wire format. No sockets, no clocks: every
//! function here is pure so that it can be tested and fuzzed on bytes.

pub mod batch;
pub mod codec;
pub mod frame;
pub mod goal;
pub mod identity;
pub mod log;
pub mod metric;
pub mod module;
pub mod protocol;
pub mod resource;
pub mod session;
pub mod target;
pub mod varint;
pub mod view;
pub mod wire;
