//! Telemetry through a faulty network: a real agent and a real supervisor
//! on 127.0.0.1 with a UDP relay between them — 10 % loss and up to 200 ms
//! of jitter (reordering) for 60 s, then a 30 s blackhole that outlives
//! the QUIC idle timeout — and afterwards every batch is applied exactly
//! once.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::relay::{Faults, Relay};
use common::{fast, init_logs, wait_until};
use vcp::loopback::Loopback;
use vcp_agent::Agent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_jitter_and_a_blackhole_lose_nothing_and_double_nothing() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = Loopback::start(fast(0, dir.path())).await.unwrap();
    let relay = Relay::start(fleet.addr).await;
    let mut o = fleet.agent_options(
        "agent-1",
        fleet.ca.material(&fleet.ca.agent("agent-1").unwrap()),
    );
    o.uplink.supervisor = relay.addr;
    let agent = Agent::start(o).unwrap();
    let sup = fleet.supervisor().fleet.clone();
    let applied = || sup.summaries().first().map_or(0, |a| a.last_seq);
    wait_until("delivery", Duration::from_secs(20), || applied() >= 3).await;

    relay.set(Faults {
        loss: 0.10,
        jitter: Duration::from_millis(200),
        duplicate: 0.01,
        ..Faults::default()
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
    let during = applied();
    relay.blackhole(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(30)).await;
    relay.set(Faults::default());
    let produced = agent.counters.last_seq.load(Ordering::Relaxed);
    wait_until("the backlog delivered", Duration::from_secs(60), || {
        applied() >= produced
    })
    .await;
    let counters = agent.counters.clone();
    agent.stop().await;
    let a = sup.summaries()[0].clone();
    let (last, acked) = (
        counters.last_seq.load(Ordering::Relaxed),
        counters.acked_seq.load(Ordering::Relaxed),
    );
    eprintln!(
        "through the relay: produced {last}, applied {} ({} while lossy), duplicates {}, lost {}, connections {}; relay: {:?}",
        a.batches,
        during,
        a.duplicates,
        a.lost_readings,
        counters.connections.load(Ordering::Relaxed),
        relay.counts()
    );
    assert!(during > 3, "delivery went on through the loss");
    assert_eq!(
        a.batches, a.last_seq,
        "contiguous: nothing applied twice {a:?}"
    );
    assert_eq!((a.lost_batches, a.lost_readings), (0, 0), "{a:?}");
    assert!(
        a.last_seq >= acked && a.last_seq <= last,
        "{a:?} vs {last}/{acked}"
    );
    assert!(
        last - a.last_seq <= 1,
        "at most the last window unsent at stop: {a:?} vs {last}"
    );
    assert!(
        counters.connections.load(Ordering::Relaxed) >= 2,
        "the blackhole broke the connection"
    );
    fleet.stop().await;
}
