//! Enrolment and renewal end to end, over real QUIC: a fresh agent with
//! only a join token and the fleet CA makes its key, enrols, and delivers
//! readings over mutual TLS; a spent, expired or out-of-scope token is
//! refused with the reason; a certificate living seconds is renewed over
//! the agent's own certificate while the session goes on, the next
//! connection uses the new one, and no batch is lost or doubled. A remote
//! module does the same through the SDK: enrols with a module join token,
//! answers rounds, renews, and comes back on the renewed certificate.

mod common;

use std::path::Path;
use std::time::Duration;

use common::child::free_udp_port;
use common::{init_logs, wait_until};
use vcp_common::identity::Role;
use vcp_supervisor::{EnrolmentOptions, Supervisor, SupervisorConfig};
use vcp_transport::enrol::{credential_file, EnrolError, Enrolment};

async fn supervisor(dir: &Path, validity: Duration) -> Supervisor {
    supervisor_with(dir, validity, Default::default()).await
}

async fn supervisor_with(
    dir: &Path,
    validity: Duration,
    control: vcp_supervisor::config::SupervisorFile,
) -> Supervisor {
    vcp::certs::write_fleet(&dir.join("certs"), &[], &[]).unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join("certs").join(f)).unwrap();
    Supervisor::start(SupervisorConfig {
        listen: format!("127.0.0.1:{}", free_udp_port()).parse().unwrap(),
        data_dir: dir.join("store"),
        tls: common::child::material(&dir.join("certs"), "supervisor"),
        control,
        api: None,
        enrolment: Some(EnrolmentOptions {
            ca_pem: read("ca.pem"),
            ca_key_pem: read("ca.key"),
            validity,
        }),
    })
    .await
    .unwrap()
}

fn enrolment(dir: &Path, sup: &Supervisor, id: &str) -> Enrolment {
    enrolment_as(Role::Agent, dir, sup, id)
}

fn enrolment_as(role: Role, dir: &Path, sup: &Supervisor, id: &str) -> Enrolment {
    let ca = common::child::material(&dir.join("certs"), "supervisor").ca;
    Enrolment {
        role,
        id: id.into(),
        supervisor: sup.local_addr().unwrap(),
        server_name: vcp_common::identity::SUPERVISOR_NAME.into(),
        ca,
        state_dir: dir.join("state").join(id),
    }
}

fn refusal(r: Result<vcp_common::identity::TlsMaterial, EnrolError>) -> String {
    match r {
        Err(EnrolError::Refused(why)) => why,
        other => panic!("not refused: {:?}", other.map(|_| ())),
    }
}

