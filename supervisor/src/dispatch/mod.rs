//! Configuration delivery, level-triggered: for every (target, parameter)
//! the dispatcher keeps the decision in force and the value the host last
//! confirmed applied, and whenever the two differ — a new decision, a
//! failed or unanswered apply, a host back from offline — it sends the one
//! in force to the agent of the host it concerns. The agent answers applied
//! or failed, and the outcome is counted per module. A configuration for a
//! host that is offline waits for it, or expires with a recorded reason
//! after `ttl` (and is sent again, if still in force, when the host is
//! back); one with no answer within [`ANSWER_MS`] counts as failed; a
//! failed one is tried again after [`RETRY_MS`]. A newer decision replaces
//! one still waiting (the older one is counted as superseded).
//!
//! One task owns all of this state ([`state::Dispatcher`], which takes the
//! time as an argument); rounds hand it decisions on a channel.

mod state;
#[cfg(test)]
mod tests;

use state::Dispatcher;
pub use state::{ANSWER_MS, RETRY_MS};

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::mpsc;
use vcp_common::frame::{Applied, Configure};

use crate::queue::Lossy;
use crate::unix_ms;
use vcp_core::plane::Planes;
use vcp_core::settings::Decision;

/// Outcomes of one module's configurations.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub module: String,
    pub control_plane: String,
    pub sent: u64,
    pub applied: u64,
    pub failed: u64,
    pub expired: u64,
    pub superseded: u64,
    pub last_failure: Option<String>,
}

pub enum DispatchMsg {
    Decisions(Vec<Arc<Decision>>),
    Connected {
        agent: String,
        tx: mpsc::Sender<Configure>,
    },
    /// The session that used `tx` ended (a newer session of the same agent
    /// keeps its own channel).
    Disconnected {
        agent: String,
        tx: mpsc::Sender<Configure>,
    },
    Applied {
        agent: String,
        applied: Applied,
    },
}

/// Messages queued for the dispatcher at most. Rounds and outcomes past
/// it are dropped and counted (a round never waits); a connect or
/// disconnect waits for room.
pub const QUEUE: usize = 16_384;

/// The handle rounds and ingest use.
#[derive(Clone)]
pub struct DispatchHandle {
    pub queue: Lossy<DispatchMsg>,
    pub counts: Arc<ArcSwap<Vec<DeliveryCounts>>>,
}

impl DispatchHandle {
    /// Decisions and outcomes: never waits, drops (counted) when full.
    pub fn send(&self, m: DispatchMsg) {
        self.queue.send(m);
    }

    /// An agent came online with its configuration channel.
    pub async fn connected(&self, agent: &str, tx: mpsc::Sender<Configure>) {
        let m = DispatchMsg::Connected {
            agent: agent.to_owned(),
            tx,
        };
        self.queue.send_wait(m).await;
    }

    /// The agent's session that used `tx` ended (from a `Drop`).
    pub fn disconnected(&self, agent: &str, tx: mpsc::Sender<Configure>) {
        self.queue.send_later(DispatchMsg::Disconnected {
            agent: agent.to_owned(),
            tx,
        });
    }
}

/// Starts the dispatcher task.
pub fn start(planes: Planes, ttl: Duration) -> (DispatchHandle, tokio::task::JoinHandle<()>) {
    let (queue, mut rx) = crate::queue::lossy("dispatch", QUEUE);
    let published = Arc::new(ArcSwap::from_pointee(Vec::new()));
    let mut d = Dispatcher::new(planes, ttl.as_millis() as i64, published.clone());
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => d.take(m, unix_ms()),
                    None => return,
                },
                _ = tick.tick() => d.tick(unix_ms()),
            }
            d.flush(unix_ms());
        }
    });
    (
        DispatchHandle {
            queue,
            counts: published,
        },
        task,
    )
}
