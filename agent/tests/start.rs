//! The `vcp-agent` binary's own start, against an in-process supervisor
//! that enrols: with only `--enrol-token` it makes its key, enrols, keeps
//! `agent.pem` (0600) in its state directory and delivers readings; started
//! again without the token it uses the stored credential; `--cert/--key`
//! come before the stored one; with none of them it says what is missing.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vcp_common::identity::{TlsMaterial, SUPERVISOR_NAME};
use vcp_supervisor::{EnrolmentOptions, Supervisor, SupervisorConfig};

/// A CA (written to `dir/ca.pem`) and the supervisor's credential under
/// it; the CA's certificate and key as PEM.
fn fleet(dir: &Path) -> (TlsMaterial, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec![SUPERVISOR_NAME.to_owned()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
    let tls = TlsMaterial {
        ca: vec![CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()],
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
    };
    (tls, ca_pem, ca_key_pem)
}

/// `vcp-agent` for `host-1` against `sup`, with `extra` arguments.
fn agent(dir: &Path, sup: &Supervisor, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vcp-agent"));
    let addr = sup.local_addr().unwrap().to_string();
    let ca = dir.join("ca.pem");
    let state = dir.join("state");
    cmd.args(["--agent-id", "host-1", "--supervisor", &addr])
        .arg("--ca")
        .arg(ca)
        .arg("--state-dir")
        .arg(state)
        .args(["--sample-interval-ms", "200", "--window-ms", "200"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn readings(sup: &Supervisor) -> u64 {
    let summaries = sup.fleet.summaries();
    let host = summaries.iter().find(|a| a.id == "host-1");
    host.map_or(0, |a| a.readings)
}

/// Waits until host-1 has delivered more than `after` readings, then
/// stops the agent (SIGINT, as Ctrl-C) and returns what it printed.
async fn delivers(sup: &Supervisor, child: Child, after: u64) -> String {
    let (stderr, stdout) = delivers_output(sup, child, after).await;
    stdout + &stderr
}

/// As [`delivers`], returning stderr and stdout apart.
async fn delivers_output(sup: &Supervisor, mut child: Child, after: u64) -> (String, String) {
    let start = Instant::now();
    while readings(sup) <= after {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the agent ended ({status}) before delivering: {}",
                text(&out)
            );
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no readings");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SAFETY: kill(2) on the pid of a child not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_binary_enrols_then_uses_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca_pem, ca_key_pem) = fleet(dir.path());
    let sup = Supervisor::start(SupervisorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("store"),
        tls,
        control: Default::default(),
        api: None,
        enrolment: Some(EnrolmentOptions {
            ca_pem,
            ca_key_pem,
            validity: Duration::from_secs(3600),
        }),
    })
    .await
    .unwrap();

    // Nothing to go on: the agent says what it needs.
    let out = agent(dir.path(), &sup, &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("no credential"), "{}", text(&out));

    let ttl = "1h".parse().unwrap();
    let join = sup
        .accounts
        .issue_join("host-*", ttl, Some(1), "t")
        .unwrap();
    let child = agent(dir.path(), &sup, &["--enrol-token", &join.token])
        .spawn()
        .unwrap();
    let log = delivers(&sup, child, 0).await;
    assert!(log.contains("enrolled: certificate stored"), "{log}");
    let file = dir.path().join("state/agent.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Started again, the token spent: the stored credential, no enrolment.
    let before = readings(&sup);
    let child = agent(dir.path(), &sup, &["--enrol-token", &join.token])
        .spawn()
        .unwrap();
    let log = delivers(&sup, child, before).await;
    assert!(log.contains("using the enrolled certificate"), "{log}");
    assert!(!log.contains("enrolled: certificate stored"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "no colour codes off a terminal: {log}"
    );
    assert_eq!(sup.credentials.list().unwrap().len(), 1, "one certificate");

    // For log shippers: one JSON object per line, on stderr.
    let before = readings(&sup);
    let mut cmd = agent(dir.path(), &sup, &["--log-format", "json"]);
    let child = cmd.spawn().unwrap();
    let (out, stdout) = delivers_output(&sup, child, before).await;
    assert!(stdout.is_empty(), "logs go to stderr: {stdout}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "using the enrolled certificate"),
        "{out}"
    );

    // The operator's files come first, over what is stored.
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let out = agent(dir.path(), &sup, &["--cert", missing, "--key", missing])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("missing.pem"), "{}", text(&out));
    sup.shutdown().await;
}
