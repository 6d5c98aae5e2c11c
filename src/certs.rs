//! Fleet certificates: a CA, the supervisor's certificate, one client
//! certificate per agent. `vcp certs` writes them as PEM files for a real
//! fleet; the demo and the tests make them in memory.
//!
//! A leaf carries only its usage — serverAuth for the supervisor,
//! clientAuth for agents and modules — and lives [`LEAF_VALIDITY`] unless
//! told otherwise; the CA lives [`CA_VALIDITY`]. Files are created, never
//! overwritten (a symlink at the path is not followed), keys mode 0600
//! from the start.

use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// How long a leaf certificate lives by default: 90 days.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(90 * 86_400);
/// How long the fleet CA lives: 10 years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How far back a certificate is valid from, for clocks a little behind
/// (at most a tenth of its life).
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// The supervisor: TLS server.
    Server,
    /// An agent or a module: TLS client.
    Client,
}

/// A random serial number (rcgen's default derives it from the key, and
/// every certificate is told apart by its serial: revocation).
pub fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    rcgen::SerialNumber::from_slice(&bytes)
}

/// Sets `params`' validity: from a little before now for `validity`.
fn valid_for(params: &mut CertificateParams, validity: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW.min(validity / 10);
    params.not_after = now + validity;
}

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
    /// How long the leaves it issues live.
    pub validity: Duration,
}

impl FleetCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        valid_for(&mut params, CA_VALIDITY);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(FleetCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem,
            issuer: Issuer::new(params, key),
            validity: LEAF_VALIDITY,
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
            validity: LEAF_VALIDITY,
        })
    }

    /// Issues a certificate for `dns_name` for `usage`, living
    /// [`FleetCa::validity`].
    pub fn issue(&self, dns_name: &str, usage: Usage) -> anyhow::Result<Issued> {
        let mut params = CertificateParams::new(vec![dns_name.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, dns_name);
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        valid_for(&mut params, self.validity);
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
        self.issue(SUPERVISOR_NAME, Usage::Server)
    }

    /// An agent's client certificate.
    pub fn agent(&self, agent_id: &str) -> anyhow::Result<Issued> {
        validate_id(agent_id)?;
        self.issue(&agent_dns_name(agent_id), Usage::Client)
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
        self.issue(&module_dns_name(module_id), Usage::Client)
    }
}

/// Creates `path` with `text`: never over an existing file or through a
/// symlink (`O_CREAT | O_EXCL`), a secret readable by its owner only
/// from the moment it exists.
pub fn write_new(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `ca.pem`, `ca.key`, `supervisor.pem`/`.key`, and `<id>.pem`/`.key`
/// for every agent id and every module id into `out`, leaves living
/// [`LEAF_VALIDITY`]. Returns the files written.
pub fn write_fleet(
    out: &Path,
    agent_ids: &[String],
    module_ids: &[String],
) -> anyhow::Result<Vec<PathBuf>> {
    write_fleet_valid(out, agent_ids, module_ids, LEAF_VALIDITY)
}

/// [`write_fleet`] with leaves living `validity`.
pub fn write_fleet_valid(
    out: &Path,
    agent_ids: &[String],
    module_ids: &[String],
    validity: Duration,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut ca = FleetCa::new("vcp fleet CA")?;
    ca.validity = validity;
    let mut files = Vec::new();
    let mut put = |name: String, text: &str, secret: bool| -> anyhow::Result<()> {
        let p = out.join(name);
        write_new(&p, text, secret)?;
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

    #[test]
    fn leaves_carry_their_usage_and_validity() {
        use x509_parser::prelude::*;
        let mut ca = FleetCa::new("x").unwrap();
        ca.validity = Duration::from_secs(3 * 86_400);
        let usage = |issued: &Issued| {
            let (_, cert) = X509Certificate::from_der(&issued.cert_der).unwrap();
            let eku = cert.extended_key_usage().unwrap().unwrap().value.clone();
            let v = cert.validity();
            let days = (v.not_after.timestamp() - v.not_before.timestamp()) as f64 / 86_400.0;
            (eku.server_auth, eku.client_auth, days)
        };
        let (server, client, days) = usage(&ca.supervisor().unwrap());
        assert!(server && !client);
        assert!((days - 3.0).abs() < 0.01, "{days}");
        let (server, client, _) = usage(&ca.agent("h").unwrap());
        assert!(!server && client);
        let (server, client, _) = usage(&ca.module("m").unwrap());
        assert!(!server && client);
    }

    #[test]
    fn key_files_are_0600_new_and_never_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = write_fleet(dir.path(), &["h".into()], &[]).unwrap();
        for f in &files {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            let key = f.extension().is_some_and(|e| e == "key");
            assert_eq!(mode, if key { 0o600 } else { 0o644 }, "{}", f.display());
        }
        // Written again: refused, and the files are unchanged.
        let before = std::fs::read(dir.path().join("ca.key")).unwrap();
        assert!(write_fleet(dir.path(), &[], &[]).is_err());
        assert_eq!(std::fs::read(dir.path().join("ca.key")).unwrap(), before);
        // A symlink planted at a key's path is not followed.
        let other = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, other.path().join("ca.key")).unwrap();
        assert!(write_fleet(other.path(), &[], &[]).is_err());
        assert!(!target.exists(), "the key was written through the symlink");
    }
}
