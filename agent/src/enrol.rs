//! The agent's own credential: enrolment with a join token, and renewal.
//!
//! **Enrolment.** With no credential in its state directory, an agent that
//! has a join token (`vcp token create --role enrol`) generates its key
//! here — the key never leaves the host — and sends a certificate signing
//! request for `<id>.agent.vcp` with the token over ALPN
//! [`vcp_common::frame::ALPN_ENROL`], on a TLS connection that authenticates the supervisor
//! (against the fleet CA) but not yet the agent. The signed certificate
//! and the key are stored together in [`CREDENTIAL_FILE`] (mode 0600,
//! written whole or not at all); from then on the agent speaks mutual TLS.
//!
//! **Renewal.** When two thirds of the certificate's life have passed the
//! agent makes a new key and asks again on the same ALPN, this time
//! authenticated by its current certificate (no token), on a connection
//! of its own: the data session goes on meanwhile, and the next
//! connection uses the new certificate ([`keep_renewed`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::sync::watch;
use vcp_common::frame::{Enrol, Frame, PROTOCOL_VERSION};
use vcp_common::identity::{agent_dns_name, certs_from_pem_file, key_from_pem_file, TlsMaterial};
use vcp_transport::framed::{Framed, StreamError};

/// The credential (certificate, then key) in the state directory.
pub const CREDENTIAL_FILE: &str = "agent.pem";
/// The largest frame an enrolment exchange reads.
pub const MAX_ENROL_FRAME: usize = 64 * 1024;
/// How long the supervisor has to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("making the key or the request: {0}")]
    Key(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Identity(#[from] vcp_common::identity::IdentityError),
    #[error(transparent)]
    Tls(#[from] vcp_transport::tls::TlsError),
    #[error("connecting: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0} (a supervisor started without --enrol-ca-key does not enrol)")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Stream(#[from] StreamError),
    #[error("the supervisor refused: {0}")]
    Refused(String),
    #[error("no answer from the supervisor within {0:?}")]
    Timeout(Duration),
    #[error("unexpected answer from the supervisor")]
    Unexpected,
}

impl EnrolError {
    /// Whether trying again later may succeed (the network, not a refusal).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EnrolError::Connect(_)
                | EnrolError::Connection(_)
                | EnrolError::Stream(_)
                | EnrolError::Timeout(_)
        )
    }
}

/// Where and as whom an agent enrols.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub agent_id: String,
    pub supervisor: SocketAddr,
    pub server_name: String,
    /// The fleet CA, which the supervisor's certificate must chain to.
    pub ca: Vec<CertificateDer<'static>>,
    pub state_dir: PathBuf,
}

impl Enrolment {
    fn file(&self) -> PathBuf {
        self.state_dir.join(CREDENTIAL_FILE)
    }

    /// The credential stored by an earlier enrolment, if any.
    pub fn stored(&self) -> Result<Option<TlsMaterial>, EnrolError> {
        let path = self.file();
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(TlsMaterial {
            ca: self.ca.clone(),
            chain: certs_from_pem_file(&path)?,
            key: key_from_pem_file(&path)?,
        }))
    }

    /// Enrols with the join token `token`; stores and returns the new
    /// credential.
    pub async fn enrol(&self, token: &str) -> Result<TlsMaterial, EnrolError> {
        self.exchange(token, None).await
    }

    /// Renews `current` (mutual TLS, no token); stores and returns the new
    /// credential.
    pub async fn renew(&self, current: &TlsMaterial) -> Result<TlsMaterial, EnrolError> {
        self.exchange("", Some(current)).await
    }

    async fn exchange(
        &self,
        token: &str,
        current: Option<&TlsMaterial>,
    ) -> Result<TlsMaterial, EnrolError> {
        let key = rcgen::KeyPair::generate()?;
        let params = rcgen::CertificateParams::new(vec![agent_dns_name(&self.agent_id)])?;
        let csr = params.serialize_request(&key)?;
        let client = vcp_transport::tls::enrol_client_config(&self.ca, current, MAX_ENROL_FRAME)?;
        let bind: SocketAddr = if self.supervisor.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid literal")
        } else {
            "[::]:0".parse().expect("valid literal")
        };
        let endpoint = quinn::Endpoint::client(bind).map_err(|source| EnrolError::Io {
            path: PathBuf::from("UDP socket"),
            source,
        })?;
        let conn = endpoint
            .connect_with(client, self.supervisor, &self.server_name)?
            .await?;
        let answer = async {
            let (send, recv) = conn.open_bi().await?;
            let mut framed = Framed::new(send, recv, MAX_ENROL_FRAME);
            let request = Enrol {
                protocol: PROTOCOL_VERSION,
                token: token.to_owned(),
                csr_der: csr.der().to_vec(),
            };
            framed.write(&Frame::Enrol(request)).await?;
            Ok::<_, EnrolError>(framed.read().await?.map(|(f, _)| f))
        };
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, answer)
            .await
            .map_err(|_| EnrolError::Timeout(ANSWER_TIMEOUT));
        let answer = match answer {
            Ok(Err(EnrolError::Stream(e))) if e.is_connection_lost() => match conn.close_reason() {
                Some(reason) => Err(reason.into()),
                None => Err(e.into()),
            },
            Ok(a) => a,
            Err(e) => Err(e),
        };
        conn.close(0u32.into(), b"done");
        endpoint.wait_idle().await;
        let issued = match answer? {
            Some(Frame::Issued(i)) => i,
            Some(Frame::Close { reason }) => return Err(EnrolError::Refused(reason)),
            _ => return Err(EnrolError::Unexpected),
        };
        write_credential(&self.file(), &issued.certificate_pem, &key.serialize_pem())?;
        self.stored()?.ok_or(EnrolError::Unexpected)
    }
}

/// Writes `path` whole or not at all: a temporary file (0600, created
/// new) renamed over it.
fn write_credential(path: &Path, cert_pem: &str, key_pem: &str) -> Result<(), EnrolError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| EnrolError::Io { path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("pem.new");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(format!("{cert_pem}\n{key_pem}").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// When `material`'s certificate is due for renewal: two thirds into its
/// life (`None` if it cannot be read).
pub fn renew_at(material: &TlsMaterial) -> Option<std::time::SystemTime> {
    let leaf = material.chain.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let v = cert.validity();
    let (from, to) = (v.not_before.timestamp(), v.not_after.timestamp());
    let at = from + (to - from) * 2 / 3;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(at.max(0) as u64))
}

/// Renews the credential whenever it is due, for as long as the agent
/// runs, publishing a client configuration (frames of at most
/// `max_frame`) for each new one on `tx`: the uplink's next connection
/// uses the latest. A failed renewal is tried again with backoff.
pub async fn keep_renewed(
    enrolment: Enrolment,
    mut current: TlsMaterial,
    max_frame: usize,
    tx: watch::Sender<quinn::ClientConfig>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(due) = renew_at(&current) else {
            tracing::warn!("the certificate's validity cannot be read: it is not renewed");
            return;
        };
        let wait = due
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
        match enrolment.renew(&current).await {
            Ok(new) => {
                let client = vcp_transport::tls::client_config(
                    &new,
                    vcp_common::frame::ALPN_AGENT,
                    max_frame,
                );
                match client {
                    Ok(client) => {
                        tracing::info!(next = ?renew_at(&new), "certificate renewed");
                        if tx.send(client).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the renewed certificate is unusable"),
                }
                current = new;
                backoff = Duration::from_secs(1);
                // Never back to back, whatever the certificate says.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "certificate renewal failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(300));
            }
        }
    }
}
