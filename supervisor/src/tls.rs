//! TLS for the supervisor's QUIC endpoint: TLS 1.3 only, client
//! certificates required and verified against the fleet CA, and the agent id
//! taken from the verified certificate — never from what the peer says.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use vcp_common::identity::{agent_dns_name, validate_id, TlsMaterial};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("fleet CA certificate rejected: {0}")]
    Ca(rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("supervisor certificate or key rejected: {0}")]
    Identity(rustls::Error),
    #[error("QUIC needs TLS 1.3 with an initial cipher suite: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the endpoint's server configuration for the given ALPN ids.
pub fn server_config(tls: &TlsMaterial, alpn: &[&[u8]]) -> Result<quinn::ServerConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in &tls.ca {
        roots.add(ca.clone()).map_err(TlsError::Ca)?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
    let mut crypto = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Identity)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls.chain.clone(), tls.key.clone_key())
        .map_err(TlsError::Identity)?;
    crypto.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(crypto)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(vcp_client::tls::transport_config()));
    Ok(config)
}

/// Why a peer's certificate does not prove the identity it claims.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("id: {0}")]
    BadId(#[from] vcp_common::identity::IdentityError),
    #[error("the peer's certificate is not valid for {name} ({detail})")]
    NotFor { name: String, detail: String },
}

/// The verified certificate chain of a connection (already checked against
/// the CA by rustls during the handshake).
pub fn peer_chain(conn: &quinn::Connection) -> Option<Vec<CertificateDer<'static>>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()
        .map(|b| *b)
}

/// Checks that the verified leaf certificate of `conn` names `dns_name`.
pub fn check_name(conn: &quinn::Connection, dns_name: &str) -> Result<(), PeerError> {
    let chain = peer_chain(conn);
    let leaf = chain
        .as_deref()
        .and_then(|c| c.first())
        .ok_or(PeerError::NoCertificate)?;
    let not_for = |detail: String| PeerError::NotFor {
        name: dns_name.to_owned(),
        detail,
    };
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| not_for(e.to_string()))?;
    let name = ServerName::try_from(dns_name.to_owned()).map_err(|e| not_for(e.to_string()))?;
    cert.verify_is_valid_for_subject_name(&name)
        .map_err(|e| not_for(e.to_string()))
}

/// Checks that the connection's certificate names agent `agent_id`.
pub fn check_agent(conn: &quinn::Connection, agent_id: &str) -> Result<(), PeerError> {
    validate_id(agent_id)?;
    check_name(conn, &agent_dns_name(agent_id))
}

/// Checks that the connection's certificate is the credential of module `id`.
pub fn check_module(conn: &quinn::Connection, id: &str) -> Result<(), PeerError> {
    validate_id(id)?;
    check_name(conn, &vcp_common::identity::module_dns_name(id))
}
