//! [`AgentSession`]: the supervisor's side of one agent connection.
//!
//! ```text
//!            Hello ok              committed
//! AwaitHello ────────> Persisting ──────────> Streaming ──┐ Batch/Dropped: Apply, Persist
//!     │ no Hello by the deadline   (Welcome sent)   ^     │ committed: Ack sent
//!     v                                             └─────┘
//!   Closed <── any bad frame, a broken limit, the peer's Close or end of stream
//! ```
//!
//! The session is created once the TLS handshake named the agent (its
//! certificate), with the agent's persisted record. It checks the Hello
//! against that name, decodes batches with one [`BatchDecoder`], applies
//! each exactly once ([`Cursor`]), and asks its driver to make the record
//! durable ([`AgentEvent::Persist`]) before it acknowledges anything: all
//! the frames of one [`AgentSession::handle_input`] call (one read, a burst)
//! are applied under one commit and one `Ack`.
//!
//! Limits ([`AgentLimits`]): the frame size, the decoder's limits (series
//! per connection among them), readings per second (a token bucket: past
//! it the session stops reading until the debt is paid, so a flood slows
//! down its own agent and nobody else), other frames per second, the time
//! to the Hello, and the largest gap an agent may declare.

use std::collections::VecDeque;
use std::time::Instant;

use super::bucket::Bucket;
use super::cursor::Admit;
use super::{bounded, end_of_stream, Close, Wire};
use crate::codec::{BatchDecoder, CodecError};
use crate::frame::{Configure, Frame, Hello, Welcome, PROTOCOL_VERSION};
use crate::protocol::close;

mod record;

pub use record::{AgentEvent, AgentLimits, AgentRecord, AgentTotals, MAX_HOSTNAME};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHello {
        deadline: Instant,
    },
    /// The record changed by the Hello is being made durable.
    Welcoming,
    Streaming,
    Closed,
}

/// The supervisor's side of one agent connection. See the module docs.
pub struct AgentSession {
    peer: String,
    limits: AgentLimits,
    state: State,
    wire: Wire,
    decoder: BatchDecoder,
    record: AgentRecord,
    /// A Persist is out and not yet committed.
    persisting: bool,
    /// The record changed since the last Persist.
    dirty: bool,
    /// Why the session will close once what it applied before is durable
    /// and acknowledged (a bad frame after good ones loses nothing).
    closing: Option<Close>,
    hello: Option<Hello>,
    skipped_at_hello: u64,
    readings: Bucket,
    frames: Bucket,
    events: VecDeque<AgentEvent>,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl AgentSession {
    /// A session for the agent the certificate named `peer`, whose
    /// persisted record is `record`.
    pub fn new(
        peer: &str,
        record: AgentRecord,
        limits: AgentLimits,
        now: Instant,
    ) -> Result<Self, CodecError> {
        Ok(AgentSession {
            peer: peer.to_owned(),
            state: State::AwaitHello {
                deadline: now + limits.hello_timeout,
            },
            wire: Wire::new(limits.max_frame),
            decoder: BatchDecoder::new(limits.batch)?,
            record,
            persisting: false,
            dirty: false,
            closing: None,
            hello: None,
            skipped_at_hello: 0,
            readings: Bucket::new(limits.readings_per_second, limits.readings_burst, now),
            frames: Bucket::new(limits.frames_per_second, limits.frames_burst, now),
            events: VecDeque::new(),
            limits,
        })
    }

    /// The agent's record as the session has it now.
    pub fn record(&self) -> &AgentRecord {
        &self.record
    }

    /// The agent id the certificate named.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Series defined on this connection.
    pub fn series_count(&self) -> usize {
        self.decoder.series_count()
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the session takes more bytes now. It does not while a
    /// Persist is out, while it is over its readings rate, or once closed;
    /// [`Self::poll_timeout`] says when to ask again.
    pub fn wants_input(&self, now: Instant) -> bool {
        !self.is_closed()
            && self.closing.is_none()
            && !self.persisting
            && self.readings.is_ready(now)
    }

    /// Bytes received on the agent's stream.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        self.wire.frames.extend(bytes);
        self.process(now);
    }

    /// The agent finished its stream.
    pub fn handle_finished(&mut self, now: Instant) {
        self.process(now);
        self.end(end_of_stream(self.wire.frames.pending()));
        self.process(now);
    }

    /// The next instant at which [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitHello { deadline } => Some(deadline),
            State::Closed => None,
            _ if self.persisting => None,
            _ => self.readings.ready_at(),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::AwaitHello { deadline } = self.state {
            if now >= deadline {
                let within = self.limits.hello_timeout;
                self.fail(close::PROTOCOL, format!("no Hello within {within:?}"));
            }
            return;
        }
        self.process(now);
    }

