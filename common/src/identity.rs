//! Names of fleet identities, and the TLS material that proves them.
//!
//! An agent proves its id with a client certificate issued by the fleet CA
//! whose DNS name is `<agent id>.agent.vcp`; the supervisor presents a
//! certificate for [`SUPERVISOR_NAME`]. Keeping the scheme here means the
//! certificate tool, the agent and the supervisor cannot disagree on it.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The DNS name agents expect in the supervisor's certificate.
pub const SUPERVISOR_NAME: &str = "supervisor.vcp";

/// Longest accepted agent id.
pub const MAX_ID_LEN: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid id {id:?}: use 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'")]
    InvalidId { id: String },
    #[error("reading {path}: {detail}")]
    Pem { path: String, detail: String },
    #[error("{path} holds no {what}")]
    Empty { path: String, what: &'static str },
}

/// Checks that `id` can be a DNS label (and so a certificate name).
pub fn validate_id(id: &str) -> Result<(), IdentityError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IdentityError::InvalidId { id: id.to_owned() })
    }
}

/// The certificate name that carries an agent id.
pub fn agent_dns_name(agent_id: &str) -> String {
    format!("{agent_id}.agent.vcp")
}

/// The certificate name that carries a module id: a remote module's
/// credential.
pub fn module_dns_name(module_id: &str) -> String {
    format!("{module_id}.module.vcp")
}

/// A certificate chain, its key, and the CA that peers must chain to.
#[derive(Debug)]
pub struct TlsMaterial {
    pub ca: Vec<CertificateDer<'static>>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        TlsMaterial {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsMaterial {
    /// Loads PEM files: the CA certificate(s), this party's certificate
    /// chain and its private key.
    pub fn from_pem_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, IdentityError> {
        Ok(TlsMaterial {
            ca: certs(ca)?,
            chain: certs(cert)?,
            key: PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?,
        })
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(IdentityError::Empty {
            path: path.display().to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn pem_error(path: &Path, e: rustls_pki_types::pem::Error) -> IdentityError {
    IdentityError::Pem {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_dns_labels() {
        for good in ["a", "agent-1", "host-42", "x9"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in ["", "-a", "a-", "Agent", "a.b", "a_b", long.as_str()] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
        assert_eq!(agent_dns_name("h1"), "h1.agent.vcp");
    }

    #[test]
    fn missing_pem_file_is_a_clear_error() {
        let p = Path::new("/nonexistent/ca.pem");
        let err = TlsMaterial::from_pem_files(p, p, p).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