/// Connects with the agent protocol and no client certificate; the
/// supervisor's close reason.
async fn anonymous_agent(dir: &Path, sup: &Supervisor) -> String {
    use quinn::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for ca in common::child::material(&dir.join("certs"), "supervisor").ca {
        roots.add(ca).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    crypto.alpn_protocols = vec![vcp_common::frame::ALPN_AGENT.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = quinn::ClientConfig::new(std::sync::Arc::new(quic));
    let addr = sup.local_addr().unwrap();
    let conn = endpoint
        .connect_with(config, addr, "supervisor.vcp")
        .unwrap()
        .await;
    let reason = match conn {
        Ok(c) => c.closed().await.to_string(),
        Err(e) => e.to_string(),
    };
    endpoint.close(0u32.into(), b"");
    reason
}

fn summary(sup: &Supervisor, id: &str) -> Option<vcp_supervisor::fleet::AgentSummary> {
    sup.fleet.summaries().into_iter().find(|a| a.id == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_only_a_join_token_enrols_and_delivers() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), Duration::from_secs(3600)).await;
    let accounts = sup.accounts.clone();
    let ttl = "1h".parse().unwrap();
    let join = accounts.issue_join("host-*", ttl, Some(1), "test").unwrap();

    let e = enrolment(dir.path(), &sup, "host-1");
    let tls = e.enrol(&join.token).await.unwrap();
    let file = e.state_dir.join(credential_file(Role::Agent));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is the owner's only");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("BEGIN CERTIFICATE") && text.contains("PRIVATE KEY"));
    }
    assert!(e.stored().unwrap().is_some(), "stored for the next start");
    let mut opts = common::fast(1, dir.path());
    opts.state_dir = Some(dir.path().join("spool"));
    let o = vcp::loopback::agent_options("host-1", sup.local_addr().unwrap(), tls, &opts);
    let agent = vcp_agent::Agent::start(o).unwrap();
    wait_until("host-1 delivers", Duration::from_secs(20), || {
        summary(&sup, "host-1").is_some_and(|a| a.readings > 0)
    })
    .await;
    let certs = sup.credentials.list().unwrap();
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(
        (certs[0].role.as_str(), certs[0].id.as_str()),
        ("agent", "host-1")
    );

    // The token had one use; another scope; an expired token; not a join
    // token at all.
    let why = refusal(
        enrolment(dir.path(), &sup, "host-2")
            .enrol(&join.token)
            .await,
    );
    assert!(why.contains("spent"), "{why}");
    let rack = accounts.issue_join("rack-7-*", ttl, None, "test").unwrap();
    let why = refusal(
        enrolment(dir.path(), &sup, "host-3")
            .enrol(&rack.token)
            .await,
    );
    assert!(why.contains("outside the join token's scope"), "{why}");
    let brief = accounts
        .issue_join("*", "1s".parse().unwrap(), None, "test")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let why = refusal(
        enrolment(dir.path(), &sup, "host-4")
            .enrol(&brief.token)
            .await,
    );
    assert!(why.contains("expired"), "{why}");
    let op = accounts
        .create_token("operator", vcp_store::accounts::Role::Operator)
        .unwrap();
    let why = refusal(enrolment(dir.path(), &sup, "host-5").enrol(&op).await);
    assert!(why.contains("not a join token"), "{why}");
    assert_eq!(
        sup.credentials.list().unwrap().len(),
        1,
        "nothing else issued"
    );
    // The supervisor takes clients without a certificate now, for
    // enrolment only: the agent protocol without one is refused.
    let why = anonymous_agent(dir.path(), &sup).await;
    assert!(why.contains("no certificate"), "{why}");
    let lines = sup.accounts.list().unwrap();
    assert_eq!(
        lines
            .iter()
            .find(|t| t.id == join.info.id)
            .unwrap()
            .uses_left,
        Some(0)
    );
    agent.stop().await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_certificate_is_renewed_and_no_batch_is_lost() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    // Renewed two thirds in: at 4 s of 6.
    let sup = supervisor(dir.path(), Duration::from_secs(6)).await;
    let join = sup
        .accounts
        .issue_join("host-1", "1h".parse().unwrap(), Some(1), "t");
    let e = enrolment(dir.path(), &sup, "host-1");
    let tls = e.enrol(&join.unwrap().token).await.unwrap();
    let issued = std::time::Instant::now();
    let mut opts = common::fast(1, dir.path());
    opts.state_dir = Some(dir.path().join("spool"));
    let mut o = vcp::loopback::agent_options("host-1", sup.local_addr().unwrap(), tls, &opts);
    o.renewal = Some(e.clone());
    let agent = vcp_agent::Agent::start(o).unwrap();
    let creds = sup.credentials.clone();
    let serials = move || -> Vec<String> {
        let mut rows = creds.list().unwrap();
        rows.sort_by_key(|c| c.first_seen_ms);
        rows.into_iter().map(|c| c.serial).collect()
    };
    let first = serials()[0].clone();
    wait_until("renewed", Duration::from_secs(15), || serials().len() >= 2).await;
    eprintln!("renewed {:?} after enrolment", issued.elapsed());
    // Past the first certificate's end the session it opened still runs:
    // the renewal needed no reconnect. Closing it, the agent comes back
    // with the renewed certificate (the first is expired by then).
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(issued.elapsed())).await;
    assert!(summary(&sup, "host-1").unwrap().connected);
    let closed = sup
        .live
        .close_revoked(|role, serial| role == Role::Agent && serial == first);
    assert_eq!(closed, 1, "the session on the first certificate went on");
    let before = summary(&sup, "host-1").unwrap().readings;
    wait_until(
        "delivering after the renewal",
        Duration::from_secs(20),
        || summary(&sup, "host-1").is_some_and(|a| a.readings > before + 20 && a.connected),
    )
    .await;
    agent.stop().await;
    let a = summary(&sup, "host-1").unwrap();
    assert_eq!((a.lost_batches, a.duplicates), (0, 0), "{a:?}");
    sup.shutdown().await;
}

