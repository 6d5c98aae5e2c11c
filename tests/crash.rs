//! A supervisor killed with SIGKILL mid-stream and restarted: the agents'
//! spools carry them over, nothing acknowledged is lost, nothing is applied
//! twice. The supervisor runs as a child process: this test binary
//! re-executed with `child_supervisor` selected.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{init_logs, wait_until};
use vcp_agent::Agent;
use vcp_common::identity::TlsMaterial;
use vcp_supervisor::{Supervisor, SupervisorConfig};

const CHILD: &str = "VCP_TEST_CHILD_SUPERVISOR";

/// Not a test by itself: the body of the child process.
#[test]
#[ignore = "started by other tests as a child process"]
fn child_supervisor() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (dir, port) = spec.split_once('|').expect("dir|port");
    let dir = PathBuf::from(dir);
    let tls = TlsMaterial::from_pem_files(
        &dir.join("ca.pem"),
        &dir.join("supervisor.pem"),
        &dir.join("supervisor.key"),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _sup = Supervisor::start(SupervisorConfig {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            data_dir: dir.join("store"),
            tls,
            control: Default::default(),
            api: None,
        })
        .await
        .unwrap();
        std::future::pending::<()>().await;
    });
}

fn spawn_child(dir: &Path, port: u16) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_supervisor", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, format!("{}|{port}", dir.display()))
        .spawn()
        .unwrap()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_supervisor_loses_nothing_and_counts_nothing_twice() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let ids = vcp::loopback::agent_ids(2);
    vcp::certs::write_fleet(dir.path(), &ids, &[]).unwrap();
    let port = free_udp_port();
    let mut child = spawn_child(dir.path(), port);

    let opts = common::fast(2, dir.path());
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let agents: Vec<Agent> = ids
        .iter()
        .map(|id| {
            let d = dir.path();
            let tls = TlsMaterial::from_pem_files(
                &d.join("ca.pem"),
                &d.join(format!("{id}.pem")),
                &d.join(format!("{id}.key")),
            )
            .unwrap();
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

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill: Vec<u64> = agents
        .iter()
        .map(|a| a.counters.last_seq.load(Ordering::Relaxed))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut child = spawn_child(dir.path(), port);
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
    child.kill().unwrap();
    child.wait().unwrap();

    // The store, reopened: every batch acknowledged is there exactly once.
    let (_store, records) = vcp_supervisor::store::Store::open(&dir.path().join("store")).unwrap();
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
        assert_eq!(r.totals.dropped_batches, 0);
    }
}
