//! vcp's QUIC transport, one place for every peer: the client TLS
//! configuration and the transport settings (stream and window limits,
//! idle timeout, keep-alive) that the agent, remote modules and the
//! supervisor all use, framed streams over a QUIC stream, the enrolment
//! and renewal of a peer's own certificate, and what a certificate says.

pub mod cert;
pub mod enrol;
pub mod framed;
pub mod tls;
