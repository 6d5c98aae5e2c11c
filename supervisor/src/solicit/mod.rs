//! The solicitor: one task per kind runs rounds at the kind's cadence. A
//! round takes the current view, solicits every active module of its kind
//! in every control plane at once, collects answers until the deadline,
//! admits them (constraints), mediates, and puts the decisions in force.
//!
//! No locks here: hot path. Module lists, the fleet view and the settings
//! are arc-swap snapshots; answers arrive on a channel; counters are
//! atomics. A module that is late, busy, panics or disconnects only loses
//! its own part of the round.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::debug;
use vcp_common::module::{Kind, SensorSelector, Solicitation};

use crate::dispatch::{DispatchHandle, DispatchMsg};
use crate::fleet::Fleet;
use crate::judge::{Evidence, JudgeHandle};
use crate::modules::instance::{Ask, ModuleInstance};
use crate::modules::registry::Registry;
use crate::unix_ms;
use vcp_core::constraints::Constraints;
use vcp_core::mediation::Mediator;
use vcp_core::module_view::Projection;
use vcp_core::plane::ControlPlane;
use vcp_core::round::RoundCore;
use vcp_core::settings::{Decision, Settings};

/// Per-kind round counters.
#[derive(Debug, Default)]
pub struct KindStats {
    pub rounds: AtomicU64,
    pub responses: AtomicU64,
    pub deadline_misses: AtomicU64,
    pub decisions: AtomicU64,
    /// The supervisor's own time in the last round, from its start to its
    /// decisions in force (µs), and the longest seen.
    pub last_round_us: AtomicU64,
    pub max_round_us: AtomicU64,
    /// The supervisor's own work in the last round (µs): the round's time
    /// less the time spent waiting for answers.
    pub last_own_us: AtomicU64,
    /// The supervisor's own work per round.
    pub own: vcp_core::histogram::Histogram,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KindSummary {
    pub kind: Kind,
    pub rounds: u64,
    pub responses: u64,
    pub deadline_misses: u64,
    pub decisions: u64,
    pub max_round_us: u64,
}

impl KindStats {
    pub fn summary(&self, kind: Kind) -> KindSummary {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KindSummary {
            kind,
            rounds: g(&self.rounds),
            responses: g(&self.responses),
            deadline_misses: g(&self.deadline_misses),
            decisions: g(&self.decisions),
            max_round_us: g(&self.max_round_us),
        }
    }
}

/// What every kind's rounds share.
#[derive(Clone)]
pub struct RoundContext {
    pub registry: Arc<Registry>,
    pub fleet: Arc<Fleet>,
    pub settings: Arc<Settings>,
    pub constraints: Constraints,
    pub judge: JudgeHandle,
    pub dispatch: DispatchHandle,
}

/// Everything a kind's rounds read or write.
pub struct Solicitor {
    pub kind: Kind,
    pub cadence: Duration,
    pub deadline: Duration,
    pub ctx: RoundContext,
    pub stats: Arc<KindStats>,
    pub core: RoundCore,
    /// What view building keeps per (plane, inputs) between rounds; only
    /// those of the last round are kept.
    projections: Vec<(Arc<ControlPlane>, Vec<SensorSelector>, Projection)>,
}

impl Solicitor {
    pub fn new(
        kind: Kind,
        cadence: Duration,
        deadline: Duration,
        ctx: RoundContext,
        mediator: Mediator,
    ) -> Self {
        Solicitor {
            kind,
            cadence,
            deadline,
            stats: Arc::default(),
            core: RoundCore::new(ctx.constraints.clone(), mediator),
            ctx,
            projections: Vec::new(),
        }
    }

