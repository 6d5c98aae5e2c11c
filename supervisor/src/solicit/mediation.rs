//! The mediation step of a round: admitted requests are grouped by
//! (parameter, target) and each group is resolved by the policy configured
//! for (kind, parameter, control plane) — precedence, reputation-weighted
//! mean, conditional — or, per parameter, as a capacity pool or a placement
//! search. Each decision records every module's influence on it.
//!
//! No locks here: hot path. Buffers live in the [`Mediator`] and keep their
//! capacity from round to round; reputation weights come in per slot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vcp_common::module::{param, Kind, Target};

use crate::judge::ModuleKey;
use crate::mediate::capacity::allocate;
use crate::mediate::optimise::{self, place, Problem, Search};
use crate::mediate::{mediate_value, Bid, Policy, SeedableRng, SmallRng};
use crate::modules::instance::ModuleInstance;
use crate::settings::{Decision, SettingsMap};
use crate::solicit::round::Request;

/// One configured policy: for a kind and parameter, optionally only in one
/// control plane (the most specific entry wins).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    pub kind: Kind,
    pub parameter: String,
    #[serde(default)]
    pub control_plane: Option<String>,
    pub policy: Policy,
}

/// Mitigation capacity when no policy says otherwise: 10 Gbit/s, in bytes/s.
pub const DEFAULT_MITIGATION_CAPACITY: f64 = 1.25e9;

/// The policy of a parameter when the configuration names none.
pub fn default_policy(parameter: &str) -> Policy {
    match parameter {
        param::LB_WEIGHT | param::CPU_SHARE | param::MEMORY_SHARE => Policy::Weighted,
        param::PLACEMENT => Policy::Optimise { lambda: 1.0 },
        param::MITIGATION => Policy::Capacity {
            capacity: DEFAULT_MITIGATION_CAPACITY,
            exploration: 0.05,
        },
        _ => Policy::Precedence,
    }
}

/// Names of the policies, in the order of [`PolicyCounts`].
pub const POLICY_NAMES: [&str; 5] = [
    "precedence",
    "weighted",
    "capacity",
    "conditional",
    "optimise",
];

fn policy_index(p: &Policy) -> usize {
    match p {
        Policy::Precedence => 0,
        Policy::Weighted => 1,
        Policy::Capacity { .. } => 2,
        Policy::Conditional(_) => 3,
        Policy::Optimise { .. } => 4,
    }
}

/// Decisions per policy (atomics; read by reports and /metrics).
#[derive(Debug, Default)]
pub struct PolicyCounts(pub [AtomicU64; 5]);

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolicyCount {
    pub policy: &'static str,
    pub decisions: u64,
}

