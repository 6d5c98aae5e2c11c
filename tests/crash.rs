//! A supervisor killed with SIGKILL mid-stream and restarted: the agents'
//! spools carry them over, nothing acknowledged is lost, nothing is applied
//! twice. The supervisor runs as a child process: this test binary
//! re-executed with `child_supervisor` selected.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::child::{free_udp_port, material, ChildSupervisor};
use common::{init_logs, wait_until};
use vcp_agent::Agent;

/// Not a test by itself: the body of the child process.
#[test]
#[ignore = "started by other tests as a child process"]
fn child_supervisor() {
    common::child::run_if_child();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_supervisor_loses_nothing_and_counts_nothing_twice() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let ids = vcp::loopback::agent_ids(2);
    vcp::certs::write_fleet(dir.path(), &ids, &[]).unwrap();
    let port = free_udp_port();
    let mut child = ChildSupervisor::spawn(dir.path(), port);

    let opts = common::fast(2, dir.path());
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let agents: Vec<Agent> = ids
        .iter()
        .map(|id| {
            let tls = material(dir.path(), id);
            Agent::start(vcp::loopback::agent_options(id, addr, tls, &opts)).unwrap()
        })
        .collect();
    let acked = |a: &Agent| a.counters.acked_seq.load(Ordering::Relaxed);
    wait_until(
        "batches acknowledged before the kill",
        Duration::from_secs(20),
        || agents.iter().all(|a| acked(a) >= 5),
    )
    .await;

    child.kill(); // SIGKILL
    let at_kill: Vec<u64> = agents
        .iter()
        .map(|a| a.counters.last_seq.load(Ordering::Relaxed))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut child = ChildSupervisor::spawn(dir.path(), port);
    // The agents notice the dead connection by its idle timeout, reconnect
    // and resend their spools.
    wait_until(
        "agents to catch up after the restart",
        Duration::from_secs(40),
        || agents.iter().zip(&at_kill).all(|(a, &k)| acked(a) > k + 3),
    )
    .await;
    let mut produced = Vec::new();
    for a in agents {
        let c = a.counters.clone();
        a.stop().await;
        produced.push((
            c.last_seq.load(Ordering::Relaxed),
            c.acked_seq.load(Ordering::Relaxed),
        ));
    }
    child.kill();

    // The store, reopened: every batch acknowledged is there exactly once.
    let (_store, records) = vcp_store::Store::open(&dir.path().join("store")).unwrap();
    for (id, (last, acked)) in ids.iter().zip(produced) {
        let r = records.get(id).unwrap();
        assert!(
            r.cursor.last_seq >= acked,
            "{id}: acknowledged {acked}, stored {}",
            r.cursor.last_seq
        );
        assert!(r.cursor.last_seq <= last);
        assert_eq!(
            r.totals.batches, r.cursor.last_seq,
            "{id}: contiguous from 1, no batch applied twice"
        );
        assert_eq!(r.totals.lost_batches, 0);
    }
}
