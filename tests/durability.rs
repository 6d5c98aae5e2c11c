//! Nothing lost, nothing doubled, across deaths: an agent killed with
//! SIGKILL mid-stream (a real child process) resumes its incarnation and
//! sequence from its disk spool; a supervisor down for 30 s while the agent
//! keeps sampling, then the agent killed too, then both back; a spool that
//! overflows reports exactly what it dropped.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::child::{free_udp_port, material, ChildAgent};
use common::{fast, init_logs, wait_until};
use vcp_agent::spool::{Spool, SpoolConfig};
use vcp_supervisor::fleet::{AgentSummary, Fleet};
use vcp_supervisor::{Supervisor, SupervisorConfig};

/// Not a test by itself: the body of a child agent process.
#[test]
#[ignore = "started by other tests as a child process"]
fn child_agent() {
    common::child::run_agent_if_child();
}

const ID: &str = "agent-1";

async fn supervisor(dir: &Path, addr: SocketAddr) -> Supervisor {
    Supervisor::start(SupervisorConfig {
        listen: addr,
        data_dir: dir.join("store"),
        tls: material(dir, "supervisor"),
        control: Default::default(),
        api: None,
        enrolment: None,
    })
    .await
    .unwrap()
}

fn summary(fleet: &Fleet) -> Option<AgentSummary> {
    fleet.summaries().into_iter().find(|a| a.id == ID)
}

/// The agent's own account of what it produced: its spool, read after it
/// died (the incarnation, and the last sequence number it handed out).
fn produced(state: &Path) -> (u64, u64) {
    let cfg = SpoolConfig {
        dir: Some(state.join(ID)),
        ..SpoolConfig::memory(1)
    };
    let (spool, _) = Spool::open(cfg, || panic!("the agent made its identity"));
    (spool.incarnation(), spool.last_seq())
}

async fn wait_applied(fleet: &Arc<Fleet>, what: &str, at_least: u64) {
    wait_until(what, Duration::from_secs(60), || {
        summary(fleet).is_some_and(|a| a.last_seq >= at_least)
    })
    .await;
}

/// Every batch 1..=produced applied exactly once, in one incarnation,
/// nothing declared lost.
fn exactly_once(fleet: &Fleet, store: &Path, state: &Path) -> AgentSummary {
    let a = summary(fleet).unwrap();
    let (incarnation, last) = produced(state);
    assert_eq!(a.last_seq, last, "{a:?}");
    assert_eq!(
        a.batches, last,
        "contiguous from 1: nothing applied twice {a:?}"
    );
    assert_eq!((a.lost_batches, a.lost_readings), (0, 0), "{a:?}");
    let (_store, records) = vcp_store::Store::open(store).unwrap();
    assert_eq!(
        records[ID].cursor.incarnation, incarnation,
        "one run of the agent"
    );
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_stream_resumes_and_nothing_is_lost_or_doubled() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    vcp::certs::write_fleet(dir.path(), &[ID.to_owned()], &[]).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let sup = supervisor(dir.path(), addr).await;
    let fleet = sup.fleet.clone();
    let state = dir.path().join("state");
    let mut agent = ChildAgent::spawn(dir.path(), addr, ID, &state);
    wait_applied(&fleet, "batches before the kill", 5).await;
    agent.kill(); // SIGKILL, mid-stream
    let (_, at_kill) = produced(&state);
    let mut agent = ChildAgent::spawn(dir.path(), addr, ID, &state);
    wait_applied(&fleet, "the agent to resume", at_kill + 5).await;
    agent.kill();
    let (_, last) = produced(&state);
    // Once more, so that what the second kill left spooled is delivered.
    let mut agent = ChildAgent::spawn(dir.path(), addr, ID, &state);
    wait_applied(&fleet, "the spool delivered", last + 2).await;
    agent.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = summary(&fleet).unwrap();
    sup.shutdown().await;
    let a2 = exactly_once(&fleet, &dir.path().join("store"), &state);
    eprintln!(
        "agent killed twice: produced {}, applied {}, duplicates {}, lost {}",
        a2.last_seq, a.batches, a.duplicates, a.lost_readings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_down_30_s_then_agent_killed_then_both_back() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    vcp::certs::write_fleet(dir.path(), &[ID.to_owned()], &[]).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let state = dir.path().join("state");
    let sup = supervisor(dir.path(), addr).await;
    let mut agent = ChildAgent::spawn(dir.path(), addr, ID, &state);
    wait_applied(&sup.fleet, "batches before the outage", 3).await;
    let before = summary(&sup.fleet).unwrap().last_seq;
    sup.shutdown().await;
    // The agent samples on, into its disk spool.
    tokio::time::sleep(Duration::from_secs(30)).await;
    agent.kill();
    let (_, produced_while_down) = produced(&state);
    assert!(produced_while_down > before + 100, "{produced_while_down}");
    let sup = supervisor(dir.path(), addr).await;
    let mut agent = ChildAgent::spawn(dir.path(), addr, ID, &state);
    wait_applied(&sup.fleet, "the outage delivered", produced_while_down).await;
    agent.kill();
    let (_, last) = produced(&state);
    let mut agent = ChildAgent::spawn(dir.path(), addr, ID, &state);
    wait_applied(&sup.fleet, "the rest delivered", last + 1).await;
    agent.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fleet = sup.fleet.clone();
    sup.shutdown().await;
    let a = exactly_once(&fleet, &dir.path().join("store"), &state);
    eprintln!(
        "supervisor down 30 s, agent killed: produced {}, applied {}, duplicates {}, lost {}",
        a.last_seq, a.batches, a.duplicates, a.lost_readings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_reports_exactly_what_it_dropped() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = fast(1, dir.path());
    opts.spool_batches = 3; // in memory: three batches of 200 ms
    let mut fleet = vcp::loopback::Loopback::start(opts).await.unwrap();
    let f = fleet.supervisor().fleet.clone();
    wait_until("delivery", Duration::from_secs(20), || {
        f.summaries().first().is_some_and(|a| a.batches >= 3)
    })
    .await;
    fleet
        .restart_supervisor(Duration::from_secs(3))
        .await
        .unwrap();
    let agent = &fleet.agents[0].1;
    let f = fleet.supervisor().fleet.clone();
    wait_until("the gap reported", Duration::from_secs(30), || {
        f.summaries().first().is_some_and(|a| a.lost_batches > 0)
    })
    .await;
    let dropped = agent.status.dropped_readings();
    let a = f.summaries()[0].clone();
    assert!(dropped > 0);
    assert_eq!(a.lost_readings, dropped, "exact readings: {a:?}");
    assert_eq!(
        a.batches + a.lost_batches,
        a.last_seq,
        "every number accounted for: {a:?}"
    );
    eprintln!(
        "spool overflow: lost {} batches, {} readings (agent counted {dropped})",
        a.lost_batches, a.lost_readings
    );
    fleet.stop().await;
}
