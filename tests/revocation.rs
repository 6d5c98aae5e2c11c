//! Revoking an agent: its live session is closed at once with the reason
//! and every later handshake with its certificate is refused, while the
//! other agents go on — revoked in process and by `vcp agent revoke` from
//! another process; a certificate never presented is revoked ahead of its
//! first use (`--cert`); `vcp agent list` shows serials, expiry and state.

mod common;

use std::time::{Duration, Instant};

use common::{init_logs, wait_until};
use vcp_common::identity::Role;

fn readings(fleet: &vcp::loopback::Loopback, id: &str) -> (u64, bool) {
    let a = fleet.supervisor().fleet.summaries();
    let a = a.iter().find(|a| a.id == id).expect("known agent");
    (a.readings, a.connected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agent_is_closed_and_refused_while_the_others_go_on() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = common::start(3, dir.path()).await;
    let f = fleet.supervisor().fleet.clone();
    wait_until("agents report", Duration::from_secs(20), || {
        f.summaries().iter().filter(|a| a.readings > 0).count() == 3
    })
    .await;
    let credentials = fleet.supervisor().credentials.clone();
    wait_until("certificates recorded", Duration::from_secs(10), || {
        credentials.list().unwrap().len() == 3
    })
    .await;

    // In process.
    let c = credentials.clone();
    let n = tokio::task::spawn_blocking(move || c.revoke(Role::Agent, "agent-1", "test"));
    assert_eq!(n.await.unwrap().unwrap(), 1);
    let revoked = Instant::now();
    wait_until("agent-1 closed", Duration::from_secs(5), || {
        !readings(&fleet, "agent-1").1
    })
    .await;
    eprintln!(
        "agent-1 closed {:?} after its revocation",
        revoked.elapsed()
    );

    // From another process.
    let vcp = |args: &[&str]| common::vcp_on(dir.path(), args);
    let said = vcp(&["agent", "revoke", "agent-2"]);
    assert_eq!(said.trim(), "revoked 1 certificate(s) of agent agent-2");
    let revoked = Instant::now();
    wait_until("agent-2 closed", Duration::from_secs(5), || {
        !readings(&fleet, "agent-2").1
    })
    .await;
    eprintln!(
        "agent-2 closed {:?} after `vcp agent revoke`",
        revoked.elapsed()
    );

    // They try again and again (an agent retries), and are refused; the
    // third goes on.
    let before = (readings(&fleet, "agent-1").0, readings(&fleet, "agent-2").0);
    let third = readings(&fleet, "agent-3").0;
    let refused = f
        .endpoint
        .failed_handshakes
        .load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        (readings(&fleet, "agent-1").0, readings(&fleet, "agent-2").0),
        before
    );
    assert!(!readings(&fleet, "agent-1").1 && !readings(&fleet, "agent-2").1);
    assert!(readings(&fleet, "agent-3").0 > third, "agent-3 goes on");
    let now = f
        .endpoint
        .failed_handshakes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(now > refused, "the revoked agents retried and were refused");

    // A certificate made for agent-4 and never used, revoked from its
    // file: its first handshake is refused.
    let issued = fleet.ca.agent("agent-4").unwrap();
    let pem = dir.path().join("agent-4.pem");
    std::fs::write(&pem, &issued.cert_pem).unwrap();
    let said = vcp(&[
        "agent",
        "revoke",
        "agent-4",
        "--cert",
        pem.to_str().unwrap(),
    ]);
    assert_eq!(said.trim(), "revoked 1 certificate(s) of agent agent-4");
    let c = credentials.clone();
    wait_until("the revocation is read", Duration::from_secs(5), || {
        let serials = c.list().unwrap();
        let s = serials.iter().find(|r| r.id == "agent-4").unwrap();
        c.is_revoked(Role::Agent, &s.serial)
    })
    .await;
    let refused = f
        .endpoint
        .failed_handshakes
        .load(std::sync::atomic::Ordering::Relaxed);
    let opts = fleet.agent_options("agent-4", fleet.ca.material(&issued));
    let agent4 = vcp_agent::Agent::start(opts).unwrap();
    wait_until("agent-4 refused", Duration::from_secs(10), || {
        f.endpoint
            .failed_handshakes
            .load(std::sync::atomic::Ordering::Relaxed)
            > refused
    })
    .await;
    assert!(f
        .summaries()
        .iter()
        .all(|a| a.id != "agent-4" || !a.connected));
    assert!(f
        .summaries()
        .iter()
        .all(|a| a.id != "agent-4" || a.readings == 0));
    agent4.stop().await;
    let wrong = common::vcp_fails_on(
        dir.path(),
        &[
            "agent",
            "revoke",
            "agent-5",
            "--cert",
            pem.to_str().unwrap(),
        ],
    );
    assert!(
        wrong.contains("agent agent-4's certificate, not agent-5's"),
        "{wrong}"
    );

    let listed = vcp(&["agent", "list"]);
    let header = listed.lines().next().unwrap();
    for column in ["agent", "serial", "expires", "last seen", "state"] {
        assert!(header.contains(column), "{header}");
    }
    let row = |id: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_owned()
    };
    assert!(row("agent-1").contains("revoked 20"), "{listed}");
    assert!(row("agent-2").contains("revoked 20"), "{listed}");
    assert!(row("agent-3").ends_with("valid"), "{listed}");
    assert!(row("agent-4").contains("revoked 20"), "{listed}");
    let missing = common::vcp_fails_on(dir.path(), &["agent", "revoke", "agent-9"]);
    assert!(missing.contains("never connected"), "{missing}");
    fleet.stop().await;
}