    /// The last Persist is durable: acknowledge what it covered.
    pub fn committed(&mut self, now: Instant) {
        if !self.persisting || self.is_closed() {
            return;
        }
        self.persisting = false;
        let last_applied = self.record.cursor.last_seq;
        match self.state {
            State::Welcoming => {
                self.wire.send(&Frame::Welcome(Welcome {
                    protocol: PROTOCOL_VERSION,
                    last_applied: Some(last_applied),
                }));
                self.state = State::Streaming;
                if let Some(hello) = self.hello.take() {
                    self.events.push_back(AgentEvent::Connected {
                        hello,
                        skipped: self.skipped_at_hello,
                    });
                }
            }
            _ => self.wire.send(&Frame::Ack { seq: last_applied }),
        }
        self.process(now);
    }

    /// The last Persist could not be made durable: the session ends, and
    /// nothing it covered was acknowledged.
    pub fn persist_failed(&mut self, error: &str) {
        if !self.is_closed() {
            self.persisting = false;
            self.closing = None;
            self.close(Close {
                code: close::INTERNAL,
                reason: format!("store: {error}"),
                by_peer: false,
            });
        }
    }

    /// Queues a configuration for the agent.
    pub fn send_configure(&mut self, c: Configure) {
        if self.state == State::Streaming {
            self.wire.send(&Frame::Configure(c));
        }
    }

    /// Bytes to write to the agent's stream.
    pub fn take_transmit(&mut self) -> Vec<u8> {
        self.wire.take()
    }

    pub fn poll_event(&mut self) -> Option<AgentEvent> {
        self.events.pop_front()
    }

    fn close(&mut self, c: Close) {
        self.wire.say_close(&c);
        self.state = State::Closed;
        self.events.push_back(AgentEvent::Closed(c));
    }

    /// Closes the session with a reason — once what it applied before is
    /// durable and acknowledged.
    fn fail(&mut self, code: u32, reason: String) {
        self.end(Close {
            code,
            reason,
            by_peer: false,
        });
    }

    fn end(&mut self, c: Close) {
        if self.is_closed() || self.closing.is_some() {
            return;
        }
        if self.dirty || self.persisting {
            self.closing = Some(c);
        } else {
            self.close(c);
        }
    }

