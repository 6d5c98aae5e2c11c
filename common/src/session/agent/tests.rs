//! The agent session driven by hand: time and commits are the test's.

use std::time::{Duration, Instant};

use super::*;
use crate::batch::Batch;
use crate::batch::{Column, SeriesTable};
use crate::codec::BatchEncoder;
use crate::codec::Limits;
use crate::frame::encode_frame;
use crate::frame::Applied;
use crate::session::cursor::Cursor;

const ID: &str = "agent-1";

fn hello(incarnation: u64, first_seq: u64) -> Frame {
    Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        agent_id: ID.into(),
        hostname: "h".into(),
        incarnation,
        first_seq,
    })
}

fn bytes(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        encode_frame(f, &mut out);
    }
    out
}

/// An agent's side: numbers batches of `n` readings and encodes them.
struct Agent {
    table: SeriesTable,
    enc: BatchEncoder,
    seq: u64,
}

impl Agent {
    fn new() -> Self {
        let mut table = SeriesTable::new();
        table.intern("cpu", "cpu.utilization", -4);
        table.intern("memory", "memory.used", 0);
        Agent {
            table,
            enc: BatchEncoder::new(3).unwrap(),
            seq: 0,
        }
    }

    fn batch(&mut self) -> Frame {
        self.seq += 1;
        let b = Batch {
            seq: self.seq,
            timestamps: vec![1_700_000_000_000 + self.seq as i64 * 1000],
            columns: vec![
                Column {
                    series: 0,
                    start: 0,
                    values: vec![0.5],
                },
                Column {
                    series: 1,
                    start: 0,
                    values: vec![1e9],
                },
            ],
        };
        let mut payload = Vec::new();
        self.enc.encode(&b, &self.table, &mut payload).unwrap();
        Frame::Batch(payload)
    }
}

fn session(limits: AgentLimits, now: Instant) -> AgentSession {
    AgentSession::new(ID, AgentRecord::default(), limits, now).unwrap()
}

fn events(s: &mut AgentSession) -> Vec<AgentEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn frames_out(s: &mut AgentSession) -> Vec<Frame> {
    let out = s.take_transmit();
    let mut fb = crate::protocol::FrameBuffer::new(1 << 20);
    fb.extend(&out);
    std::iter::from_fn(|| fb.next_frame().unwrap().map(|(f, _)| f)).collect()
}

fn closed(evs: &[AgentEvent]) -> Option<&Close> {
    evs.iter().find_map(|e| match e {
        AgentEvent::Closed(c) => Some(c),
        _ => None,
    })
}

/// A session past its Hello, committed and welcomed.
fn welcomed(limits: AgentLimits, now: Instant) -> AgentSession {
    let mut s = session(limits, now);
    s.handle_input(&bytes(&[hello(7, 1)]), now);
    assert!(matches!(events(&mut s)[..], [AgentEvent::Persist(_)]));
    s.committed(now);
    assert!(matches!(events(&mut s)[..], [AgentEvent::Connected { .. }]));
    assert!(matches!(frames_out(&mut s)[..], [Frame::Welcome(_)]));
    s
}

#[test]
fn hello_is_persisted_before_the_welcome_and_a_burst_is_one_commit_and_one_ack() {
    let t = Instant::now();
    let mut s = session(AgentLimits::default(), t);
    let mut agent = Agent::new();
    // The Hello and the first batches arrive in one read: the batches wait
    // until the Hello's record is durable.
    let burst: Vec<Frame> = (0..3).map(|_| agent.batch()).collect();
    let mut input = bytes(&[hello(7, 1)]);
    input.extend(bytes(&burst));
    s.handle_input(&input, t);
    let ev = events(&mut s);
    assert!(matches!(ev[..], [AgentEvent::Persist(r)] if r.cursor.incarnation == 7));
    assert!(s.take_transmit().is_empty(), "nothing before the commit");
    assert!(!s.wants_input(t));
    s.committed(t);
    let ev = events(&mut s);
    let applied = ev
        .iter()
        .filter(|e| matches!(e, AgentEvent::Apply { .. }))
        .count();
    assert_eq!(applied, 3);
    assert!(matches!(ev[0], AgentEvent::Connected { skipped: 0, .. }));
    assert!(matches!(ev.last(), Some(AgentEvent::Persist(r)) if r.cursor.last_seq == 3));
    // Only the Welcome so far; the Ack waits for the burst's commit.
    assert!(matches!(frames_out(&mut s)[..], [Frame::Welcome(_)]));
    s.committed(t);
    assert_eq!(frames_out(&mut s), [Frame::Ack { seq: 3 }]);
    assert_eq!(s.record().totals.batches, 3);
    assert_eq!(s.record().totals.readings, 6);
}

