//! Enrolment and renewal of agents' and remote modules' certificates (ALPN
//! `vcp-enrol/1`), on only when the operator gave the supervisor the CA's
//! key (`--enrol-ca-key`). One request per connection:
//!
//! - **enrolment**: no client certificate; a join token (role `enrol`)
//!   whose scope covers the role and id in the request (`rack-7-*` for
//!   agents, `module:acme-*` for modules), not expired, revoked or spent —
//!   one use is taken, durably, before the certificate is sent;
//! - **renewal**: the client's verified, unrevoked certificate; the
//!   request must be for that same role and id; no token.
//!
//! The request is a CSR whose signature is checked; the certificate is
//! the supervisor's own making — the id's name, clientAuth only, a fresh
//! serial and the configured validity — around the CSR's public key: the
//! private key never leaves the peer. Every certificate issued is
//! recorded (`vcp agent list`, `vcp module list`) and audited.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateSigningRequestDer;
use tracing::{info, warn};
use vcp_common::frame::{Enrol, Frame, Issued};
use vcp_common::identity::{identity_in, NameError, Role};
use vcp_store::accounts::Accounts;
use vcp_store::credentials::Credentials;
use vcp_transport::framed::Framed;

use crate::fleet::EndpointStats;
use crate::tls::Peer;

mod sources;

/// The largest frame an enrolment exchange reads.
pub const MAX_ENROL_FRAME: usize = 64 * 1024;

/// What enrolment needs: the CA's key and how long a certificate lives.
pub struct Enroller {
    issuer: Issuer<'static, KeyPair>,
    validity: Duration,
    accounts: Arc<Accounts>,
    credentials: Credentials,
    /// `[limits.enrol]`: clients without a certificate hold at most
    /// `max_in_flight` connections, each for at most `request_timeout`.
    in_flight: Arc<tokio::sync::Semaphore>,
    request_timeout: Duration,
    /// Attempts without a certificate, per source.
    sources: sources::Sources,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrolSetupError {
    #[error("the CA's key or certificate: {0}")]
    Ca(#[from] rcgen::Error),
    #[error("the CA certificate cannot be read: {0}")]
    Unreadable(String),
    #[error("--enrol-ca-key is not the key of the CA certificate (--ca)")]
    Mismatch,
}

impl Enroller {
    /// An enroller signing with the CA `ca_pem` and its key `key_pem`.
    pub fn new(
        ca_pem: &str,
        key_pem: &str,
        validity: Duration,
        limits: &crate::config::limits::EnrolLimits,
        (accounts, credentials): (Arc<Accounts>, Credentials),
    ) -> Result<Enroller, EnrolSetupError> {
        let key = KeyPair::from_pem(key_pem)?;
        // A certificate signed with another key would chain to nothing.
        let der = rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| EnrolSetupError::Unreadable(e.to_string()))?;
        let public = vcp_transport::cert::public_key(&der).map_err(EnrolSetupError::Unreadable)?;
        if public != key.public_key_raw() {
            return Err(EnrolSetupError::Mismatch);
        }
        Ok(Enroller {
            issuer: Issuer::from_ca_cert_pem(ca_pem, key)?,
            validity,
            accounts,
            credentials,
            in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight)),
            request_timeout: limits.request_timeout(),
            sources: sources::Sources::new(limits),
        })
    }

    /// Serves one request on `conn`; `peer` is the client's verified
    /// certificate (its role and whom it names), if it presented one.
    /// Refusals for a bound are counted in `stats`.
    pub async fn serve(
        &self,
        conn: quinn::Connection,
        peer: Option<(Role, Peer)>,
        stats: &EndpointStats,
    ) {
        let remote = conn.remote_address();
        let now = std::time::Instant::now();
        if peer.is_none() && !self.sources.admit(remote.ip(), now) {
            EndpointStats::bump(&stats.enrol_source);
            warn!(%remote, "too many enrolment attempts from this address: closed");
            conn.close(
                vcp_common::protocol::close::LIMIT.into(),
                b"too many enrolment attempts from this address; try again later",
            );
            return;
        }
        let Ok(_slot) = self.in_flight.clone().try_acquire_owned() else {
            EndpointStats::bump(&stats.enrol_busy);
            warn!(%remote, "too many enrolments at once: closed");
            conn.close(
                vcp_common::protocol::close::LIMIT.into(),
                b"too many enrolments at once; try again",
            );
            return;
        };
        let exchange = async {
            let (send, recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
            let mut framed = Framed::new(send, recv, MAX_ENROL_FRAME);
            let request = match framed.read().await {
                Ok(Some((Frame::Enrol(r), _))) => r,
                Ok(_) => return Err("expected an enrolment request".to_owned()),
                Err(e) => return Err(e.to_string()),
            };
            let answer = match self.answer(request, peer.as_ref()).await {
                Ok(issued) => Frame::Issued(issued),
                Err(reason) => {
                    warn!(%remote, reason, "enrolment refused");
                    Frame::Close { reason }
                }
            };
            framed.write(&answer).await.map_err(|e| e.to_string())?;
            framed.close_with("done", Duration::from_secs(2)).await;
            Ok(())
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(%remote, error = e, "enrolment exchange failed"),
            Err(_) => warn!(%remote, "no enrolment request in time"),
        }
    }

    /// The certificate for `request`, or why not.
    async fn answer(&self, request: Enrol, peer: Option<&(Role, Peer)>) -> Result<Issued, String> {
        let der = CertificateSigningRequestDer::from(request.csr_der);
        let mut csr = CertificateSigningRequestParams::from_der(&der)
            .map_err(|e| format!("unreadable certificate request: {e}"))?;
        let names: Vec<&str> = csr
            .params
            .subject_alt_names
            .iter()
            .filter_map(|n| match n {
                SanType::DnsName(d) => Some(d.as_str()),
                _ => None,
            })
            .collect();
        let (role, id) = requested(&names)?;
        let (how, actor) = match peer {
            Some((r, p)) if *r == role && p.id == id => ("renew", format!("{}:{id}", role.name())),
            Some((r, p)) => {
                return Err(format!(
                    "{} {} may renew only its own certificate, not {} {id}'s",
                    r.name(),
                    p.id,
                    role.name()
                ))
            }
            None => {
                let (accounts, token, whom) = (self.accounts.clone(), request.token, id.clone());
                let token =
                    tokio::task::spawn_blocking(move || accounts.enrol(&token, role, &whom))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                ("enrol", format!("token {}", token.id))
            }
        };
        let dns = format!("{id}{}", role.suffix());
        let mut params =
            rcgen::CertificateParams::new(vec![dns.clone()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, dns);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let mut serial: [u8; 16] = rand::random();
        serial[0] &= 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let now = time::OffsetDateTime::now_utc();
        // Valid from a little before now, for clocks a little behind: a
        // tenth of the life, at most 5 minutes (so that the renewal point,
        // two thirds in, stays ahead).
        params.not_before = now - (self.validity / 10).min(Duration::from_secs(300));
        params.not_after = now + self.validity;
        let not_after_ms = params.not_after.unix_timestamp().saturating_mul(1000);
        csr.params = params;
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| format!("signing: {e}"))?;
        // The serial as a handshake will read it back.
        let serial_hex = vcp_transport::cert::facts(cert.der())
            .map(|f| f.serial)
            .map_err(|e| format!("reading back the certificate: {e}"))?;
        self.credentials
            .issued(role, &id, &serial_hex, not_after_ms, how, &actor)
            .await
            .map_err(|e| e.to_string())?;
        info!(
            role = role.name(),
            id,
            serial = serial_hex,
            how,
            "certificate issued"
        );
        Ok(Issued {
            certificate_pem: cert.pem(),
            not_after_ms,
        })
    }
}

