//! [`ModuleSession`]: the supervisor's side of one remote module
//! connection.
//!
//! ```text
//!               Register ok            accept()
//! AwaitRegister ──────────> Registering ───────> Serving ── solicit(): Solicit sent, round pending
//!     │ no Register by the deadline  │ refuse()      ^  │   Respond for the pending round: Response
//!     v                              v               └──┘
//!   Closed <── anything else: an unsolicited or duplicate Respond, a Respond
//!              for another round, a frame rate past the limit, a bad frame
//! ```
//!
//! The session is created once the TLS handshake named the module (its
//! certificate). A module answers each solicitation once; an answer for no
//! pending round, or for another round, is a protocol error that closes the
//! session — it is recorded ([`Close::code`] is `PROTOCOL`), never counted
//! as requests, never billed. Inbound frames are rate limited.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::bucket::Bucket;
use super::{bounded, end_of_stream, Close, Wire};
use crate::frame::{Frame, Registered};
use crate::module::{ModuleSpec, Proposal, Solicitation};
use crate::protocol::close;

/// What one module may make the supervisor hold or do.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSessionLimits {
    /// Largest frame, header included (a Respond with all its proposals).
    pub max_frame: usize,
    /// Time from the handshake to the Register.
    pub register_timeout: Duration,
    /// Sustained inbound frames per second; past it the session is closed.
    pub frames_per_second: f64,
    pub frames_burst: f64,
    /// Output parameters and sensor inputs a spec may declare.
    pub max_outputs: usize,
    pub max_inputs: usize,
    /// Goals, conditions of a goal and custom sensors a spec may declare.
    pub max_goals: usize,
    /// Bytes of any name in a spec (vendor, version, parameters, metrics).
    pub max_name: usize,
}