#[test]
fn a_failed_commit_acknowledges_nothing() {
    let t = Instant::now();
    let mut s = welcomed(AgentLimits::default(), t);
    let mut agent = Agent::new();
    s.handle_input(&bytes(&[agent.batch()]), t);
    assert!(matches!(
        events(&mut s).last(),
        Some(AgentEvent::Persist(_))
    ));
    s.persist_failed("disk I/O error");
    let ev = events(&mut s);
    let c = closed(&ev).unwrap();
    assert_eq!(c.code, close::INTERNAL);
    let out = frames_out(&mut s);
    assert!(
        !out.iter().any(|f| matches!(f, Frame::Ack { .. })),
        "{out:?}"
    );
}

#[test]
fn the_certificate_names_the_agent_and_the_version_must_match() {
    let t = Instant::now();
    let mut s = session(AgentLimits::default(), t);
    let mut h = hello(1, 1);
    if let Frame::Hello(h) = &mut h {
        h.agent_id = "agent-2".into();
    }
    s.handle_input(&bytes(&[h]), t);
    let ev = events(&mut s);
    let c = closed(&ev).unwrap();
    assert_eq!(c.code, close::AUTH);
    assert!(
        c.reason.contains("\"agent-1\"") && c.reason.contains("\"agent-2\""),
        "{}",
        c.reason
    );
    assert!(matches!(frames_out(&mut s)[..], [Frame::Close { .. }]));

    let mut s = session(AgentLimits::default(), t);
    let mut h = hello(1, 1);
    if let Frame::Hello(h) = &mut h {
        h.protocol = 1;
    }
    s.handle_input(&bytes(&[h]), t);
    assert_eq!(closed(&events(&mut s)).unwrap().code, close::VERSION);

    // A peer's texts are bounded before they reach a log or a report.
    let mut s = session(AgentLimits::default(), t);
    let mut h = hello(1, 1);
    if let Frame::Hello(h) = &mut h {
        h.hostname = "h".repeat(300);
    }
    s.handle_input(&bytes(&[h]), t);
    assert!(closed(&events(&mut s))
        .unwrap()
        .reason
        .contains("a hostname of 300 bytes"));
    let mut s = welcomed(AgentLimits::default(), t);
    let bye = Frame::Close {
        reason: "é".repeat(100_000),
    };
    s.handle_input(&bytes(&[bye]), t);
    let ev = events(&mut s);
    assert!(closed(&ev).unwrap().reason.len() < 2 * crate::session::MAX_PEER_TEXT);
}

#[test]
fn no_hello_by_the_deadline_closes() {
    let t = Instant::now();
    let limits = AgentLimits {
        hello_timeout: Duration::from_secs(2),
        ..AgentLimits::default()
    };
    let mut s = session(limits, t);
    assert_eq!(s.poll_timeout(), Some(t + Duration::from_secs(2)));
    s.handle_timeout(t + Duration::from_secs(1));
    assert!(!s.is_closed());
    s.handle_timeout(t + Duration::from_secs(2));
    let ev = events(&mut s);
    assert!(closed(&ev).unwrap().reason.contains("no Hello within 2s"));
}

