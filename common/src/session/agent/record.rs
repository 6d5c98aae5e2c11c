//! What an agent session is configured with, what it keeps about its
//! agent, and what it asks of its driver.

use std::time::Duration;

use super::super::cursor::Cursor;
use super::super::Close;
use crate::batch::{Batch, SeriesDef};
use crate::codec::Limits;
use crate::frame::{Applied, Hello};

/// Longest hostname a Hello may carry (DNS's limit).
pub const MAX_HOSTNAME: usize = 253;

/// What one agent may make the supervisor hold or do.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLimits {
    /// Largest frame, header included.
    pub max_frame: usize,
    /// The batch decoder's limits (series per connection, readings and
    /// timestamps per batch, decompressed size, name length).
    pub batch: Limits,
    /// Sustained readings per second; past it the session stops reading.
    pub readings_per_second: f64,
    /// Readings a session may take at once before the rate applies.
    pub readings_burst: f64,
    /// Sustained frames per second other than batches (`Applied`, …);
    /// past it the session is closed.
    pub frames_per_second: f64,
    pub frames_burst: f64,
    /// Time from the handshake to the Hello.
    pub hello_timeout: Duration,
    /// Largest gap (in batches) one Hello or `Dropped` may declare.
    pub max_skip_batches: u64,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_frame: crate::protocol::DEFAULT_MAX_FRAME,
            batch: Limits::default(),
            readings_per_second: 100_000.0,
            readings_burst: 1_000_000.0,
            frames_per_second: 1_000.0,
            frames_burst: 1_000.0,
            hello_timeout: crate::protocol::HELLO_TIMEOUT,
            max_skip_batches: 10_000_000,
        }
    }
}

/// Per-agent totals kept with the cursor so that they survive restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentTotals {
    pub batches: u64,
    pub readings: u64,
    pub duplicates: u64,
    /// Batches the agent could not keep (its `Dropped` frames, and gaps
    /// its Hello declared), and the readings they held (as far as known:
    /// a Hello's gap carries none).
    pub lost_batches: u64,
    pub lost_readings: u64,
    pub wire_bytes: u64,
}

/// An agent's persisted state: where it is and what it delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentRecord {
    pub cursor: Cursor,
    pub totals: AgentTotals,
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// Make `record` durable, then call [`AgentSession::committed`](super::AgentSession::committed) (or
    /// [`AgentSession::persist_failed`](super::AgentSession::persist_failed)). Nothing is acknowledged before.
    Persist(AgentRecord),
    /// The Hello was accepted and answered: the agent is online.
    Connected { hello: Hello, skipped: u64 },
    /// Apply a new batch to the host's view. `new_series` are the
    /// dictionary entries it brought (ids dense, from this session's 0).
    Apply {
        new_series: Vec<SeriesDef>,
        batch: Batch,
    },
    /// A duplicate batch (already applied) still defined these series.
    Define { new_series: Vec<SeriesDef> },
    /// The agent declared batches dropped from its full spool.
    Dropped {
        up_to: u64,
        readings: u64,
        skipped: u64,
    },
    /// The outcome of a configuration.
    Applied(Applied),
    /// The session ended; send what [`AgentSession::take_transmit`](super::AgentSession::take_transmit) holds,
    /// then close the connection with this code and reason.
    Closed(Close),
}
