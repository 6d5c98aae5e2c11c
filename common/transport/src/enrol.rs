//! An agent's or a remote module's own credential: enrolment with a join
//! token, and renewal.
//!
//! **Enrolment.** With no credential in its state directory, a peer that
//! has a join token (`vcp token create --role enrol`) generates its key
//! here — the key never leaves the host — and sends a certificate signing
//! request for `<id>.agent.vcp` (or `<id>.module.vcp`) with the token over
//! ALPN [`vcp_common::frame::ALPN_ENROL`], on a TLS connection that
//! authenticates the supervisor (against the fleet CA) but not yet the
//! peer. The signed certificate and the key are stored together in
//! [`credential_file`] (mode 0600, written whole or not at all); from then
//! on the peer speaks mutual TLS.
//!
//! **Renewal.** When two thirds of the certificate's life have passed the
//! peer makes a new key and asks again on the same ALPN, this time
//! authenticated by its current certificate (no token), on a connection
//! of its own: the data session goes on meanwhile, and the next
//! connection uses the new certificate ([`keep_renewed`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use vcp_common::frame::{Enrol, Frame, PROTOCOL_VERSION};
use vcp_common::identity::{certs_from_pem_file, key_from_pem_file, Role, TlsMaterial};

use crate::framed::{Framed, StreamError};

/// The file in the state directory that holds the credential (certificate,
/// then key) of `role`: `agent.pem` or `module.pem`.
pub fn credential_file(role: Role) -> String {
    format!("{}.pem", role.name())
}
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
    Tls(#[from] crate::tls::TlsError),
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
    #[error("no credential: pass --cert and --key (from `vcp certs`), or --enrol-token to enrol")]
    NoCredential,
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

/// Where and as whom an agent or a module enrols.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub role: Role,
    pub id: String,
    pub supervisor: SocketAddr,
    pub server_name: String,
    /// The fleet CA, which the supervisor's certificate must chain to.
    pub ca: Vec<CertificateDer<'static>>,
    pub state_dir: PathBuf,
}

impl Enrolment {
    /// Where the credential is kept.
    pub fn file(&self) -> PathBuf {
        self.state_dir.join(credential_file(self.role))
    }

    /// The credential to use, by precedence: the operator's files `files`
    /// (certificate, key) when given — the operator renews them, so
    /// `renew` is false; else the one an earlier enrolment stored; else a
    /// new one enrolled with the join token `token` (retried with backoff
    /// while the supervisor cannot be reached). The latter two are to be
    /// renewed ([`keep_renewed`]).
    pub async fn credential(
        &self,
        files: Option<(&Path, &Path)>,
        token: Option<&str>,
    ) -> Result<(TlsMaterial, bool), EnrolError> {
        if let Some((cert, key)) = files {
            let chain = certs_from_pem_file(cert)?;
            let key = key_from_pem_file(key)?;
            let ca = self.ca.clone();
            return Ok((TlsMaterial { ca, chain, key }, false));
        }
        if let Some(stored) = self.stored()? {
            tracing::info!(file = %self.file().display(), "using the enrolled certificate");
            return Ok((stored, true));
        }
        let token = token.ok_or(EnrolError::NoCredential)?;
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.enrol(token).await {
                Ok(tls) => {
                    tracing::info!(
                        role = self.role.name(),
                        id = self.id,
                        "enrolled: certificate stored"
                    );
                    return Ok((tls, true));
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "enrolment failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
                Err(e) => return Err(e),
            }
        }
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
        let name = format!("{}{}", self.id, self.role.suffix());
        let params = rcgen::CertificateParams::new(vec![name])?;
        let csr = params.serialize_request(&key)?;
        let client = crate::tls::enrol_client_config(&self.ca, current, MAX_ENROL_FRAME)?;
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
    let facts = crate::cert::facts(material.chain.first()?).ok()?;
    let (from, to) = (facts.not_before_ms, facts.not_after_ms);
    let at = from + (to - from) * 2 / 3;
    Some(std::time::UNIX_EPOCH + Duration::from_millis(at.max(0) as u64))
}

/// Renews the credential whenever it is due, for as long as the peer
/// runs, handing each new one to `renewed` (which the next connection is
/// to use; it returns false once nobody needs it any more). A failed
/// renewal is tried again with backoff. Returns only when `renewed` says
/// so or the certificate's validity cannot be read.
pub async fn keep_renewed(
    enrolment: Enrolment,
    mut current: TlsMaterial,
    mut renewed: impl FnMut(&TlsMaterial) -> bool,
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
                tracing::info!(next = ?renew_at(&new), "certificate renewed");
                if !renewed(&new) {
                    return;
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
