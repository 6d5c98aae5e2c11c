//! Agents that break the protocol, against an in-process supervisor.

use std::time::Duration;

use vcp_common::frame::{Frame, ALPN_AGENT};
use vcp_common::protocol::close;

use crate::common::hostile::{batch_with_series_id, hello, Hostile};
use crate::common::{fast, init_logs, wait_until};
use vcp::loopback::Loopback;

async fn fleet(agents: usize, limits: &str) -> (Loopback, tempfile::TempDir) {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = fast(agents, dir.path());
    opts.control = vcp_supervisor::config::SupervisorFile::parse(
        &format!("[limits]\n{limits}"),
        std::path::Path::new("limits.toml"),
    )
    .unwrap();
    (Loopback::start(opts).await.unwrap(), dir)
}

fn cert(fleet: &Loopback, id: &str) -> vcp_common::identity::TlsMaterial {
    fleet.ca.material(&fleet.ca.agent(id).unwrap())
}

async fn batches_of(fleet: &Loopback, id: &str) -> u64 {
    fleet
        .supervisor()
        .fleet
        .summaries()
        .into_iter()
        .find(|a| a.id == id)
        .map_or(0, |a| a.batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_handshakes_from_one_address() {
    // Every unvalidated address must retry; at most 64 handshakes at once.
    let (fleet, _dir) = fleet(1, "retry_above = 0\nmax_handshakes = 64").await;
    wait_until("the honest agent", Duration::from_secs(20), || {
        fleet
            .supervisor()
            .fleet
            .summaries()
            .iter()
            .any(|a| a.batches >= 2)
    })
    .await;
    let material = cert(&fleet, "agent-9");
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        vcp_transport::tls::client_config(&material, ALPN_AGENT, 1 << 20).unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let connecting = endpoint
            .connect(fleet.addr, vcp_common::identity::SUPERVISOR_NAME)
            .unwrap();
        tasks.spawn(async move { tokio::time::timeout(Duration::from_secs(20), connecting).await });
    }
    let mut connected = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Ok(Ok(c))) = r {
            connected.push(c);
        }
    }
    let sup = fleet.supervisor();
    let e = &sup.fleet.endpoint;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let (retries, refused) = (get(&e.retries), get(&e.refused_handshakes));
    assert!(
        retries + refused >= 200,
        "each attempt retried or refused: {retries} retries, {refused} refused"
    );
    assert!(!connected.is_empty());
    // One certificate, one live session: every newer one replaced the last.
    let replaced = || {
        connected
            .iter()
            .filter(|c| {
                matches!(c.close_reason(), Some(quinn::ConnectionError::ApplicationClosed(a))
                    if a.error_code == close::REPLACED.into())
            })
            .count()
    };
    wait_until(
        "all but the newest replaced",
        // 200 sessions closed one after another: generous on a busy machine.
        Duration::from_secs(30),
        || replaced() + 1 >= connected.len(),
    )
    .await;
    assert!(sup.live.len() <= 2, "live sessions: {}", sup.live.len());
    let before = batches_of(&fleet, "agent-1").await;
    wait_until("the honest agent goes on", Duration::from_secs(20), || {
        fleet
            .supervisor()
            .fleet
            .summaries()
            .iter()
            .any(|a| a.id == "agent-1" && a.batches >= before + 3)
    })
    .await;
    drop(connected);
    endpoint.close(0u32.into(), b"done");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_session_with_the_same_agent_id_replaces_the_first() {
    let (fleet, _dir) = fleet(0, "[limits.agent]\nhello_timeout_ms = 3000").await;
    let material = cert(&fleet, "agent-9");
    // Neither sends a Hello: one live session per identity is counted from
    // the handshake.
    let first = Hostile::connect(fleet.addr, &material, ALPN_AGENT).await;
    let second = Hostile::connect(fleet.addr, &material, ALPN_AGENT).await;
    let (code, reason) = first.closed().await;
    assert_eq!(code, u64::from(close::REPLACED), "{reason}");
    assert!(
        reason.contains("replaced by a newer connection of agent agent-9"),
        "{reason}"
    );
    assert_eq!(fleet.supervisor().live.len(), 1);
    // The survivor still has to say Hello in time.
    let (code, reason) = second.closed().await;
    assert_eq!(code, u64::from(close::PROTOCOL));
    assert!(reason.contains("no Hello within 3s"), "{reason}");
    wait_until("handles let go", Duration::from_secs(5), || {
        fleet.supervisor().live.is_empty()
    })
    .await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_frame_up_to_u64_max_is_refused_and_moves_nothing() {
    let (fleet, _dir) = fleet(0, "").await;
    let h = Hostile::connect(fleet.addr, &cert(&fleet, "agent-9"), ALPN_AGENT).await;
    let end = h
        .send_and_wait(&[
            hello("agent-9"),
            Frame::Dropped {
                up_to: u64::MAX,
                readings: 1,
            },
        ])
        .await;
    assert_eq!(end.code, u64::from(close::PROTOCOL), "{end:?}");
    assert!(
        end.reason.contains("Dropped: a gap from batch 0 to 18446744073709551615 exceeds the limit of 10000000 batches"),
        "{end:?}"
    );
    let a = fleet
        .supervisor()
        .fleet
        .summaries()
        .into_iter()
        .find(|a| a.id == "agent-9")
        .unwrap();
    assert_eq!((a.last_seq, a.lost_batches), (0, 0));
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_id_with_dot_dot_is_refused_at_the_decoder() {
    let (fleet, _dir) = fleet(0, "").await;
    let h = Hostile::connect(fleet.addr, &cert(&fleet, "agent-9"), ALPN_AGENT).await;
    let end = h
        .send_and_wait(&[hello("agent-9"), batch_with_series_id(0, "cgroup/web/../x")])
        .await;
    assert_eq!(end.code, u64::from(close::PROTOCOL), "{end:?}");
    assert!(
        end.reason
            .contains("resource id \"cgroup/web/../x\" has a '.' or '..' segment"),
        "{end:?}"
    );
    assert_eq!(batches_of(&fleet, "agent-9").await, 0);
    fleet.stop().await;
}
