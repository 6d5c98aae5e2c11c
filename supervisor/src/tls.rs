//! TLS for the supervisor's QUIC endpoint: TLS 1.3 only, client
//! certificates required and verified against the fleet CA, and the agent
//! or module id taken from the verified certificate at the handshake —
//! never from what the peer says.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use vcp_common::identity::{identity_in, Role, TlsMaterial};

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

/// Builds the endpoint's server configuration for the given ALPN ids:
/// the transport allows one bidirectional stream per connection with
/// windows of `max_frame` (the drivers narrow the connection window per
/// protocol after the handshake), and at most `max_incoming` connection
/// attempts wait to be accepted. With `anonymous` (enrolment is on) a
/// client may come without a certificate — only enrolment takes one; the
/// agent and module protocols refuse it after the handshake.
pub fn server_config(
    tls: &TlsMaterial,
    alpn: &[&[u8]],
    max_frame: usize,
    max_incoming: usize,
    anonymous: bool,
) -> Result<quinn::ServerConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in &tls.ca {
        roots.add(ca.clone()).map_err(TlsError::Ca)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    let verifier = if anonymous {
        verifier.allow_unauthenticated().build()?
    } else {
        verifier.build()?
    };
    let mut crypto = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Identity)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls.chain.clone(), tls.key.clone_key())
        .map_err(TlsError::Identity)?;
    crypto.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(crypto)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config
        .transport_config(Arc::new(vcp_transport::tls::transport(max_frame, 1)))
        .max_incoming(max_incoming);
    Ok(config)
}

/// Why the API's certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error(transparent)]
    Files(#[from] vcp_common::identity::IdentityError),
    #[error("the API's certificate or key rejected: {0}")]
    Rejected(#[from] rustls::Error),
}

/// The HTTPS configuration of the API from PEM files: the certificate
/// chain clients verify (the fleet's supervisor certificate, or one from
/// any CA the clients trust) and its key; TLS 1.2 and 1.3, HTTP/1.1.
pub fn https_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, HttpsError> {
    let chain = vcp_common::identity::certs_from_pem_file(cert)?;
    let key = vcp_common::identity::key_from_pem_file(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Why a peer's certificate does not name the identity it needs.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("the peer's certificate cannot be read: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Name(#[from] vcp_common::identity::NameError),
}

/// Who a verified certificate speaks for, and which certificate it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: String,
    /// The serial number, in hex.
    pub serial: String,
    pub not_after_ms: i64,
}

/// The role and peer of the connection's verified certificate, whichever
/// role it names.
pub fn peer_in_any_role(conn: &quinn::Connection) -> Result<(Role, Peer), PeerError> {
    match peer(conn, Role::Agent) {
        Err(PeerError::Name(vcp_common::identity::NameError::None { .. })) => {
            peer(conn, Role::Module).map(|p| (Role::Module, p))
        }
        other => other.map(|p| (Role::Agent, p)),
    }
}

/// The peer of the connection's verified certificate in `role` (rustls
/// checked the chain against the fleet CA during the handshake): the id
/// is the one DNS name `<id>.agent.vcp` or `<id>.module.vcp` among its
/// subject alternative names.
pub fn peer(conn: &quinn::Connection, role: Role) -> Result<Peer, PeerError> {
    let chain = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(PeerError::NoCertificate)?;
    let leaf = chain.first().ok_or(PeerError::NoCertificate)?;
    let facts = vcp_transport::cert::facts(leaf).map_err(PeerError::Unreadable)?;
    let names = facts.dns_names.iter().map(String::as_str);
    Ok(Peer {
        id: identity_in(names, role)?,
        serial: facts.serial,
        not_after_ms: facts.not_after_ms,
    })
}
