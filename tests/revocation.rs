//! Revoking an agent: its live session is closed at once with the reason
//! and every later handshake with its certificate is refused, while the
//! other agents go on — revoked in process and by `vcp agent revoke` from
//! another process; `vcp agent list` shows serials, expiry and state.

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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vcp"))
        .args(["agent", "revoke", "agent-9", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("never connected"));
    fleet.stop().await;
}
