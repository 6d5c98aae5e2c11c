//! A module instance: one module serving one control plane. The solicitor
//! talks to it through a one-slot inbox, so a module still busy with an
//! older round is skipped (and counted) instead of queueing work.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use vcp_common::module::{Kind, ModuleSpec, Proposal, Solicitation};

use crate::config::ModuleLimits;
use vcp_core::plane::ControlPlane;
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

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// One module serving one control plane.
pub struct ModuleInstance {
    /// Unique per instance, also across reconnects of a remote module.
    pub uid: u64,
    /// Reputation and contribution key: `<control plane>/<module id>`.
    pub key: crate::judge::ModuleKey,
    /// The module id and its control plane's id, shared by decisions.
    pub name: Arc<str>,
    pub plane_id: Arc<str>,
    pub spec: ModuleSpec,
    pub plane: Arc<ControlPlane>,
    /// The operator's built-in module for its kind.
    pub is_default: bool,
    pub remote: bool,
    /// Runs in the shadow: solicited like the others, its requests never
    /// take effect but are kept as what it would have done (the baseline
    /// of cost-benefit contracts measured against the default module).
    pub shadow: bool,
    pub limits: ModuleLimits,
    pub stats: Arc<ModuleStats>,
    inbox: mpsc::Sender<Ask>,
    /// Signalled when the instance's control plane leaves force.
    retired: tokio::sync::Notify,
}

impl std::fmt::Debug for ModuleInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleInstance")
            .field("id", &self.spec.id)
            .field("plane", &self.plane.id)
            .finish()
    }
}

impl ModuleInstance {
    /// A new instance and the receiving end of its inbox. `stats` carries
    /// over from an earlier session of the same module, if any.
    pub fn new(
        spec: ModuleSpec,
        plane: Arc<ControlPlane>,
        is_default: bool,
        remote: bool,
        limits: ModuleLimits,
        stats: Option<Arc<ModuleStats>>,
    ) -> (ModuleInstance, mpsc::Receiver<Ask>) {
        let (inbox, rx) = mpsc::channel(1);
        let stats = stats.unwrap_or_else(|| Arc::new(ModuleStats::new(&spec.outputs)));
        (
            ModuleInstance {
                uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
                key: crate::judge::module_key(&plane.id, &spec.id),
                name: Arc::from(spec.id.as_str()),
                plane_id: Arc::from(plane.id.as_str()),
                spec,
                plane,
                is_default,
                remote,
                shadow: false,
                limits,
                stats,
                inbox,
                retired: tokio::sync::Notify::new(),
            },
            rx,
        )
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind
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
