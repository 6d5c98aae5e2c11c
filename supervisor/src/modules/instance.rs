//! A module instance: one module serving one control plane. The solicitor
//! talks to it through a one-slot inbox, so a module still busy with an
//! older round is skipped (and counted) instead of queueing work.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use vcp_common::module::{Proposal, Solicitation};
use vcp_core::instance::Instance;
use vcp_core::stats::ModuleStats;

/// A solicitation for one module instance.
pub struct Ask {
    pub slot: usize,
    pub solicitation: Arc<Solicitation>,
    pub deadline: Instant,
    pub reply: mpsc::Sender<Answer>,
}

/// Why a module produced no proposals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Panicked(String),
    Failed(String),
    Disconnected(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Panicked(m) => write!(f, "panicked: {m}"),
            Fault::Failed(m) => write!(f, "failed: {m}"),
            Fault::Disconnected(m) => write!(f, "disconnected: {m}"),
        }
    }
}

/// A module's answer to one [`Ask`].
#[derive(Debug)]
pub struct Answer {
    pub slot: usize,
    pub round: u64,
    pub outcome: Result<Vec<Proposal>, Fault>,
}

impl Ask {
    /// Hands the outcome to the round if it is still open; otherwise the
    /// answer is late: its requests are counted as late (and charged to
    /// the module's vendor).
    pub fn deliver(self, outcome: Result<Vec<Proposal>, Fault>, stats: &ModuleStats) {
        self.deliver_at(outcome, stats, Instant::now())
    }

    /// [`Ask::deliver`] of an outcome that arrived at `at`.
    pub fn deliver_at(
        self,
        outcome: Result<Vec<Proposal>, Fault>,
        stats: &ModuleStats,
        at: Instant,
    ) {
        let answer = Answer {
            slot: self.slot,
            round: self.solicitation.round,
            outcome,
        };
        let answer = if at <= self.deadline {
            match self.reply.try_send(answer) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            }
        } else {
            answer
        };
        if let Ok(proposals) = &answer.outcome {
            stats.record_late(proposals);
        }
    }
}

/// One module serving one control plane: what the round sees of it
/// ([`Instance`]) and how the solicitor reaches it.
pub struct ModuleInstance {
    pub instance: Arc<Instance>,
    inbox: mpsc::Sender<Ask>,
    /// Signalled when the instance's control plane leaves force.
    retired: tokio::sync::Notify,
}

impl std::ops::Deref for ModuleInstance {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        &self.instance
    }
}

impl std::fmt::Debug for ModuleInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.instance.fmt(f)
    }
}

impl ModuleInstance {
    /// A reachable `instance` and the receiving end of its inbox.
    pub fn new(instance: Instance) -> (ModuleInstance, mpsc::Receiver<Ask>) {
        let (inbox, rx) = mpsc::channel(1);
        (
            ModuleInstance {
                instance: Arc::new(instance),
                inbox,
                retired: tokio::sync::Notify::new(),
            },
            rx,
        )
    }

    /// Marks the instance retired: its control plane left force. A remote
    /// session waiting in [`ModuleInstance::retired`] ends.
    pub fn retire(&self) {
        self.retired.notify_one();
    }

    /// Completes once the instance is retired.
    pub async fn retired(&self) {
        self.retired.notified().await
    }

    /// Offers a solicitation; `false` when the module is still busy with an
    /// earlier one (or gone).
    pub fn offer(&self, ask: Ask) -> bool {
        self.inbox.try_send(ask).is_ok()
    }
}
