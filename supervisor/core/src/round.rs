//! The pure part of a round, from collected answers to decisions.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::admission::{admit, Admission, Request};
use crate::constraints::{Constraints, RateLimiter};
use crate::instance::Instance;
use crate::mediation::Mediator;
use crate::reputation::ReputationSnapshot;
use crate::settings::{Decision, SettingsMap};
use crate::ModuleKey;

/// The pure part of a round, from collected answers to decisions:
/// admission (constraints, quota, rate) and mediation, with the supervisor's
/// time on each module's requests measured and added to its statistics.
/// Benchmarks drive it directly.
pub struct RoundCore {
    pub constraints: Constraints,
    pub mediator: Mediator,
    limiter: RateLimiter,
    requests: Vec<Request>,
    weights: Vec<f64>,
    per_slot: Vec<u64>,
}

impl RoundCore {
    pub fn new(constraints: Constraints, mediator: Mediator) -> Self {
        RoundCore {
            constraints,
            mediator,
            limiter: RateLimiter::default(),
            requests: Vec::new(),
            weights: Vec::new(),
            per_slot: Vec::new(),
        }
    }

    /// Starts a round's admission.
    pub fn begin(&mut self) {
        self.requests.clear();
        self.mediator.interner.begin();
    }

    /// Requests admitted so far this round.
    pub fn admitted(&self) -> usize {
        self.requests.len()
    }

    /// Admits one module's answer; the time it takes is the module's.
    pub fn admit(
        &mut self,
        slot: usize,
        m: &Instance,
        proposals: Vec<vcp_common::module::Proposal>,
        settings: &SettingsMap,
        now_ms: i64,
    ) {
        let t = Instant::now();
        let mut admission = Admission {
            constraints: &self.constraints,
            limiter: &mut self.limiter,
            settings,
            interner: &mut self.mediator.interner,
            now_ms,
        };
        admit(slot, m, proposals, &mut admission, &mut self.requests);
        m.stats
            .cpu_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Mediates everything admitted this round. Mediation time is shared
    /// among the modules in proportion to their admitted requests.
    pub fn decide(
        &mut self,
        round: u64,
        modules: &[Arc<Instance>],
        reputation: &ReputationSnapshot<ModuleKey>,
        settings: &SettingsMap,
        deadline: Instant,
    ) -> (Vec<Decision>, Vec<Decision>) {
        let t = Instant::now();
        // Shadow modules' requests are kept as they are, not mediated.
        let mut shadow = Vec::new();
        if modules.iter().any(|m| m.shadow) {
            let interner = &self.mediator.interner;
            self.requests.retain(|r| match modules.get(r.slot) {
                Some(m) if m.shadow => {
                    shadow.push(Decision {
                        round,
                        target: interner.target(r.target).clone(),
                        parameter: interner.param_name(r.param),
                        value: r.value,
                        module: m.name.clone(),
                        control_plane: m.plane_id.clone(),
                        contenders: 1,
                        influences: Vec::new(),
                    });
                    false
                }
                _ => true,
            });
        }
        self.weights.clear();
        self.weights
            .extend(modules.iter().map(|m| reputation.get(&m.key)));
        let mut decisions = Vec::new();
        self.mediator.mediate(
            round,
            &self.requests,
            modules,
            &self.weights,
            settings,
            deadline,
            &mut decisions,
        );
        self.mediator.interner.release();
        let spent = t.elapsed().as_nanos() as u64;
        self.per_slot.clear();
        self.per_slot.resize(modules.len(), 0);
        for r in &self.requests {
            if let Some(c) = self.per_slot.get_mut(r.slot) {
                *c += 1;
            }
        }
        let n = self.requests.len() as u64;
        for (m, mine) in modules.iter().zip(&self.per_slot) {
            if let Some(share) = (spent * mine).checked_div(n).filter(|s| *s > 0) {
                m.stats.cpu_ns.fetch_add(share, Ordering::Relaxed);
            }
        }
        (decisions, shadow)
    }

    /// Drops rate-limiter state of modules that are gone.
    pub fn forget_gone(&mut self, modules: &[Arc<Instance>]) {
        self.limiter
            .retain(|key| modules.iter().any(|m| m.key == *key));
    }
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "round_reference.rs"]
mod reference;
