//! Sans-I/O session state machines: the supervisor's side of an agent
//! connection ([`agent::AgentSession`]) and of a remote module connection
//! ([`module::ModuleSession`]).
//!
//! A session owns its state and nothing else: no socket, no clock, no
//! task. Its driver (a tokio task in the supervisor, or a fuzz target)
//! feeds it what arrived — stream bytes with [`handle_input`], the end of
//! the stream, the time when [`poll_timeout`] said so — and does what it
//! asks: bytes to write ([`take_transmit`]) and events to act on
//! ([`poll_event`]). Time always comes in as an argument, so a session
//! behaves the same under a test's clock, a fuzzer's and the real one.
//!
//! Every limit a peer could push against is a field of the session's
//! limits; a peer that breaks one is closed with a [`Close`] saying which.
//!
//! [`handle_input`]: agent::AgentSession::handle_input
//! [`poll_timeout`]: agent::AgentSession::poll_timeout
//! [`take_transmit`]: agent::AgentSession::take_transmit
//! [`poll_event`]: agent::AgentSession::poll_event

pub mod agent;
pub mod bucket;
pub mod cursor;
pub mod module;

use crate::frame::{encode_frame, Frame};
use crate::protocol::FrameBuffer;

/// How and why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// A [`crate::protocol::close`] code.
    pub code: u32,
    pub reason: String,
    /// The peer ended the session (a `Close` frame or the end of its
    /// stream); nothing is to be sent back.
    pub by_peer: bool,
}

/// The byte side of a session: received bytes split into frames, frames to
/// send appended to one buffer.
#[derive(Debug)]
struct Wire {
    frames: FrameBuffer,
    out: Vec<u8>,
}

impl Wire {
    fn new(max_frame: usize) -> Self {
        Wire {
            frames: FrameBuffer::new(max_frame),
            out: Vec::new(),
        }
    }

    fn send(&mut self, frame: &Frame) {
        encode_frame(frame, &mut self.out);
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Says why, in-band, unless the peer is the one who ended it.
    fn say_close(&mut self, c: &Close) {
        if !c.by_peer {
            self.send(&Frame::Close {
                reason: c.reason.clone(),
            });
        }
    }
}

/// Longest text from a peer a session passes on (a close reason, an
/// outcome's detail); the rest is cut, so a peer cannot fill logs and
/// reports with megabytes of one string.
pub const MAX_PEER_TEXT: usize = 256;

/// `s` cut to at most [`MAX_PEER_TEXT`] bytes, on a character boundary.
fn bounded(mut s: String) -> String {
    if s.len() > MAX_PEER_TEXT {
        let mut end = MAX_PEER_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// What to say when the stream ended with `pending` bytes unread.
fn end_of_stream(pending: usize) -> Close {
    if pending == 0 {
        Close {
            code: crate::protocol::close::NORMAL,
            reason: "the peer ended its stream".into(),
            by_peer: true,
        }
    } else {
        Close {
            code: crate::protocol::close::PROTOCOL,
            reason: format!("the stream ended inside a frame ({pending} bytes unread)"),
            by_peer: false,
        }
    }
}
