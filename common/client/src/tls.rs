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

/// A client configuration speaking `alpn`.
pub fn client_config(tls: &TlsMaterial, alpn: &[u8]) -> Result<quinn::ClientConfig, TlsError> {
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
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// Transport settings for long-lived vcp connections, both ends: keep the
/// connection alive and notice a dead peer within seconds rather than
/// quinn's 30 s default.
pub fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.max_idle_timeout(IDLE_TIMEOUT.try_into().ok());
    t
}
