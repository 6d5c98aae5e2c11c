//! Peers that must not get in, or must be thrown out without harming the
//! others: a foreign certificate, an id that is not the certificate's, and
//! garbage after a valid handshake.

mod common;

use std::time::Duration;

use common::{init_logs, start, wait_until};
use vcp::certs::FleetCa;
use vcp::loopback::Loopback;
use vcp_agent::Agent;
use vcp_common::batch::{Batch, Column, SeriesTable};
use vcp_common::codec::BatchEncoder;
use vcp_common::frame::{encode_frame, Frame, Hello, PROTOCOL_VERSION};
use vcp_common::identity::SUPERVISOR_NAME;
use vcp_common::protocol::{close, FrameBuffer};

/// A hand-driven peer with a valid certificate for `id`: sends `frames`
/// and returns how the supervisor closed the connection, plus any frames
/// it answered with.
async fn raw_peer(
    fleet: &Loopback,
    id: &str,
    frames: &[Frame],
) -> (quinn::ApplicationClose, Vec<Frame>) {
    let material = fleet.ca.material(&fleet.ca.agent(id).unwrap());
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        vcp_transport::tls::client_config(&material, vcp_common::frame::ALPN_AGENT, 1 << 20)
            .unwrap(),
    );
    let conn = endpoint
        .connect(fleet.addr, SUPERVISOR_NAME)
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut bytes = Vec::new();
    for f in frames {
        encode_frame(f, &mut bytes);
    }
    send.write_all(&bytes).await.unwrap();
    let mut answers = Vec::new();
    let mut buf = FrameBuffer::new(1 << 20);
    let mut chunk = vec![0; 4096];
    while let Ok(Ok(Some(n))) =
        tokio::time::timeout(Duration::from_secs(10), recv.read(&mut chunk)).await
    {
        buf.extend(&chunk[..n]);
        while let Some((f, _)) = buf.next_frame().unwrap() {
            answers.push(f);
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("closed by the supervisor");
    match reason {
        quinn::ConnectionError::ApplicationClosed(c) => (c, answers),
        other => panic!("unexpected close: {other}"),
    }
}

fn hello(id: &str, protocol: u16) -> Frame {
    Frame::Hello(Hello {
        protocol,
        agent_id: id.into(),
        hostname: "raw".into(),
        incarnation: 1,
        first_seq: 1,
    })
}

fn reason(c: &quinn::ApplicationClose) -> String {
    String::from_utf8_lossy(&c.reason).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_certificate_and_wrong_id_are_refused() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(1, dir.path()).await;

    // A certificate from another CA: the TLS handshake fails.
    let other = FleetCa::new("someone else").unwrap();
    let mut foreign = other.material(&other.agent("agent-7").unwrap());
    foreign.ca = fleet.ca.material(&fleet.ca.supervisor().unwrap()).ca;
    let a7 = Agent::start(fleet.agent_options("agent-7", foreign)).unwrap();

    // A valid certificate for agent-1 used to claim agent-8: refused after the Hello.
    let a8 = Agent::start(fleet.agent_options(
        "agent-8",
        fleet.ca.material(&fleet.ca.agent("agent-1").unwrap()),
    ))
    .unwrap();

    let sup = fleet.supervisor().fleet.clone();
    wait_until(
        "the honest agent to deliver",
        Duration::from_secs(20),
        || {
            sup.summaries()
                .iter()
                .any(|a| a.id == "agent-1" && a.batches >= 5)
        },
    )
    .await;
    let ids: Vec<_> = sup.summaries().into_iter().map(|a| a.id).collect();
    assert_eq!(
        ids,
        vec!["agent-1".to_string()],
        "only the honest agent is known"
    );
    for bad in [&a7, &a8] {
        assert_eq!(
            bad.status.since_ack(std::time::Instant::now()),
            None,
            "a refused agent is never acknowledged"
        );
    }
    a7.stop().await;
    a8.stop().await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_that_connection_only() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(2, dir.path()).await;
    let sup = fleet.supervisor().fleet.clone();
    wait_until("agents to deliver", Duration::from_secs(20), || {
        let s = sup.summaries();
        s.len() == 2 && s.iter().all(|a| a.batches >= 2)
    })
    .await;

    // A peer with a valid certificate that sends a good Hello, then garbage.
    let garbage = Frame::Batch(b"this is not a zstd stream at all".to_vec());
    let (c, _) = raw_peer(
        &fleet,
        "agent-9",
        &[hello("agent-9", PROTOCOL_VERSION), garbage],
    )
    .await;
    assert_eq!(c.error_code, close::PROTOCOL.into());
    assert!(reason(&c).contains("bad batch"), "reason: {}", reason(&c));

    // The others carry on.
    let before: Vec<_> = sup
        .summaries()
        .into_iter()
        .filter(|a| a.id != "agent-9")
        .map(|a| a.batches)
        .collect();
    wait_until(
        "the others to keep delivering",
        Duration::from_secs(20),
        || {
            let now: Vec<_> = sup
                .summaries()
                .into_iter()
                .filter(|a| a.id != "agent-9")
                .map(|a| a.batches)
                .collect();
            now.iter().zip(&before).all(|(n, b)| n >= &(b + 3))
        },
    )
    .await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_and_sequence_gap_are_refused_with_a_reason() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(0, dir.path()).await;

    let (c, answers) = raw_peer(&fleet, "agent-5", &[hello("agent-5", PROTOCOL_VERSION + 1)]).await;
    assert_eq!(c.error_code, close::VERSION.into());
    assert!(
        reason(&c).contains(&format!("protocol version {}", PROTOCOL_VERSION + 1)),
        "reason: {}",
        reason(&c)
    );
    assert!(
        matches!(answers.as_slice(), [Frame::Close { reason }] if reason.contains("not supported")),
        "the refusal is also said in-band: {answers:?}"
    );

    // Batches 1 then 3: the supervisor applies 1 and refuses the gap.
    let mut table = SeriesTable::new();
    let id = table.intern("memory", "memory.total", 0);
    let mut enc = BatchEncoder::new(3).unwrap();
    let mut frames = vec![hello("agent-6", PROTOCOL_VERSION)];
    for seq in [1, 3] {
        let batch = Batch {
            seq,
            timestamps: vec![1_000 * seq as i64],
            columns: vec![Column {
                series: id,
                start: 0,
                values: vec![42.0],
            }],
        };
        let mut payload = Vec::new();
        enc.encode(&batch, &table, &mut payload).unwrap();
        frames.push(Frame::Batch(payload));
    }
    let (c, answers) = raw_peer(&fleet, "agent-6", &frames).await;
    assert_eq!(c.error_code, close::PROTOCOL.into());
    assert!(
        reason(&c).contains("sequence gap: expected batch 2, got 3"),
        "reason: {}",
        reason(&c)
    );
    assert!(
        answers.contains(&Frame::Ack { seq: 1 }),
        "batch 1 was applied: {answers:?}"
    );
    let sup = fleet.supervisor().fleet.clone();
    let a6 = sup
        .summaries()
        .into_iter()
        .find(|a| a.id == "agent-6")
        .unwrap();
    assert_eq!((a6.batches, a6.readings, a6.last_seq), (1, 1, 1));
    fleet.stop().await;
}