impl Default for ModuleSessionLimits {
    fn default() -> Self {
        ModuleSessionLimits {
            max_frame: crate::protocol::DEFAULT_MAX_FRAME,
            register_timeout: crate::protocol::HELLO_TIMEOUT,
            frames_per_second: 100.0,
            frames_burst: 100.0,
            max_outputs: 64,
            max_inputs: 256,
            max_goals: 16,
            max_name: 128,
        }
    }
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleEvent {
    /// The module registered with a well-formed spec whose id is the
    /// certificate's: the driver checks it against the configuration and
    /// calls [`ModuleSession::accept`] or [`ModuleSession::refuse`].
    Register(ModuleSpec),
    /// The module's answer to the pending round, arrived at `at`.
    Response {
        round: u64,
        proposals: Vec<Proposal>,
        at: Instant,
    },
    /// The session ended; send what [`ModuleSession::take_transmit`]
    /// holds, then close the connection with this code and reason.
    Closed(Close),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitRegister {
        deadline: Instant,
    },
    Registering,
    /// `pending` is the round solicited and not yet answered.
    Serving {
        pending: Option<u64>,
    },
    Closed,
}

/// The supervisor's side of one module connection. See the module docs.
#[derive(Debug)]
pub struct ModuleSession {
    peer: String,
    limits: ModuleSessionLimits,
    state: State,
    wire: Wire,
    frames: Bucket,
    events: VecDeque<ModuleEvent>,
}

impl ModuleSession {
    /// A session for the module the certificate named `peer`.
    pub fn new(peer: &str, limits: ModuleSessionLimits, now: Instant) -> Self {
        ModuleSession {
            peer: peer.to_owned(),
            state: State::AwaitRegister {
                deadline: now + limits.register_timeout,
            },
            wire: Wire::new(limits.max_frame),
            frames: Bucket::new(limits.frames_per_second, limits.frames_burst, now),
            events: VecDeque::new(),
            limits,
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the module is registered and has no round pending: it may
    /// be solicited.
    pub fn is_idle(&self) -> bool {
        self.state == State::Serving { pending: None }
    }

    /// The round solicited and not yet answered.
    pub fn pending(&self) -> Option<u64> {
        match self.state {
            State::Serving { pending } => pending,
            _ => None,
        }
    }

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        self.wire.frames.extend(bytes);
        while !self.is_closed() {
            match self.wire.frames.next_frame() {
                Ok(Some((frame, _))) => self.on_frame(frame, now),
                Ok(None) => break,
                Err(e) => self.fail(close::PROTOCOL, format!("bad frame: {e}")),
            }
        }
    }

    /// The module finished its stream.
    pub fn handle_finished(&mut self) {
        if !self.is_closed() {
            self.close(end_of_stream(self.wire.frames.pending()));
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitRegister { deadline } => Some(deadline),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::AwaitRegister { deadline } = self.state {
            if now >= deadline {
                let within = self.limits.register_timeout;
                self.fail(close::PROTOCOL, format!("no Register within {within:?}"));
            }
        }
    }

    /// The registration is accepted.
    pub fn accept(&mut self, registered: Registered) {
        if self.state == State::Registering {
            self.wire.send(&Frame::Registered(registered));
            self.state = State::Serving { pending: None };
        }
    }

    /// The registration is refused, with a close code and the reason.
    pub fn refuse(&mut self, code: u32, reason: String) {
        self.fail(code, reason);
    }

    /// Ends the session from the supervisor's side (its plane left force,
    /// the supervisor stops).
    pub fn end(&mut self, code: u32, reason: String) {
        self.fail(code, reason);
    }

    /// Sends a solicitation; `false` (and nothing sent) unless the module
    /// is idle.
    pub fn solicit(&mut self, s: &Solicitation) -> bool {
        if !self.is_idle() {
            return false;
        }
        self.wire.send(&Frame::Solicit(s.clone()));
        self.state = State::Serving {
            pending: Some(s.round),
        };
        true
    }

    pub fn take_transmit(&mut self) -> Vec<u8> {
        self.wire.take()
    }

    pub fn poll_event(&mut self) -> Option<ModuleEvent> {
        self.events.pop_front()
    }

    fn close(&mut self, c: Close) {
        self.wire.say_close(&c);
        self.state = State::Closed;
        self.events.push_back(ModuleEvent::Closed(c));
    }

    fn fail(&mut self, code: u32, reason: String) {
        if !self.is_closed() {
            self.close(Close {
                code,
                reason,
                by_peer: false,
            });
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        if !self.frames.try_take(1.0, now) {
            let rate = self.limits.frames_per_second;
            return self.fail(close::LIMIT, format!("more than {rate} frames per second"));
        }
        match (self.state, frame) {
            (State::AwaitRegister { .. }, Frame::Register(spec)) => self.on_register(spec),
            (_, Frame::Close { reason }) => self.close(Close {
                code: close::NORMAL,
                reason: format!("the module closed: {}", bounded(reason)),
                by_peer: true,
            }),
            (State::AwaitRegister { .. }, other) => self.fail(
                close::PROTOCOL,
                format!("expected Register, got {}", other.frame_type()),
            ),
            (State::Serving { pending }, Frame::Respond(r)) => match pending {
                Some(round) if round == r.round => {
                    self.state = State::Serving { pending: None };
                    self.events.push_back(ModuleEvent::Response {
                        round,
                        proposals: r.proposals,
                        at: now,
                    });
                }
                Some(round) => self.fail(
                    close::PROTOCOL,
                    format!(
                        "protocol: a response for round {} while round {round} is pending",
                        r.round
                    ),
                ),
                None => self.fail(
                    close::PROTOCOL,
                    format!(
                        "protocol: an unsolicited response (round {}, no round pending)",
                        r.round
                    ),
                ),
            },
            (_, other) => self.fail(
                close::PROTOCOL,
                format!("expected Respond or Close, got {}", other.frame_type()),
            ),
        }
    }

    fn on_register(&mut self, spec: ModuleSpec) {
        if spec.id != self.peer {
            let claimed = &spec.id;
            return self.fail(
                close::AUTH,
                format!(
                    "credential: the certificate is module {:?}'s, the spec claims {claimed:?}",
                    self.peer
                ),
            );
        }
        match spec_problem(&spec, &self.limits) {
            Some(p) => self.fail(close::PROTOCOL, format!("bad spec: {p}")),
            None => {
                self.state = State::Registering;
                self.events.push_back(ModuleEvent::Register(spec));
            }
        }
    }
}

/// What makes a spec unacceptable, if anything: no outputs, or more
/// outputs, inputs, goals or sensors, or longer names, than the limits.
fn spec_problem(spec: &ModuleSpec, l: &ModuleSessionLimits) -> Option<String> {
    if spec.outputs.is_empty() {
        return Some("declares no output parameters".into());
    }
    if spec.outputs.len() > l.max_outputs || spec.inputs.len() > l.max_inputs {
        return Some(format!(
            "more than {} outputs or {} inputs",
            l.max_outputs, l.max_inputs
        ));
    }
    let max = l.max_goals;
    if spec.goals.len() > max
        || spec.custom_sensors.len() > max
        || spec.goals.iter().any(|g| g.conditions.len() > max)
    {
        return Some(format!(
            "more than {max} goals, conditions of a goal or custom sensors"
        ));
    }
    let names = [spec.vendor.as_str(), spec.version.as_str()]
        .into_iter()
        .chain(spec.outputs.iter().map(String::as_str))
        .chain(
            spec.inputs.iter().flat_map(|i| {
                std::iter::once(i.metric.as_str()).chain(i.resource_prefix.as_deref())
            }),
        )
        .chain(spec.goals.iter().flat_map(|g| {
            std::iter::once(g.metric.as_str()).chain(g.conditions.iter().map(|c| c.metric.as_str()))
        }))
        .chain(
            spec.custom_sensors
                .iter()
                .flat_map(|c| [c.metric.as_str(), c.unit.as_str()]),
        );
    for name in names {
        if name.len() > l.max_name {
            return Some(format!(
                "a name of {} bytes (at most {})",
                name.len(),
                l.max_name
            ));
        }
    }
    if let Some(c) = spec
        .custom_sensors
        .iter()
        .find(|c| c.help.len() > 4 * l.max_name)
    {
        return Some(format!("a help text of {} bytes", c.help.len()));
    }
    None
}

#[cfg(test)]
mod tests;
