//! The dispatcher task: owns the core's level-triggered [`Dispatcher`], takes decisions,
//! connections and outcomes from a queue, ticks every second, and hands
//! configurations to the agents' sessions.

use vcp_core::dispatch::{self, Dispatcher};
pub use vcp_core::dispatch::{DeliveryCounts, ANSWER_MS, RETRY_MS};

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use vcp_common::frame::Configure;

use crate::queue::Lossy;
use crate::unix_ms;
use vcp_core::plane::Planes;

/// What a dispatcher message carries for an agent: its session's channel.
pub type DispatchMsg = dispatch::DispatchMsg<AgentChannel>;

/// An agent session's configuration channel, as the core dispatcher's
/// outbox.
#[derive(Clone)]
pub struct AgentChannel(pub mpsc::Sender<Configure>);

impl dispatch::Outbox for AgentChannel {
    fn offer(&self, c: Configure) -> Result<(), Configure> {
        self.0.try_send(c).map_err(|e| e.into_inner())
    }

    fn same(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
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
            tx: AgentChannel(tx),
        };
        self.queue.send_wait(m).await;
    }

    /// The agent's session that used `tx` ended (from a `Drop`).
    pub fn disconnected(&self, agent: &str, tx: mpsc::Sender<Configure>) {
        self.queue.send_later(DispatchMsg::Disconnected {
            agent: agent.to_owned(),
            tx: AgentChannel(tx),
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
