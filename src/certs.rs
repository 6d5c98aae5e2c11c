//! Fleet certificates: a CA, the supervisor's certificate, one client
//! certificate per agent. `vcp certs` writes them as PEM files for a real
//! fleet; the demo and the tests make them in memory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use vcp_common::identity::{
    agent_dns_name, module_dns_name, validate_id, TlsMaterial, SUPERVISOR_NAME,
};

/// A certificate and its key, as issued.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

/// A fleet certificate authority held in memory.
pub struct FleetCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
}

impl FleetCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(FleetCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA [`write_fleet`] wrote into `dir` (`ca.pem`, `ca.key`), to
    /// issue more certificates under it.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let (cert_pem, key_pem) = (read("ca.pem")?, read("ca.key")?);
        let key = KeyPair::from_pem(&key_pem).context("ca.key")?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).context("ca.pem")?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).context("ca.pem")?;
        Ok(FleetCa {
            issuer,
            cert_pem,
            cert_der,
            key_pem,
        })
    }

    /// Issues a certificate for `dns_name`, usable by a server or a client.
    pub fn issue(&self, dns_name: &str) -> anyhow::Result<Issued> {
        let mut params = CertificateParams::new(vec![dns_name.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, dns_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }

    /// The supervisor's certificate.
    pub fn supervisor(&self) -> anyhow::Result<Issued> {
        self.issue(SUPERVISOR_NAME)
    }

    /// An agent's client certificate.
    pub fn agent(&self, agent_id: &str) -> anyhow::Result<Issued> {
        validate_id(agent_id)?;
        self.issue(&agent_dns_name(agent_id))
    }

    /// TLS material for a party holding `issued`, trusting this CA.
    pub fn material(&self, issued: &Issued) -> TlsMaterial {
        TlsMaterial {
            ca: vec![self.cert_der.clone()],
            chain: vec![issued.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.clone())),
        }
    }

    /// A remote module's credential.
    pub fn module(&self, module_id: &str) -> anyhow::Result<Issued> {
        validate_id(module_id)?;
        self.issue(&module_dns_name(module_id))
    }
}

fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

/// Writes `ca.pem`, `ca.key`, `supervisor.pem`/`.key`, and `<id>.pem`/`.key`
/// for every agent id and every module id into `out`. Returns the files
/// written.
pub fn write_fleet(
    out: &Path,
    agent_ids: &[String],
    module_ids: &[String],
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ca = FleetCa::new("vcp fleet CA")?;
    let mut files = Vec::new();
    let mut put = |name: String, text: &str, secret: bool| -> anyhow::Result<()> {
        let p = out.join(name);
        write(&p, text, secret)?;
        files.push(p);
        Ok(())
    };
    put("ca.pem".into(), &ca.cert_pem, false)?;
    put("ca.key".into(), &ca.key_pem, true)?;
    let sup = ca.supervisor()?;
    put("supervisor.pem".into(), &sup.cert_pem, false)?;
    put("supervisor.key".into(), &sup.key_pem, true)?;
    for id in agent_ids {
        let a = ca.agent(id)?;
        put(format!("{id}.pem"), &a.cert_pem, false)?;
        put(format!("{id}.key"), &a.key_pem, true)?;
    }
    for id in module_ids {
        let m = ca.module(id)?;
        put(format!("{id}.pem"), &m.cert_pem, false)?;
        put(format!("{id}.key"), &m.key_pem, true)?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_ca_loads_back_and_issues_more() {
        let dir = tempfile::tempdir().unwrap();
        write_fleet(dir.path(), &[], &[]).unwrap();
        let ca = FleetCa::load(dir.path()).unwrap();
        let host = ca.agent("host-9").unwrap();
        std::fs::write(dir.path().join("host-9.pem"), &host.cert_pem).unwrap();
        std::fs::write(dir.path().join("host-9.key"), &host.key_pem).unwrap();
        TlsMaterial::from_pem_files(
            &dir.path().join("ca.pem"),
            &dir.path().join("host-9.pem"),
            &dir.path().join("host-9.key"),
        )
        .unwrap();
        assert!(FleetCa::load(&dir.path().join("none")).is_err());
    }

    #[test]
    fn written_files_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let files =
            write_fleet(dir.path(), &["host-1".into()], &["acme-predictive".into()]).unwrap();
        assert_eq!(files.len(), 8);
        let d = dir.path();
        TlsMaterial::from_pem_files(
            &d.join("ca.pem"),
            &d.join("host-1.pem"),
            &d.join("host-1.key"),
        )
        .unwrap();
        TlsMaterial::from_pem_files(
            &d.join("ca.pem"),
            &d.join("supervisor.pem"),
            &d.join("supervisor.key"),
        )
        .unwrap();
        assert!(FleetCa::new("x").unwrap().agent("Bad_Id").is_err());
    }
}
