//! Telemetry end to end over real QUIC on 127.0.0.1: delivery, content,
//! restarts, and refusal of bad peers.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{init_logs, mem_total_bytes, start, wait_until};
use vcp_common::metric;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_deliver_contiguous_real_readings() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(3, dir.path()).await;
    let counters: Vec<_> = fleet
        .agents
        .iter()
        .map(|(id, a)| (id.clone(), a.counters.clone()))
        .collect();
    let sup = fleet.supervisor().fleet.clone();
    wait_until(
        "every agent to deliver 8 batches",
        Duration::from_secs(20),
        || {
            let s = sup.summaries();
            s.len() == 3 && s.iter().all(|a| a.batches >= 8)
        },
    )
    .await;

    // Content: real readings of this machine.
    let hosts = sup.view.hosts();
    assert_eq!(hosts.len(), 3);
    for (id, cell) in hosts.iter() {
        let snap = cell.load();
        let total = snap
            .get("memory", metric::MEMORY_TOTAL.name)
            .expect("memory.total")
            .value;
        assert_eq!(total, mem_total_bytes(), "{id}: memory.total");
        let cpus: Vec<_> = snap
            .readings()
            .filter(|(d, _)| d.metric == metric::CPU_UTILIZATION.name)
            .collect();
        assert!(cpus.len() >= 2, "{id}: total and per-core utilisation");
        for (d, l) in cpus {
            assert!(
                (0.0..=1.0).contains(&l.value),
                "{id} {}: {}",
                d.resource,
                l.value
            );
        }
        assert!(
            snap.get("nic/lo", metric::NIC_RX_BYTES.name).is_some(),
            "{id}: loopback interface"
        );
        assert_eq!(
            snap.get("gpu", metric::GPU_PRESENT.name).map(|l| l.value),
            Some(0.0),
            "{id}: no GPU here"
        );
    }

    let sup = fleet.stop().await.fleet;
    // Delivery: every produced batch applied once, in order, none lost.
    for (id, c) in counters {
        let a = sup.summaries().into_iter().find(|a| a.id == id).unwrap();
        let produced = c.last_seq.load(Ordering::Relaxed);
        assert_eq!(a.last_seq, produced, "{id}: last applied = last produced");
        assert_eq!(a.batches, produced, "{id}: contiguous from 1, nothing lost");
        assert_eq!((a.duplicates, a.lost_batches), (0, 0), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_restart_loses_nothing_and_counts_nothing_twice() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = start(3, dir.path()).await;
    let counters: Vec<_> = fleet
        .agents
        .iter()
        .map(|(id, a)| (id.clone(), a.counters.clone()))
        .collect();
    let sup = fleet.supervisor().fleet.clone();
    wait_until("first batches", Duration::from_secs(20), || {
        let s = sup.summaries();
        s.len() == 3 && s.iter().all(|a| a.batches >= 3)
    })
    .await;
    fleet
        .restart_supervisor(Duration::from_millis(1500))
        .await
        .unwrap();
    let before: Vec<u64> = counters
        .iter()
        .map(|(_, c)| c.last_seq.load(Ordering::Relaxed))
        .collect();
    let sup = fleet.supervisor().fleet.clone();
    wait_until(
        "agents to catch up after the restart",
        Duration::from_secs(30),
        || {
            let s = sup.summaries();
            s.len() == 3 && s.iter().zip(&before).all(|(a, &b)| a.last_seq > b + 2)
        },
    )
    .await;
    let sup = fleet.stop().await.fleet;
    for (id, c) in counters {
        let a = sup.summaries().into_iter().find(|a| a.id == id).unwrap();
        let produced = c.last_seq.load(Ordering::Relaxed);
        assert_eq!(
            a.last_seq, produced,
            "{id}: everything produced was applied"
        );
        // Totals survive the restart in the store: one count per batch.
        assert_eq!(
            a.batches, produced,
            "{id}: nothing lost, nothing counted twice"
        );
        assert_eq!(a.lost_batches, 0, "{id}");
    }
}
