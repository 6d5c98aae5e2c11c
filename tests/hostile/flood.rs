//! Floods against a supervisor in its own process, whose memory is read
//! from /proc: a stream flood, and huge or sparse series ids.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use vcp_agent::Agent;
use vcp_common::frame::{Frame, ALPN_AGENT};
use vcp_common::protocol::close;

use crate::common::child::{free_udp_port, material, ChildSupervisor};
use crate::common::hostile::{batch_with_series_id, hello, rss_bytes, Hostile};
use crate::common::{fast, init_logs, wait_until};

const MIB: u64 = 1 << 20;

struct Setup {
    dir: tempfile::TempDir,
    child: ChildSupervisor,
    addr: std::net::SocketAddr,
    honest: Vec<Agent>,
}

/// A child supervisor and two honest agents delivering to it; `hostile`
/// more certificates.
async fn setup(hostile: &[String]) -> Setup {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let honest_ids = vcp::loopback::agent_ids(2);
    let all: Vec<String> = honest_ids.iter().chain(hostile).cloned().collect();
    vcp::certs::write_fleet(dir.path(), &all, &[]).unwrap();
    let port = free_udp_port();
    let child = ChildSupervisor::spawn(dir.path(), port);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let opts = fast(2, dir.path());
    let honest: Vec<Agent> = honest_ids
        .iter()
        .map(|id| {
            let o = vcp::loopback::agent_options(id, addr, material(dir.path(), id), &opts);
            Agent::start(o).unwrap()
        })
        .collect();
    let s = Setup {
        dir,
        child,
        addr,
        honest,
    };
    s.honest_progress(3).await;
    s
}

impl Setup {
    /// Waits until every honest agent had `n` more batches acknowledged.
    async fn honest_progress(&self, n: u64) {
        let acked = |a: &Agent| a.counters.acked_seq.load(Ordering::Relaxed);
        let from: Vec<u64> = self.honest.iter().map(acked).collect();
        wait_until("honest agents to deliver", Duration::from_secs(40), || {
            self.honest
                .iter()
                .zip(&from)
                .all(|(a, f)| acked(a) >= f + n)
        })
        .await;
    }

    async fn stop(self) {
        for a in self.honest {
            a.stop().await;
        }
        drop(self.child);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_sparse_series_ids_close_only_that_connection() {
    let s = setup(&["agent-9".into()]).await;
    let pid = s.child.pid();
    let before = rss_bytes(pid);
    // 0xFFFF_FFFF once aborted the supervisor; 10,000,000 left it holding
    // 776 MB for good; 1 is merely not the next id.
    for id in [0xFFFF_FFFF, 10_000_000, 1] {
        let h = Hostile::connect(s.addr, &material(s.dir.path(), "agent-9"), ALPN_AGENT).await;
        let end = h
            .send_and_wait(&[hello("agent-9"), batch_with_series_id(id, "cpu")])
            .await;
        assert_eq!(end.code, u64::from(close::PROTOCOL), "{end:?}");
        assert!(
            end.reason.contains(&format!(
                "series {id} is not the next series id of this connection (0)"
            )),
            "{end:?}"
        );
        assert!(
            !end.frames.iter().any(|f| matches!(f, Frame::Ack { .. })),
            "nothing acknowledged: {end:?}"
        );
    }
    let after = rss_bytes(pid);
    eprintln!(
        "supervisor RSS before {:.1} MiB, after the sparse-id batches {:.1} MiB",
        before as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(after < before + 32 * MIB, "RSS {before} -> {after}");
    s.honest_progress(3).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_is_refused_or_bounded_and_memory_stays_flat() {
    let ids: Vec<String> = (0..20).map(|i| format!("flood-{i}")).collect();
    let s = setup(&ids).await;
    let pid = s.child.pid();
    let before = rss_bytes(pid);
    // A Hello frame of the largest size, never finished: the supervisor
    // holds at most one frame and one window per connection until the
    // Hello deadline closes it.
    let max = vcp_common::protocol::DEFAULT_MAX_FRAME as u32;
    let mut first = max.to_le_bytes().to_vec();
    first.push(1);
    first.resize(MIB as usize, 0xAB);
    let mib = Arc::new(first);
    let mut peers = Vec::new();
    let mut opened = 0;
    let mut tasks = tokio::task::JoinSet::new();
    for id in &ids {
        let h = Hostile::connect(s.addr, &material(s.dir.path(), id), ALPN_AGENT).await;
        // 1,000 streams of 1 MiB each, never read: the protocol's one
        // stream is all the supervisor grants.
        for _ in 0..50 {
            match tokio::time::timeout(Duration::from_millis(100), h.conn.open_bi()).await {
                Ok(Ok((mut send, recv))) => {
                    opened += 1;
                    let data = mib.clone();
                    tasks.spawn(async move {
                        let _ = send.write_all(&data).await;
                        (send, recv)
                    });
                }
                _ => break,
            }
        }
        let uni = tokio::time::timeout(Duration::from_millis(100), h.conn.open_uni()).await;
        assert!(uni.is_err(), "no unidirectional stream is granted");
        peers.push(h);
    }
    assert_eq!(opened, ids.len(), "one stream per connection");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = rss_bytes(pid);
    // Every flooding connection is closed: no Hello within the deadline.
    for h in &peers {
        let (code, reason) = h.closed().await;
        assert_eq!(code, u64::from(close::PROTOCOL), "{reason}");
    }
    tasks.shutdown().await;
    drop(peers);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_bytes(pid);
    eprintln!(
        "supervisor RSS before the flood {:.1} MiB, during {:.1} MiB, after {:.1} MiB",
        before as f64 / MIB as f64,
        during as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(
        during < before + 96 * MIB,
        "RSS {before} -> {during} during"
    );
    assert!(after < before + 96 * MIB, "RSS {before} -> {after} after");
    s.honest_progress(3).await;
    s.stop().await;
}