#[test]
fn absurd_gaps_close_the_session_and_move_nothing() {
    let t = Instant::now();
    let mut s = welcomed(AgentLimits::default(), t);
    s.handle_input(
        &bytes(&[Frame::Dropped {
            up_to: u64::MAX,
            readings: 1,
        }]),
        t,
    );
    let ev = events(&mut s);
    let c = closed(&ev).unwrap();
    assert_eq!(c.code, close::PROTOCOL);
    assert!(c.reason.contains("exceeds the limit"), "{}", c.reason);
    assert_eq!(s.record().cursor.last_seq, 0);

    // Within the limit, but more readings than the batches could hold.
    let mut s = welcomed(AgentLimits::default(), t);
    s.handle_input(
        &bytes(&[Frame::Dropped {
            up_to: 2,
            readings: u64::MAX,
        }]),
        t,
    );
    assert!(closed(&events(&mut s)).is_some());
    assert_eq!(s.record().cursor.last_seq, 0);

    // A Hello that claims to start past the limit.
    let mut s = session(AgentLimits::default(), t);
    s.handle_input(&bytes(&[hello(9, u64::MAX)]), t);
    assert!(closed(&events(&mut s)).is_some());

    // An honest declaration is counted.
    let mut s = welcomed(AgentLimits::default(), t);
    s.handle_input(
        &bytes(&[Frame::Dropped {
            up_to: 4,
            readings: 40,
        }]),
        t,
    );
    let ev = events(&mut s);
    assert!(matches!(
        ev[..],
        [
            AgentEvent::Dropped {
                up_to: 4,
                readings: 40,
                skipped: 4
            },
            AgentEvent::Persist(_)
        ]
    ));
    assert_eq!(s.record().totals.lost_batches, 4);
    assert_eq!(s.record().totals.lost_readings, 40);
}

#[test]
fn past_the_readings_rate_the_session_stops_reading_until_the_debt_is_paid() {
    let t = Instant::now();
    let limits = AgentLimits {
        readings_per_second: 2.0,
        readings_burst: 2.0,
        ..AgentLimits::default()
    };
    let mut s = welcomed(limits, t);
    let mut agent = Agent::new();
    let burst: Vec<Frame> = (0..3).map(|_| agent.batch()).collect();
    s.handle_input(&bytes(&burst), t);
    // The first batch (2 readings) empties the bucket, the second takes it
    // into debt; the third waits.
    let ev = events(&mut s);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, AgentEvent::Apply { .. }))
            .count(),
        2
    );
    s.committed(t);
    assert_eq!(frames_out(&mut s), [Frame::Ack { seq: 2 }]);
    assert!(!s.wants_input(t), "in debt by 2 readings");
    assert_eq!(s.poll_timeout(), Some(t + Duration::from_secs(1)));
    s.handle_timeout(t + Duration::from_millis(500));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t + Duration::from_secs(1));
    let ev = events(&mut s);
    assert!(
        matches!(ev[..], [AgentEvent::Apply { .. }, AgentEvent::Persist(r)] if r.cursor.last_seq == 3)
    );
    assert!(!s.is_closed());
}

#[test]
fn other_frames_past_their_rate_close_the_session() {
    let t = Instant::now();
    let limits = AgentLimits {
        frames_per_second: 10.0,
        frames_burst: 10.0,
        ..AgentLimits::default()
    };
    let mut s = welcomed(limits, t);
    let applied = Frame::Applied(Applied {
        id: 1,
        ok: true,
        detail: String::new(),
    });
    s.handle_input(&bytes(&vec![applied; 11]), t);
    let ev = events(&mut s);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, AgentEvent::Applied(_)))
            .count(),
        10
    );
    assert_eq!(closed(&ev).unwrap().code, close::LIMIT);
}

#[test]
fn series_past_the_limit_close_with_the_reason() {
    let t = Instant::now();
    let limits = AgentLimits {
        batch: Limits {
            max_series: 1,
            ..Limits::default()
        },
        ..AgentLimits::default()
    };
    let mut s = welcomed(limits, t);
    let mut agent = Agent::new();
    s.handle_input(&bytes(&[agent.batch()]), t);
    let ev = events(&mut s);
    let c = closed(&ev).unwrap();
    assert_eq!(c.code, close::LIMIT);
    assert!(
        c.reason
            .contains("series definitions: 2 exceeds the limit of 1"),
        "{}",
        c.reason
    );
    assert!(!ev.iter().any(|e| matches!(e, AgentEvent::Apply { .. })));
}