    /// Runs rounds forever at the cadence.
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.cadence);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut round = 0;
        loop {
            ticker.tick().await;
            round += 1;
            self.round(round).await;
        }
    }

    /// One round; returns when its decisions are in force (by the deadline,
    /// plus the supervisor's own processing).
    pub async fn round(&mut self, round: u64) {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let modules = self.ctx.registry.of(self.kind);
        if modules.is_empty() {
            return;
        }
        let at_ms = unix_ms();
        let settings = self.ctx.settings.snapshot();
        let (tx, mut rx) = mpsc::channel(modules.len());
        let mut answered = vec![false; modules.len()];
        let mut shared: Vec<(&ModuleInstance, Arc<Solicitation>)> = Vec::new();
        let mut used = vec![false; self.projections.len()];
        for (slot, m) in modules.iter().enumerate() {
            // Modules of one control plane with the same inputs share a view.
            let same = shared
                .iter()
                .find(|(o, _)| Arc::ptr_eq(&o.plane, &m.plane) && o.spec.inputs == m.spec.inputs)
                .map(|(_, s)| s.clone());
            let solicitation = same.unwrap_or_else(|| {
                let at =
                    match self.projections.iter().position(|(p, inputs, _)| {
                        Arc::ptr_eq(p, &m.plane) && *inputs == m.spec.inputs
                    }) {
                        Some(at) => at,
                        None => {
                            let kept = (
                                m.plane.clone(),
                                m.spec.inputs.clone(),
                                Projection::default(),
                            );
                            self.projections.push(kept);
                            used.push(false);
                            self.projections.len() - 1
                        }
                    };
                used[at] = true;
                let v = vcp_core::module_view::build_with(
                    &mut self.projections[at].2,
                    &self.ctx.fleet.view,
                    &m.plane.scope,
                    &m.spec.inputs,
                    &settings,
                    at_ms,
                );
                let s = Arc::new(Solicitation {
                    round,
                    kind: self.kind,
                    budget_ms: self.deadline.as_millis() as u32,
                    view: v,
                });
                shared.push((m, s.clone()));
                s
            });
            m.stats.solicitations.fetch_add(1, Ordering::Relaxed);
            let ask = Ask {
                slot,
                solicitation,
                deadline,
                reply: tx.clone(),
            };
            if !m.offer(ask) {
                m.stats.busy.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(shared);
        drop(tx);
        let mut used = used.into_iter();
        self.projections.retain(|_| used.next().unwrap_or(false));

        self.core.begin();
        let mut waited = Duration::ZERO;
        loop {
            let wait = Instant::now();
            let received = tokio::time::timeout_at(deadline.into(), rx.recv()).await;
            waited += wait.elapsed();
            let answer = match received {
                Ok(Some(a)) => a,
                Ok(None) | Err(_) => break,
            };
            let Some(m) = modules.get(answer.slot).filter(|_| answer.round == round) else {
                continue;
            };
            answered[answer.slot] = true;
            match answer.outcome {
                Ok(proposals) => {
                    m.stats.responses.fetch_add(1, Ordering::Relaxed);
                    self.stats.responses.fetch_add(1, Ordering::Relaxed);
                    self.core.admit(answer.slot, m, proposals, &settings, at_ms);
                }
                Err(fault) => {
                    m.stats.faults.fetch_add(1, Ordering::Relaxed);
                    m.stats.last_fault.store(Some(Arc::new(fault.to_string())));
                }
            }
        }
        // The round is closed: whatever is still queued arrived too late.
        rx.close();
        while let Ok(a) = rx.try_recv() {
            if let (Some(m), Ok(p)) = (modules.get(a.slot), &a.outcome) {
                m.stats.record_late(p);
            }
        }
        for (m, done) in modules.iter().zip(&answered) {
            if !done {
                m.stats.deadline_misses.fetch_add(1, Ordering::Relaxed);
                self.stats.deadline_misses.fetch_add(1, Ordering::Relaxed);
            }
            self.ctx.judge.send(Evidence::Answered {
                key: m.key.clone(),
                on_time: *done,
            });
        }
        let reputation = self.ctx.judge.reputation.load();
        let instances: Vec<_> = modules.iter().map(|m| m.instance.clone()).collect();
        let (decisions, shadow) =
            self.core
                .decide(round, &instances, &reputation, &settings, deadline);
        let shadow: Vec<Arc<Decision>> = shadow.into_iter().map(Arc::new).collect();
        self.ctx.settings.apply_shadow(&shadow);
        let decisions: Vec<Arc<Decision>> = decisions.into_iter().map(Arc::new).collect();
        self.ctx.settings.apply(&decisions);
        self.stats
            .decisions
            .fetch_add(decisions.len() as u64, Ordering::Relaxed);
        let n_decisions = decisions.len();
        if n_decisions > 0 {
            self.ctx
                .dispatch
                .send(DispatchMsg::Decisions(decisions.clone()));
            self.ctx.judge.send(Evidence::Decisions(decisions));
        }
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        let took = started.elapsed().as_micros() as u64;
        let own = started.elapsed().saturating_sub(waited).as_micros() as u64;
        self.stats.last_round_us.store(took, Ordering::Relaxed);
        self.stats.max_round_us.fetch_max(took, Ordering::Relaxed);
        self.stats.last_own_us.store(own, Ordering::Relaxed);
        self.stats.own.record_us(own);
        debug!(kind = %self.kind, round, requests = self.core.admitted(), decisions = n_decisions, took_us = took, "round closed");
        if self.stats.rounds.load(Ordering::Relaxed).is_multiple_of(64) {
            self.core.forget_gone(&instances);
        }
    }
}
