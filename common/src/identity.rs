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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// Who a certificate speaks for: an agent (`<id>.agent.vcp`) or a remote
/// module (`<id>.module.vcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Agent,
    Module,
}

impl Role {
    /// The DNS suffix of this role's certificate names.
    pub fn suffix(self) -> &'static str {
        match self {
            Role::Agent => ".agent.vcp",
            Role::Module => ".module.vcp",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Module => "module",
        }
    }
}

/// The certificate name that carries an agent id.
pub fn agent_dns_name(agent_id: &str) -> String {
    format!("{agent_id}{}", Role::Agent.suffix())
}

/// The certificate name that carries a module id: a remote module's
/// credential.
pub fn module_dns_name(module_id: &str) -> String {
    format!("{module_id}{}", Role::Module.suffix())
}

/// Why a certificate's names do not name one identity of a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the certificate names no {role} (no DNS name <id>{suffix})")]
    None {
        role: &'static str,
        suffix: &'static str,
    },
    #[error("the certificate names {n} {role}s; one credential is one identity")]
    Several { role: &'static str, n: usize },
    #[error("the certificate's {role} name: {source}")]
    Invalid {
        role: &'static str,
        #[source]
        source: IdentityError,
    },
}

/// The one id of `role` among a certificate's DNS names.
pub fn identity_in<'a>(
    dns_names: impl IntoIterator<Item = &'a str>,
    role: Role,
) -> Result<String, NameError> {
    let ids: Vec<&str> = dns_names
        .into_iter()
        .filter_map(|n| n.strip_suffix(role.suffix()))
        .collect();
    match ids[..] {
        [] => Err(NameError::None {
            role: role.name(),
            suffix: role.suffix(),
        }),
        [id] => {
            validate_id(id).map_err(|source| NameError::Invalid {
                role: role.name(),
                source,
            })?;
            Ok(id.to_owned())
        }
        _ => Err(NameError::Several {
            role: role.name(),
            n: ids.len(),
        }),
    }
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
            ca: certs_from_pem_file(ca)?,
            chain: certs_from_pem_file(cert)?,
            key: key_from_pem_file(key)?,
        })
    }
}

/// The first private key in the PEM file `path`.
pub fn key_from_pem_file(path: &Path) -> Result<PrivateKeyDer<'static>, IdentityError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

/// Every certificate in the PEM file `path`; at least one.
pub fn certs_from_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
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
    fn a_certificate_names_one_identity_per_role() {
        let names = ["h1.agent.vcp", "m.module.vcp", "other.example"];
        assert_eq!(identity_in(names, Role::Agent).unwrap(), "h1");
        assert_eq!(identity_in(names, Role::Module).unwrap(), "m");
        assert!(matches!(
            identity_in(["x.example"], Role::Agent),
            Err(NameError::None { .. })
        ));
        assert!(matches!(
            identity_in(["a.agent.vcp", "b.agent.vcp"], Role::Agent),
            Err(NameError::Several { n: 2, .. })
        ));
        assert!(matches!(
            identity_in(["Bad_Id.agent.vcp"], Role::Agent),
            Err(NameError::Invalid { .. })
        ));
    }

    #[test]
    fn missing_pem_file_is_a_clear_error() {
        let p = Path::new("/nonexistent/ca.pem");
        let err = TlsMaterial::from_pem_files(p, p, p).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