#[test]
fn gaps_duplicates_and_unexpected_frames() {
    let t = Instant::now();
    let mut s = welcomed(AgentLimits::default(), t);
    let mut agent = Agent::new();
    let b1 = agent.batch();
    s.handle_input(&bytes(&[b1]), t);
    events(&mut s);
    s.committed(t);
    frames_out(&mut s);
    // Batch 3 without 2.
    agent.seq += 1;
    s.handle_input(&bytes(&[agent.batch()]), t);
    let ev = events(&mut s);
    assert!(closed(&ev)
        .unwrap()
        .reason
        .contains("expected batch 2, got 3"));

    let mut s = welcomed(AgentLimits::default(), t);
    s.handle_input(&bytes(&[Frame::Ack { seq: 1 }]), t);
    assert!(closed(&events(&mut s)).unwrap().reason.contains("got ack"));

    let mut s = session(AgentLimits::default(), t);
    s.handle_input(&[1, 0, 0, 0, 0xEE], t);
    assert!(closed(&events(&mut s))
        .unwrap()
        .reason
        .contains("bad frame"));

    let mut s = welcomed(AgentLimits::default(), t);
    s.handle_input(&[5, 0, 0], t);
    s.handle_finished(t);
    let ev = events(&mut s);
    assert!(closed(&ev).unwrap().reason.contains("inside a frame"));
}

#[test]
fn a_resent_batch_is_a_duplicate_and_is_acknowledged() {
    let t = Instant::now();
    let record = AgentRecord {
        cursor: Cursor {
            incarnation: 7,
            last_seq: 1,
        },
        ..AgentRecord::default()
    };
    let mut s = AgentSession::new(ID, record, AgentLimits::default(), t).unwrap();
    s.handle_input(&bytes(&[hello(7, 1)]), t);
    events(&mut s);
    s.committed(t);
    events(&mut s);
    frames_out(&mut s);
    let mut agent = Agent::new();
    s.handle_input(&bytes(&[agent.batch()]), t);
    let ev = events(&mut s);
    assert!(matches!(ev[0], AgentEvent::Define { ref new_series } if new_series.len() == 2));
    s.committed(t);
    assert_eq!(frames_out(&mut s), [Frame::Ack { seq: 1 }]);
    assert_eq!(s.record().totals.duplicates, 1);
}

#[test]
fn a_bad_frame_after_good_batches_closes_only_after_they_are_acknowledged() {
    let t = Instant::now();
    let mut s = welcomed(AgentLimits::default(), t);
    let mut agent = Agent::new();
    let mut input = bytes(&[agent.batch(), agent.batch()]);
    input.extend(bytes(&[Frame::Ack { seq: 9 }]));
    s.handle_input(&input, t);
    let ev = events(&mut s);
    assert!(closed(&ev).is_none(), "not before the commit: {ev:?}");
    assert!(matches!(ev.last(), Some(AgentEvent::Persist(r)) if r.cursor.last_seq == 2));
    s.committed(t);
    let ev = events(&mut s);
    assert!(closed(&ev).unwrap().reason.contains("got ack"));
    let out = frames_out(&mut s);
    assert!(
        matches!(&out[..], [Frame::Ack { seq: 2 }, Frame::Close { .. }]),
        "{out:?}"
    );

    // The agent's own Close after its last batches: those are kept too.
    let mut s = welcomed(AgentLimits::default(), t);
    let mut agent = Agent::new();
    let mut input = bytes(&[agent.batch()]);
    input.extend(bytes(&[Frame::Close {
        reason: "bye".into(),
    }]));
    s.handle_input(&input, t);
    assert!(closed(&events(&mut s)).is_none());
    s.committed(t);
    let ev = events(&mut s);
    assert!(closed(&ev).unwrap().by_peer);
}
