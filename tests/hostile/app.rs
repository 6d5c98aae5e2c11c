//! Local garbage at the agent's application-metrics endpoint: malformed
//! lines, resources the agent's config does not list, and a flood of
//! made-up series never reach the supervisor as series, and never cut the
//! host off from it.

use std::net::UdpSocket;
use std::time::Duration;

use crate::common::{fast, init_logs, wait_until};
use vcp::loopback::Loopback;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_endpoint_garbage_and_unlisted_resources_stay_on_the_host() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Loopback::start(fast(0, dir.path())).await.unwrap();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fleet
        .add_agent("agent-1", |o| {
            o.sensors.app_port = Some(port);
            o.sensors.app_resources = vec!["app/web".into()];
            o.sensors.app_max_series = 8;
        })
        .unwrap();
    let sup = fleet.supervisor().fleet.clone();
    let host = |id: &str| sup.view.hosts().get(id).map(|c| c.load());
    wait_until("the agent reports", Duration::from_secs(20), || {
        host("agent-1").is_some_and(|h| h.readings().count() > 0)
    })
    .await;
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |text: &str| {
        tx.send_to(text.as_bytes(), ("127.0.0.1", port)).unwrap();
    };
    // Garbage, an unlisted resource, a climbing one, and 5,000 made-up
    // resources: none of it may become a series.
    send("app.latency.p95:0.08|g|#resource:app/web\n");
    send("\u{0}\u{1}garbage\nnot a line\napp.latency.p95:-1|g\n");
    send("app.latency.p95:0.5|g|#resource:cgroup/system.slice/sshd.service\n");
    send("app.latency.p95:0.5|g|#resource:app/web/../../etc\n");
    for i in 0..5_000 {
        send(&format!(
            "app.queue_depth:{i}|g|#resource:app/made-up-{i}\n"
        ));
    }
    wait_until(
        "the listed reading arrives",
        Duration::from_secs(20),
        || host("agent-1").is_some_and(|h| h.get("app/web", "app.latency.p95").is_some()),
    )
    .await;
    // A few more windows, so anything that leaked would have arrived.
    let before = sup.summaries()[0].batches;
    wait_until("more batches", Duration::from_secs(20), || {
        sup.summaries()[0].batches >= before + 5
    })
    .await;
    let snap = host("agent-1").unwrap();
    let app: Vec<&str> = snap
        .readings()
        .filter(|(d, _)| d.metric.starts_with("app.") && d.resource != "agent")
        .map(|(d, _)| d.resource.as_str())
        .collect();
    assert_eq!(app, ["app/web"], "only the listed resource");
    // (The kernel drops what overflows the socket's buffer: not all 5,000
    // reach the endpoint.)
    let unlisted = snap.get("agent", "app.unlisted_lines").map(|l| l.value);
    assert!(
        unlisted.is_some_and(|n| n >= 2.0),
        "unlisted counted: {unlisted:?}"
    );
    let malformed = snap.get("agent", "app.malformed_lines").map(|l| l.value);
    assert!(
        malformed.is_some_and(|n| n >= 3.0),
        "malformed counted: {malformed:?}"
    );
    let a = &sup.summaries()[0];
    assert!(a.connected && a.batches > 0);
    assert_eq!(
        fleet.agents[0]
            .1
            .counters
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "never cut off"
    );
    fleet.stop().await;
}