/// The role and id a request's names ask for: one `<id>.agent.vcp` or one
/// `<id>.module.vcp`, not both.
fn requested(names: &[&str]) -> Result<(Role, String), String> {
    let agent = identity_in(names.iter().copied(), Role::Agent);
    let module = identity_in(names.iter().copied(), Role::Module);
    match (agent, module) {
        (Ok(id), Err(NameError::None { .. })) => Ok((Role::Agent, id)),
        (Err(NameError::None { .. }), Ok(id)) => Ok((Role::Module, id)),
        (Ok(_), Ok(_)) => Err("a request is for an agent or a module, not both".into()),
        (Err(NameError::None { .. }), Err(NameError::None { .. })) => Err(
            "the request names no agent (<id>.agent.vcp) and no module (<id>.module.vcp)".into(),
        ),
        (Err(NameError::None { .. }), Err(e)) | (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_must_be_the_ca_certificates() {
        let (store, _) = vcp_store::Store::open(tempfile::tempdir().unwrap().path()).unwrap();
        let ca = |name: &str| {
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            (p.self_signed(&key).unwrap().pem(), key.serialize_pem())
        };
        let ((cert, key), (_, other)) = (ca("a"), ca("b"));
        let enroller = |key: &str| {
            let accounts = Arc::new(store.accounts());
            let limits = Default::default();
            let handles = (accounts, store.credentials());
            Enroller::new(&cert, key, Duration::from_secs(60), &limits, handles)
        };
        assert!(enroller(&key).is_ok());
        assert!(matches!(enroller(&other), Err(EnrolSetupError::Mismatch)));
    }

    #[test]
    fn a_request_names_one_agent_or_one_module() {
        assert_eq!(requested(&["h1.agent.vcp"]), Ok((Role::Agent, "h1".into())));
        assert_eq!(
            requested(&["m.module.vcp", "x.example"]),
            Ok((Role::Module, "m".into()))
        );
        for bad in [&["h1.agent.vcp", "m.module.vcp"][..], &["x.example"], &[]] {
            assert!(requested(bad).is_err(), "{bad:?}");
        }
        let why = requested(&["Bad.module.vcp"]).unwrap_err();
        assert!(why.contains("Bad"), "{why}");
    }
}