    /// Takes buffered frames while the session may; then asks for one
    /// Persist covering all of them.
    fn process(&mut self, now: Instant) {
        // After a Hello nothing more is read until its record is durable.
        while self.wants_input(now) && self.state != State::Welcoming {
            match self.wire.frames.next_frame() {
                Ok(Some((frame, wire_len))) => self.on_frame(frame, wire_len, now),
                Ok(None) => break,
                Err(e) => self.fail(close::PROTOCOL, format!("bad frame: {e}")),
            }
        }
        if self.dirty && !self.persisting && !self.is_closed() {
            self.dirty = false;
            self.persisting = true;
            self.events.push_back(AgentEvent::Persist(self.record));
        }
        if !self.persisting && !self.dirty {
            if let Some(c) = self.closing.take() {
                self.close(c);
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, wire_len: usize, now: Instant) {
        let kind = frame.frame_type();
        match (self.state, frame) {
            (State::AwaitHello { .. }, Frame::Hello(hello)) => self.on_hello(hello),
            (State::AwaitHello { .. }, other) => self.fail(
                close::PROTOCOL,
                format!("expected Hello, got {}", other.frame_type()),
            ),
            (State::Streaming, Frame::Batch(payload)) => self.on_batch(&payload, wire_len, now),
            (State::Streaming, Frame::Dropped { up_to, readings }) => {
                if self.frame_allowed(kind, now) {
                    self.on_dropped(up_to, readings);
                }
            }
            (State::Streaming, Frame::Applied(mut a)) => {
                if self.frame_allowed(kind, now) {
                    a.detail = bounded(a.detail);
                    self.events.push_back(AgentEvent::Applied(a));
                }
            }
            (_, Frame::Close { reason }) => self.end(Close {
                code: close::NORMAL,
                reason: format!("the agent closed: {}", bounded(reason)),
                by_peer: true,
            }),
            (_, other) => self.fail(
                close::PROTOCOL,
                format!(
                    "expected Batch, Dropped, Applied or Close, got {}",
                    other.frame_type()
                ),
            ),
        }
    }

    fn frame_allowed(&mut self, kind: crate::frame::FrameType, now: Instant) -> bool {
        if self.frames.try_take(1.0, now) {
            return true;
        }
        let rate = self.limits.frames_per_second;
        self.fail(
            close::LIMIT,
            format!("{kind} frames beyond the limit of {rate} frames per second"),
        );
        false
    }

    fn on_hello(&mut self, hello: Hello) {
        if hello.protocol != PROTOCOL_VERSION {
            let theirs = hello.protocol;
            return self.fail(
                close::VERSION,
                format!(
                    "protocol version {theirs} not supported (this supervisor speaks {PROTOCOL_VERSION})"
                ),
            );
        }
        if hello.agent_id != self.peer {
            let claimed = bounded(hello.agent_id);
            return self.fail(
                close::AUTH,
                format!(
                    "authentication: the certificate is agent {:?}'s, the Hello claims {claimed:?}",
                    self.peer
                ),
            );
        }
        if hello.hostname.len() > MAX_HOSTNAME {
            let n = hello.hostname.len();
            return self.fail(
                close::PROTOCOL,
                format!("Hello: a hostname of {n} bytes (at most {MAX_HOSTNAME})"),
            );
        }
        let max = self.limits.max_skip_batches;
        match self
            .record
            .cursor
            .hello(hello.incarnation, hello.first_seq, max)
        {
            Ok(skipped) => {
                self.record.totals.lost_batches += skipped;
                self.skipped_at_hello = skipped;
                self.hello = Some(hello);
                self.state = State::Welcoming;
                self.dirty = true;
            }
            Err(e) => self.fail(close::PROTOCOL, format!("Hello: {e}")),
        }
    }

    /// Hands back an applied batch: the next one is decoded into its
    /// vectors.
    pub fn recycle(&mut self, batch: crate::batch::Batch) {
        self.decoder.recycle(batch);
    }

    fn on_batch(&mut self, payload: &[u8], wire_len: usize, now: Instant) {
        let decoded = match self.decoder.decode(payload) {
            Ok(d) => d,
            Err(e) => {
                let code = match e {
                    CodecError::LimitExceeded { .. } | CodecError::BatchTooLarge { .. } => {
                        close::LIMIT
                    }
                    _ => close::PROTOCOL,
                };
                return self.fail(code, format!("bad batch: {e}"));
            }
        };
        let readings = decoded.batch.readings() as u64;
        self.readings.spend(readings as f64, now);
        let seq = decoded.batch.seq;
        let t = &mut self.record.totals;
        t.wire_bytes += wire_len as u64;
        match self.record.cursor.admit(seq) {
            Admit::Apply => {
                self.record.cursor.commit(seq);
                t.batches += 1;
                t.readings += readings;
                self.events.push_back(AgentEvent::Apply {
                    new_series: decoded.new_series,
                    batch: decoded.batch,
                });
            }
            Admit::Duplicate => {
                t.duplicates += 1;
                if !decoded.new_series.is_empty() {
                    self.events.push_back(AgentEvent::Define {
                        new_series: decoded.new_series,
                    });
                }
            }
            Admit::Gap { expected } => {
                return self.fail(
                    close::PROTOCOL,
                    format!("sequence gap: expected batch {expected}, got {seq}"),
                )
            }
            Admit::Exhausted => {
                return self.fail(close::PROTOCOL, "sequence numbers exhausted".into())
            }
        }
        self.dirty = true;
    }

    fn on_dropped(&mut self, up_to: u64, readings: u64) {
        let last = self.record.cursor.last_seq;
        let max_batch = self.limits.batch.max_readings as u64;
        let skipped = match self
            .record
            .cursor
            .skip_to(up_to, self.limits.max_skip_batches)
        {
            Ok(s) => s,
            Err(e) => return self.fail(close::PROTOCOL, format!("Dropped: {e}")),
        };
        if readings > skipped.saturating_mul(max_batch) {
            // Put the cursor back: the frame is refused whole.
            self.record.cursor.last_seq = last;
            return self.fail(
                close::PROTOCOL,
                format!(
                    "Dropped: {readings} readings in {skipped} batches exceeds {max_batch} per batch"
                ),
            );
        }
        self.record.totals.lost_batches += skipped;
        self.record.totals.lost_readings += readings;
        self.events.push_back(AgentEvent::Dropped {
            up_to,
            readings,
            skipped,
        });
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests;
