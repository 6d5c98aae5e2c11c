//! A whole agent session from arbitrary bytes: the stream's bytes, commits
//! (or failed ones), the passing of time, configurations to send and the
//! end of the stream, in an order the fuzzer picks, applied to an
//! in-memory view the way the supervisor's ingest driver applies them.

use std::time::{Duration, Instant};

use vcp_common::batch::Batch;
use vcp_common::codec::Limits;
use vcp_common::frame::{Configure, Frame};
use vcp_common::module::Target;
use vcp_common::protocol::FrameBuffer;
use vcp_common::session::agent::{AgentEvent, AgentLimits, AgentRecord, AgentSession};
use vcp_common::session::cursor::Cursor;
use vcp_core::view::{Carry, HostSnapshot};

use super::Script;

/// The agent's id, as its certificate would name it.
pub const PEER: &str = "agent-1";

/// Small limits, so the fuzzer reaches them.
pub fn limits() -> AgentLimits {
    AgentLimits {
        max_frame: 1 << 16,
        batch: Limits {
            max_batch_bytes: 1 << 16,
            max_series: 64,
            max_readings: 4096,
            max_timestamps: 256,
            max_name_len: 64,
        },
        readings_per_second: 5_000.0,
        readings_burst: 20_000.0,
        frames_per_second: 100.0,
        frames_burst: 100.0,
        hello_timeout: Duration::from_secs(5),
        max_skip_batches: 1_000,
    }
}

/// Script steps (each one byte, then its arguments).
pub mod op {
    /// `u16` length, then that many stream bytes.
    pub const FEED: u8 = 0;
    /// Leave the pending commit pending this step.
    pub const HOLD: u8 = 1;
    /// One byte: time passes by that many × 20 ms.
    pub const WAIT: u8 = 2;
    /// A configuration for the agent.
    pub const CONFIGURE: u8 = 3;
    /// The agent finishes its stream.
    pub const FINISH: u8 = 4;
    /// The pending commit fails.
    pub const FAIL: u8 = 5;
    pub const COUNT: u8 = 6;
}

/// What the harness knows to check the session against.
struct Checker {
    limits: AgentLimits,
    view: HostSnapshot,
    carry: Carry,
    /// The record of the Persist not yet committed.
    pending: Option<AgentRecord>,
    /// The last record made durable.
    committed: AgentRecord,
    closed: bool,
    out: FrameBuffer,
    reached: Reached,
}

impl Checker {
    fn events(&mut self, s: &mut AgentSession) {
        while let Some(ev) = s.poll_event() {
            assert!(!self.closed, "an event after the session closed: {ev:?}");
            match ev {
                AgentEvent::Persist(r) => {
                    assert!(self.pending.is_none(), "two Persists out at once");
                    if r.cursor.incarnation == self.committed.cursor.incarnation {
                        assert!(
                            r.cursor.last_seq >= self.committed.cursor.last_seq,
                            "the cursor went back: {:?} -> {:?}",
                            self.committed.cursor,
                            r.cursor
                        );
                    }
                    self.pending = Some(r);
                }
                AgentEvent::Apply { new_series, batch } => {
                    self.reached.applied += 1;
                    self.apply(&new_series, &batch)
                }
                AgentEvent::Define { new_series } => self.apply(&new_series, &Batch::default()),
                AgentEvent::Closed(_) => self.closed = true,
                AgentEvent::Connected { .. }
                | AgentEvent::Dropped { .. }
                | AgentEvent::Applied(_) => {}
            }
        }
        assert!(s.series_count() <= self.limits.batch.max_series);
    }

    fn apply(&mut self, new_series: &[vcp_common::batch::SeriesDef], batch: &Batch) {
        self.view = self.view.with_batch(1, new_series, batch, &mut self.carry);
        assert!(self.view.series.len() <= self.limits.batch.max_series);
        assert_eq!(self.view.series.len(), self.view.latest.len());
        for (i, d) in self.view.series.iter().enumerate() {
            assert_eq!(d.id as usize, i, "the view is indexed by slot");
        }
    }

    /// What the session wrote: acknowledgements name exactly what is durable.
    fn transmit(&mut self, s: &mut AgentSession) {
        let bytes = s.take_transmit();
        assert!(
            bytes.len() < 1 << 20,
            "one step wrote {} bytes",
            bytes.len()
        );
        self.out.extend(&bytes);
        while let Some((f, _)) = self
            .out
            .next_frame()
            .expect("the session's own frames decode")
        {
            let durable = self.committed.cursor.last_seq;
            match f {
                Frame::Ack { seq } => {
                    assert_eq!(seq, durable, "Ack of what is not durable");
                    self.reached.acks += 1;
                }
                Frame::Welcome(w) => assert_eq!(w.last_applied, Some(durable)),
                _ => {}
            }
        }
    }
}

/// Drives one agent session with the script in `data`.
pub fn agent_session(data: &[u8]) {
    run(data);
}

/// How far a script got: batches applied, acknowledgements sent, whether
/// the session closed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub applied: u64,
    pub acks: u64,
    pub closed: bool,
}

/// [`agent_session`], saying how far the script got.
pub fn run(data: &[u8]) -> Reached {
    let mut script = Script::new(data);
    let start = Instant::now();
    let mut now = start;
    let Some(first) = script.byte() else {
        return Reached::default();
    };
    // Odd: an agent the supervisor already knows.
    let committed = if first & 1 == 1 {
        AgentRecord {
            cursor: Cursor {
                incarnation: 1,
                last_seq: u64::from(first >> 1),
            },
            ..AgentRecord::default()
        }
    } else {
        AgentRecord::default()
    };
    let limits = limits();
    let Ok(mut s) = AgentSession::new(PEER, committed, limits.clone(), now) else {
        return Reached::default();
    };
    let mut c = Checker {
        limits,
        view: HostSnapshot::default(),
        carry: Carry::default(),
        pending: None,
        committed,
        closed: false,
        out: FrameBuffer::new(1 << 20),
        reached: Reached::default(),
    };
    let mut next_id = 1;
    while let Some(step) = script.byte() {
        let op = step % op::COUNT;
        match op {
            op::FEED => {
                let n = usize::from(script.u16().unwrap_or(0));
                s.handle_input(script.take(n), now);
            }
            op::WAIT => {
                let n = script.byte().unwrap_or(0);
                now += Duration::from_millis(20 * u64::from(n));
                s.handle_timeout(now);
            }
            op::CONFIGURE => {
                s.send_configure(Configure {
                    id: next_id,
                    round: 1,
                    target: Target::ServiceSet("web".into()),
                    parameter: "instances".into(),
                    value: 2.0,
                });
                next_id += 1;
            }
            op::FINISH => s.handle_finished(now),
            _ => {}
        }
        c.events(&mut s);
        c.transmit(&mut s);
        if op != op::HOLD {
            if let Some(r) = c.pending.take() {
                if op == op::FAIL {
                    s.persist_failed("injected");
                } else {
                    c.committed = r;
                    s.committed(now);
                }
                c.events(&mut s);
                c.transmit(&mut s);
            }
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
            c.events(&mut s);
            c.transmit(&mut s);
        }
    }
    c.reached.closed = c.closed;
    c.reached
}
