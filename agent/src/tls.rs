//! The agent's QUIC client configuration: TLS 1.3, the fleet CA as the only
//! root, and the agent's own certificate for client authentication.

use std::sync::Arc;

use vcp_common::frame::ALPN_AGENT;
use vcp_common::identity::TlsMaterial;
use vcp_common::protocol::{IDLE_TIMEOUT, KEEP_ALIVE};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("fleet CA certificate rejected: {0}")]
    Ca(rustls::Error),
    #[error("agent certificate or key rejected: {0}")]
    Identity(rustls::Error),
    #[error("QUIC needs TLS 1.3 with an initial cipher suite: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

pub fn client_config(tls: &TlsMaterial) -> Result<quinn::ClientConfig, TlsError> {
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
    crypto.alpn_protocols = vec![ALPN_AGENT.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    transport.max_idle_timeout(IDLE_TIMEOUT.try_into().ok());
    config.transport_config(Arc::new(transport));
    Ok(config)
}
