//! QUIC client configuration shared by agents and remote modules: TLS 1.3,
//! the fleet CA as the only root, the client's own certificate for mutual
//! authentication, and keep-alives for long-lived connections.

use std::sync::Arc;

use vcp_common::identity::TlsMaterial;
use vcp_common::protocol::{IDLE_TIMEOUT, KEEP_ALIVE};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("fleet CA certificate rejected: {0}")]
    Ca(rustls::Error),
    #[error("client certificate or key rejected: {0}")]
    Identity(rustls::Error),
    #[error("QUIC needs TLS 1.3 with an initial cipher suite: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// A client configuration speaking `alpn`, accepting frames of at most
/// `max_frame` bytes from the supervisor.
pub fn client_config(
    tls: &TlsMaterial,
    alpn: &[u8],
    max_frame: usize,
) -> Result<quinn::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in &tls.ca {
        roots.add(ca.clone()).map_err(TlsError::Ca)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Identity)?
        .with_root_certificates(roots)
        .with_client_auth_cert(tls.chain.clone(), tls.key.clone_key())
        .map_err(TlsError::Identity)?;
    crypto.alpn_protocols = vec![alpn.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport(max_frame, 0)));
    Ok(config)
}

/// A client configuration for enrolment and renewal (ALPN
/// `vcp-enrol/1`): the supervisor authenticated against `ca`; the client
/// with `current` when it has a certificate (renewal), else not at all.
pub fn enrol_client_config(
    ca: &[rustls::pki_types::CertificateDer<'static>],
    current: Option<&TlsMaterial>,
    max_frame: usize,
) -> Result<quinn::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c.clone()).map_err(TlsError::Ca)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Identity)?
        .with_root_certificates(roots);
    let mut crypto = match current {
        Some(tls) => builder
            .with_client_auth_cert(tls.chain.clone(), tls.key.clone_key())
            .map_err(TlsError::Identity)?,
        None => builder.with_no_client_auth(),
    };
    crypto.alpn_protocols = vec![vcp_common::frame::ALPN_ENROL.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport(max_frame, 0)));
    Ok(config)
}

/// Transport settings shared by every vcp connection, either end: the one
/// bidirectional stream the protocols use and nothing more (no
/// unidirectional streams, no datagrams), flow-control windows of one
/// frame, keep-alives, and a dead peer noticed within seconds rather than
/// quinn's 30 s default. `incoming_bidi` is how many streams the peer may
/// open: 1 on the supervisor, 0 on agents and modules (the supervisor never
/// opens one).
pub fn transport(max_frame: usize, incoming_bidi: u32) -> quinn::TransportConfig {
    let window = quinn::VarInt::from_u64(max_frame as u64).unwrap_or(quinn::VarInt::MAX);
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(incoming_bidi.into())
        .max_concurrent_uni_streams(0u32.into())
        .datagram_receive_buffer_size(None)
        .stream_receive_window(window)
        .receive_window(window)
        .send_window(2 * max_frame as u64)
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(IDLE_TIMEOUT.try_into().ok());
    t
}