impl PolicyCounts {
    pub fn summary(&self) -> Vec<PolicyCount> {
        POLICY_NAMES
            .iter()
            .zip(&self.0)
            .map(|(p, c)| PolicyCount {
                policy: p,
                decisions: c.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// Resolves one kind's requests, round after round.
pub struct Mediator {
    kind: Kind,
    policies: Arc<Vec<PolicyEntry>>,
    defaults: Vec<(String, Policy)>,
    pub counts: Arc<PolicyCounts>,
    rng: SmallRng,
    bids: Vec<Bid>,
    influence: Vec<f64>,
    alloc: Vec<f64>,
    scratch: Vec<usize>,
    opt: optimise::Scratch,
    hosts: Vec<String>,
    flat: Vec<u32>,
    placed: Vec<u32>,
    /// Longest a placement search may take inside a round.
    pub search_budget: Duration,
}

impl Mediator {
    pub fn new(
        kind: Kind,
        policies: Arc<Vec<PolicyEntry>>,
        counts: Arc<PolicyCounts>,
        seed: u64,
    ) -> Self {
        Mediator {
            kind,
            policies,
            defaults: Vec::new(),
            counts,
            rng: SmallRng::seed_from_u64(seed),
            bids: Vec::new(),
            influence: Vec::new(),
            alloc: Vec::new(),
            scratch: Vec::new(),
            opt: optimise::Scratch::default(),
            hosts: Vec::new(),
            flat: Vec::new(),
            placed: Vec::new(),
            search_budget: Duration::from_millis(5),
        }
    }

    fn policy(&mut self, parameter: &str, plane: Option<&str>) -> Policy {
        let configured = self
            .policies
            .iter()
            .filter(|e| e.kind == self.kind && e.parameter == parameter)
            .filter(|e| e.control_plane.is_none() || e.control_plane.as_deref() == plane)
            .max_by_key(|e| e.control_plane.is_some());
        if let Some(e) = configured {
            return e.policy.clone();
        }
        if let Some((_, p)) = self.defaults.iter().find(|(name, _)| name == parameter) {
            return p.clone();
        }
        let p = default_policy(parameter);
        self.defaults.push((parameter.to_owned(), p.clone()));
        p
    }

    fn count(&self, p: &Policy, n: usize) {
        self.counts.0[policy_index(p)].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Mediates `requests` (sorted in place) into `out`. `weights[slot]` is
    /// the reputation of `modules[slot]`.
    #[allow(clippy::too_many_arguments)]
    pub fn mediate(
        &mut self,
        round: u64,
        requests: &mut [Request],
        modules: &[Arc<ModuleInstance>],
        weights: &[f64],
        settings: &SettingsMap,
        deadline: Instant,
        out: &mut Vec<Decision>,
    ) {
        requests.sort_unstable_by(|a, b| {
            a.parameter
                .cmp(&b.parameter)
                .then_with(|| a.target.cmp(&b.target))
                .then(a.slot.cmp(&b.slot))
        });
        let mut start = 0;
        while start < requests.len() {
            let parameter = requests[start].parameter.clone();
            let end = start
                + requests[start..]
                    .iter()
                    .take_while(|r| r.parameter == parameter)
                    .count();
            let run = &requests[start..end];
            let plane = modules.get(run[0].slot).map(|m| m.plane.id.clone());
            let policy = self.policy(&parameter, plane.as_deref());
            let before = out.len();
            match &policy {
                Policy::Capacity {
                    capacity,
                    exploration,
                } => self.pool(round, run, modules, weights, *capacity, *exploration, out),
                Policy::Optimise { lambda } => self.placements(
                    round, run, modules, weights, settings, *lambda, deadline, out,
                ),
                _ => self.per_target(round, run, modules, weights, settings, out),
            }
            self.count(&policy, out.len() - before);
            start = end;
        }
    }

    fn fill_bids(&mut self, group: &[Request], modules: &[Arc<ModuleInstance>], weights: &[f64]) {
        self.bids.clear();
        self.bids.extend(group.iter().map(|r| Bid {
            value: r.value,
            weight: weights.get(r.slot).copied().unwrap_or(0.0),
            is_default: modules.get(r.slot).is_some_and(|m| m.is_default),
            module: r.slot as u32,
        }));
        self.influence.clear();
        self.influence.resize(group.len(), 0.0);
    }

    fn influences(
        &self,
        group: &[Request],
        modules: &[Arc<ModuleInstance>],
    ) -> Vec<(ModuleKey, f64)> {
        group
            .iter()
            .zip(&self.influence)
            .filter(|(_, i)| **i > 0.0)
            .filter_map(|(r, i)| modules.get(r.slot).map(|m| (m.key.clone(), *i)))
            .collect()
    }

    fn decision(
        &self,
        round: u64,
        group: &[Request],
        modules: &[Arc<ModuleInstance>],
        value: f64,
    ) -> Option<Decision> {
        // The module with the largest influence is named as the decider.
        let (lead, _) = group
            .iter()
            .zip(&self.influence)
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.slot.cmp(&a.0.slot)))?;
        let m = modules.get(lead.slot)?;
        Some(Decision {
            round,
            target: lead.target.clone(),
            parameter: lead.parameter.clone(),
            value,
            module: m.id().to_owned(),
            control_plane: m.plane.id.clone(),
            contenders: group.len(),
            influences: self.influences(group, modules),
        })
    }

    fn per_target(
        &mut self,
        round: u64,
        run: &[Request],
        modules: &[Arc<ModuleInstance>],
        weights: &[f64],
        settings: &SettingsMap,
        out: &mut Vec<Decision>,
    ) {
        let mut start = 0;
        while start < run.len() {
            let end = start
                + run[start..]
                    .iter()
                    .take_while(|r| r.target == run[start].target)
                    .count();
            let group = &run[start..end];
            let plane = modules.get(group[0].slot).map(|m| m.plane.id.clone());
            let policy = self.policy(&group[0].parameter, plane.as_deref());
            self.fill_bids(group, modules, weights);
            let current = settings
                .get(&(group[0].target.clone(), group[0].parameter.clone()))
                .map(|d| d.value);
            let integer = param::is_integer(&group[0].parameter);
            if let Some(v) =
                mediate_value(&policy, &self.bids, integer, current, &mut self.influence)
            {
                out.extend(self.decision(round, group, modules, v));
            }
            start = end;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pool(
        &mut self,
        round: u64,
        run: &[Request],
        modules: &[Arc<ModuleInstance>],
        weights: &[f64],
        capacity: f64,
        exploration: f64,
        out: &mut Vec<Decision>,
    ) {
        self.fill_bids(run, modules, weights);
        self.alloc.clear();
        self.alloc.resize(run.len(), 0.0);
        let explore = (exploration > 0.0).then_some((&mut self.rng, exploration));
        allocate(
            &self.bids,
            capacity,
            explore,
            &mut self.scratch,
            &mut self.alloc,
            &mut self.influence,
        );
        // One decision per target: the sum of its requests' allocations,
        // influence shared among them by allocation.
        let allocs = std::mem::take(&mut self.alloc);
        let mut start = 0;
        while start < run.len() {
            let end = start
                + run[start..]
                    .iter()
                    .take_while(|r| r.target == run[start].target)
                    .count();
            let value: f64 = allocs[start..end].iter().sum();
            self.influence.clear();
            self.influence.extend(allocs[start..end].iter().map(|a| {
                if value > 0.0 {
                    a / value
                } else {
                    0.0
                }
            }));
            if value <= 0.0 {
                // Nothing allocated: the first request names the decision.
                if let Some(first) = self.influence.first_mut() {
                    *first = 1.0;
                }
            }
            out.extend(self.decision(round, &run[start..end], modules, value));
            start = end;
        }
        self.alloc = allocs;
    }

    #[allow(clippy::too_many_arguments)]
    fn placements(
        &mut self,
        round: u64,
        run: &[Request],
        modules: &[Arc<ModuleInstance>],
        weights: &[f64],
        settings: &SettingsMap,
        lambda: f64,
        deadline: Instant,
        out: &mut Vec<Decision>,
    ) {
        // Requests are sorted by target, so one service set's placements are
        // contiguous.
        let set_of = |r: &Request| match &r.target {
            Target::Member { service_set, .. } => Some(service_set.clone()),
            _ => None,
        };
        let mut start = 0;
        while start < run.len() {
            let set = set_of(&run[start]);
            let end = start + run[start..].iter().take_while(|r| set_of(r) == set).count();
            if let Some(set) = set {
                self.place_set(
                    round,
                    &set,
                    &run[start..end],
                    modules,
                    weights,
                    settings,
                    lambda,
                    deadline,
                    out,
                );
            }
            start = end;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn place_set(
        &mut self,
        round: u64,
        set: &str,
        group: &[Request],
        modules: &[Arc<ModuleInstance>],
        weights: &[f64],
        settings: &SettingsMap,
        lambda: f64,
        deadline: Instant,
        out: &mut Vec<Decision>,
    ) {
        self.hosts.clear();
        for r in group {
            if let Target::Member { host, .. } = &r.target {
                if !self.hosts.contains(host) {
                    self.hosts.push(host.clone());
                }
            }
        }
        self.hosts.sort();
        let mut slots: Vec<usize> = group.iter().map(|r| r.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        let h = self.hosts.len();
        self.flat.clear();
        self.flat.resize(slots.len() * h, 0);
        for r in group {
            let (Target::Member { host, .. }, Some(m)) =
                (&r.target, slots.iter().position(|s| *s == r.slot))
            else {
                continue;
            };
            if let Some(j) = self.hosts.iter().position(|x| x == host) {
                self.flat[m * h + j] = r.value.max(0.0).round() as u32;
            }
        }
        let instances = settings
            .get(&(
                Target::ServiceSet(set.to_owned()),
                param::INSTANCES.to_owned(),
            ))
            .map(|d| d.value.max(0.0) as u32)
            .unwrap_or_else(|| {
                self.flat
                    .chunks(h.max(1))
                    .map(|c| c.iter().sum::<u32>())
                    .max()
                    .unwrap_or(0)
            });
        let proposals: Vec<optimise::Proposal<'_>> = slots
            .iter()
            .enumerate()
            .map(|(m, slot)| optimise::Proposal {
                counts: &self.flat[m * h..(m + 1) * h],
                weight: weights.get(*slot).copied().unwrap_or(0.0),
            })
            .collect();
        let capacities = vec![instances; h];
        self.placed.clear();
        self.placed.resize(h, 0);
        let mut influence = vec![0.0; slots.len()];
        let budget = deadline.min(Instant::now() + self.search_budget);
        let problem = Problem {
            instances,
            capacities: &capacities,
            proposals: &proposals,
            lambda,
        };
        let search = Search {
            deadline: budget,
            now: &Instant::now,
            max_iterations: 10_000,
            restarts: 3,
            seed: round,
        };
        if place(
            &problem,
            &search,
            &mut self.opt,
            &mut self.placed,
            &mut influence,
        )
        .is_err()
        {
            return;
        }
        let influences: Vec<(ModuleKey, f64)> = slots
            .iter()
            .zip(&influence)
            .filter(|(_, i)| **i > 0.0)
            .filter_map(|(s, i)| modules.get(*s).map(|m| (m.key.clone(), *i)))
            .collect();
        let lead = slots
            .iter()
            .zip(&influence)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .and_then(|(s, _)| modules.get(*s));
        let Some(lead) = lead else { return };
        for (host, count) in self.hosts.iter().zip(&self.placed) {
            out.push(Decision {
                round,
                target: Target::Member {
                    service_set: set.to_owned(),
                    host: host.clone(),
                },
                parameter: param::PLACEMENT.to_owned(),
                value: f64::from(*count),
                module: lead.id().to_owned(),
                control_plane: lead.plane.id.clone(),
                contenders: slots.len(),
                influences: influences.clone(),
            });
        }
    }
}