const MODULE: &str = "acme-predictive";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_enrols_with_a_join_token_and_renews() {
    use vcp_module_sdk::predictive::PredictiveAutoscaler;
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let control = toml::from_str(common::REMOTE_AUTOSCALER_PLANE).unwrap();
    let sup = supervisor_with(dir.path(), Duration::from_secs(6), control).await;
    let ttl = "1h".parse().unwrap();
    // An agent's join token does not make modules, nor a module's agents.
    let agents = sup.accounts.issue_join("*", ttl, None, "t").unwrap();
    let e = enrolment_as(Role::Module, dir.path(), &sup, MODULE);
    let why = refusal(e.enrol(&agents.token).await);
    assert!(
        why.contains("module id") && why.contains("outside"),
        "{why}"
    );
    let vendor = sup
        .accounts
        .issue_join("module:acme-*", ttl, Some(1), "t")
        .unwrap();
    let why = refusal(
        enrolment(dir.path(), &sup, "acme-host")
            .enrol(&vendor.token)
            .await,
    );
    assert!(why.contains("agent id") && why.contains("outside"), "{why}");

    let (tls, renew) = e.credential(None, Some(&vendor.token)).await.unwrap();
    assert!(renew, "an enrolled credential is renewed");
    let issued = std::time::Instant::now();
    assert!(e.file().ends_with("module.pem") && e.stored().unwrap().is_some());
    let connect = vcp_module_sdk::ModuleConnect {
        supervisor: sup.local_addr().unwrap(),
        server_name: vcp_common::identity::SUPERVISOR_NAME.into(),
        tls,
        max_frame: 16 << 20,
        renewal: Some(e.clone()),
    };
    let module = vcp::loopback::RemoteModule::spawn(
        PredictiveAutoscaler::new(MODULE, "predictive-labs"),
        connect,
    );
    let live = || sup.live.serial(Role::Module, MODULE);
    wait_until("the module is connected", Duration::from_secs(20), || {
        live().is_some()
    })
    .await;
    let first = live().unwrap();
    let creds = sup.credentials.clone();
    let modules = move || -> Vec<String> {
        let rows = creds.list().unwrap();
        rows.into_iter()
            .filter(|c| c.role == "module")
            .map(|c| c.serial)
            .collect()
    };
    wait_until("renewed", Duration::from_secs(15), || modules().len() >= 2).await;
    eprintln!("module renewed {:?} after enrolment", issued.elapsed());
    // The session on the first certificate goes on past its end; closed,
    // the module comes back with the renewed one.
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(issued.elapsed())).await;
    assert_eq!(
        live().as_deref(),
        Some(first.as_str()),
        "no reconnect for the renewal"
    );
    let closed = sup
        .live
        .close_revoked(|role, serial| role == Role::Module && serial == first);
    assert_eq!(closed, 1);
    wait_until(
        "back on the renewed certificate",
        Duration::from_secs(20),
        || live().is_some_and(|s| s != first && modules().contains(&s)),
    )
    .await;
    assert!(!module.is_finished(), "the module still runs");
    module.stop();
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_only_so_many_attempts() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let control =
        toml::from_str("[limits.enrol]\nper_source_per_minute = 1\nper_source_burst = 2\n")
            .unwrap();
    let sup = supervisor_with(dir.path(), Duration::from_secs(3600), control).await;
    let e = enrolment(dir.path(), &sup, "host-1");
    for _ in 0..2 {
        let why = refusal(e.enrol("vcp_guessed").await);
        assert!(why.contains("unknown token"), "{why}");
    }
    let third = e.enrol("vcp_guessed").await.map(|_| ()).unwrap_err();
    assert!(
        third.to_string().contains("too many enrolment attempts"),
        "{third}"
    );
    let limited = &sup.fleet.endpoint.enrol_source;
    assert_eq!(limited.load(std::sync::atomic::Ordering::Relaxed), 1);
    sup.shutdown().await;
}
