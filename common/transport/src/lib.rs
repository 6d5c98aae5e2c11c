//! vcp's QUIC transport, one place for every peer: the client TLS
//! configuration and the transport settings (stream and window limits,
//! idle timeout, keep-alive) that the agent, remote modules and the
//! supervisor all use, and framed streams over a QUIC stream.

pub mod framed;
pub mod tls;
