//! The mediation step of a round: admitted requests are grouped by
//! (parameter, target) and each group is resolved by the policy configured
//! for (kind, parameter, control plane) — precedence, reputation-weighted
//! mean, conditional — or, per parameter, as a capacity pool or a placement
//! search. Each decision records every module's influence on it.
//!
//! No locks here: hot path. Buffers live in the [`Mediator`] and keep their
//! capacity from round to round; reputation weights come in per slot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vcp_common::module::{param, Kind};

use crate::admission::intern::Interner;
use crate::admission::Request;
use crate::instance::Instance;
use crate::mediate::capacity::allocate;
use crate::mediate::optimise;
use crate::mediate::{mediate_value, Bid, Policy, SeedableRng, SmallRng};
use crate::mediation::policy::policy_index;
pub use crate::mediation::policy::{
    default_policy, PolicyCount, PolicyCounts, PolicyEntry, PolicyTable, POLICY_NAMES,
};
use crate::plane::ControlPlane;
use crate::settings::{Decision, SettingsMap};

mod group;
mod placement;
pub mod policy;

/// Resolves one kind's requests, round after round.
pub struct Mediator {
    kind: Kind,
    table: Arc<PolicyTable>,
    pub counts: Arc<PolicyCounts>,
    /// The rounds' targets and parameters by id (filled by admission).
    pub interner: Interner,
    rng: SmallRng,
    bids: Vec<Bid>,
    influence: Vec<f64>,
    alloc: Vec<f64>,
    scratch: Vec<usize>,
    opt: optimise::Scratch,
    hosts: Vec<String>,
    /// Per (row, target id): its requests, then where its group goes in
    /// `order`.
    at: Vec<u32>,
    /// This round's parameters in decision order: (rank, ordinal).
    rows: Vec<(u32, u32)>,
    /// Per parameter ordinal, its row.
    row_of: Vec<u32>,
    /// Tests: group by sorting whatever the round's size.
    #[cfg(test)]
    force_sparse: bool,
    by_slot: Vec<u32>,
    /// Request indices, grouped by (parameter, target).
    order: Vec<u32>,
    /// Groups as ranges of `order`, in decision order.
    groups: Vec<(u32, u32)>,
    /// Runs of groups of one parameter: (ordinal, first group, end).
    runs: Vec<(u32, usize, usize)>,
    flat: Vec<u32>,
    placed: Vec<u32>,
    /// Longest a placement search may take inside a round.
    pub search_budget: Duration,
}

impl Mediator {
    pub fn new(kind: Kind, table: Arc<PolicyTable>, counts: Arc<PolicyCounts>, seed: u64) -> Self {
        Mediator {
            kind,
            table,
            counts,
            interner: Interner::default(),
            rng: SmallRng::seed_from_u64(seed),
            bids: Vec::new(),
            influence: Vec::new(),
            alloc: Vec::new(),
            scratch: Vec::new(),
            opt: optimise::Scratch::default(),
            hosts: Vec::new(),
            at: Vec::new(),
            rows: Vec::new(),
            row_of: Vec::new(),
            #[cfg(test)]
            force_sparse: false,
            by_slot: Vec::new(),
            order: Vec::new(),
            groups: Vec::new(),
            runs: Vec::new(),
            flat: Vec::new(),
            placed: Vec::new(),
            search_budget: Duration::from_millis(5),
        }
    }

    /// Tests: groups by sorting (`true`) whatever the round's size.
    #[cfg(test)]
    pub(crate) fn force_sparse(&mut self, sparse: bool) {
        self.force_sparse = sparse;
    }

    fn count(&self, p: &Policy, n: usize) {
        self.counts.0[policy_index(p)].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Mediates `requests` into `out`. `weights[slot]` is the reputation of
    /// `modules[slot]`. Requests are grouped by their interned (parameter,
    /// target) ids, so strings are neither hashed nor compared and
    /// requests never move.
    #[allow(clippy::too_many_arguments)]
    pub fn mediate(
        &mut self,
        round: u64,
        requests: &[Request],
        modules: &[Arc<Instance>],
        weights: &[f64],
        settings: &SettingsMap,
        deadline: Instant,
        out: &mut Vec<Decision>,
    ) {
        let mut interner = std::mem::take(&mut self.interner);
        self.group(requests, &mut interner);
        out.reserve(self.groups.len());
        let table = self.table.clone();
        let order = std::mem::take(&mut self.order);
        let groups = std::mem::take(&mut self.groups);
        let runs = std::mem::take(&mut self.runs);
        for &(ordinal, g0, g1) in &runs {
            let groups = &groups[g0..g1];
            let (start, end) = (groups[0].0 as usize, groups[groups.len() - 1].1 as usize);
            let first = &requests[order[start] as usize];
            let plane = modules.get(first.slot).map_or("", |m| m.plane.id.as_str());
            let parameter = interner.param_name(ordinal);
            let policy = table.resolve(self.kind, &parameter, plane);
            let before = out.len();
            match policy {
                Policy::Capacity {
                    capacity,
                    exploration,
                } => self.pool(
                    round,
                    requests,
                    &order[start..end],
                    groups,
                    modules,
                    weights,
                    (*capacity, *exploration),
                    (&mut interner, &parameter),
                    out,
                ),
                Policy::Optimise { lambda } => {
                    let mut run = order[start..end].to_vec();
                    // A placement search needs each service set's requests together.
                    run.sort_unstable_by(|&a, &b| {
                        let (a, b) = (&requests[a as usize], &requests[b as usize]);
                        let by_target = if a.target == b.target {
                            std::cmp::Ordering::Equal
                        } else {
                            interner.target(a.target).cmp(interner.target(b.target))
                        };
                        by_target.then(a.slot.cmp(&b.slot))
                    });
                    self.placements(
                        round, requests, &interner, &run, modules, weights, settings, *lambda,
                        deadline, out,
                    )
                }
                _ => self.per_target(
                    round,
                    requests,
                    &order,
                    groups,
                    modules,
                    weights,
                    settings,
                    (&table, &mut interner, &parameter),
                    out,
                ),
            }
            self.count(policy, out.len() - before);
        }
        self.order = order;
        self.groups = groups;
        self.runs = runs;
        self.interner = interner;
    }

    /// The decision for one group (indices into `reqs`), with
    /// `self.influence` holding each member's influence.
    #[allow(clippy::too_many_arguments)]
    fn decision(
        &self,
        round: u64,
        reqs: &[Request],
        group: &[u32],
        value: f64,
        modules: &[Arc<Instance>],
        interner: &mut Interner,
        parameter: &Arc<str>,
    ) -> Option<Decision> {
        // The module with the largest influence is named as the decider.
        let (lead, _) = group
            .iter()
            .map(|&i| &reqs[i as usize])
            .zip(&self.influence)
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.slot.cmp(&a.0.slot)))?;
        let m = modules.get(lead.slot)?;
        let influences = group
            .iter()
            .zip(&self.influence)
            .filter(|(_, inf)| **inf > 0.0)
            .filter_map(|(&i, inf)| {
                modules
                    .get(reqs[i as usize].slot)
                    .map(|m| (m.key.clone(), *inf))
            })
            .collect();
        Some(Decision {
            round,
            target: interner.take(lead.target),
            parameter: parameter.clone(),
            value,
            module: m.name.clone(),
            control_plane: m.plane_id.clone(),
            contenders: group.len(),
            influences,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn per_target(
        &mut self,
        round: u64,
        reqs: &[Request],
        order: &[u32],
        groups: &[(u32, u32)],
        modules: &[Arc<Instance>],
        weights: &[f64],
        settings: &SettingsMap,
        (table, interner, parameter): (&PolicyTable, &mut Interner, &Arc<str>),
        out: &mut Vec<Decision>,
    ) {
        let integer = param::is_integer(parameter);
        let in_force = settings.of(parameter);
        // The policy depends on the control plane: resolved once per plane.
        let mut resolved: Option<(*const ControlPlane, &Policy)> = None;
        for &(start, end) in groups {
            let group = &order[start as usize..end as usize];
            let first = &reqs[group[0] as usize];
            let m = modules.get(first.slot);
            let plane = m.map_or(std::ptr::null(), |m| Arc::as_ptr(&m.plane));
            let policy = match resolved {
                Some((p, policy)) if p == plane => policy,
                _ => {
                    let id = m.map_or("", |m| m.plane.id.as_str());
                    let policy = table.resolve(self.kind, parameter, id);
                    resolved = Some((plane, policy));
                    policy
                }
            };
            fill_bids(
                &mut self.bids,
                &mut self.influence,
                reqs,
                group,
                modules,
                weights,
            );
            // Only condition-dependent policies look at the value in force.
            let current = match policy {
                Policy::Conditional(_) => {
                    in_force.get(interner.target(first.target)).map(|d| d.value)
                }
                _ => None,
            };
            if let Some(v) =
                mediate_value(policy, &self.bids, integer, current, &mut self.influence)
            {
                out.extend(self.decision(round, reqs, group, v, modules, interner, parameter));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pool(
        &mut self,
        round: u64,
        reqs: &[Request],
        run: &[u32],
        groups: &[(u32, u32)],
        modules: &[Arc<Instance>],
        weights: &[f64],
        (capacity, exploration): (f64, f64),
        (interner, parameter): (&mut Interner, &Arc<str>),
        out: &mut Vec<Decision>,
    ) {
        fill_bids(
            &mut self.bids,
            &mut self.influence,
            reqs,
            run,
            modules,
            weights,
        );
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
        let base = groups.first().map_or(0, |g| g.0 as usize);
        for &(start, end) in groups {
            let (start, end) = (start as usize - base, end as usize - base);
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
            out.extend(self.decision(
                round,
                reqs,
                &run[start..end],
                value,
                modules,
                interner,
                parameter,
            ));
        }
        self.alloc = allocs;
    }
}

fn fill_bids(
    bids: &mut Vec<Bid>,
    influence: &mut Vec<f64>,
    reqs: &[Request],
    group: &[u32],
    modules: &[Arc<Instance>],
    weights: &[f64],
) {
    bids.clear();
    bids.extend(group.iter().map(|&i| {
        let r = &reqs[i as usize];
        Bid {
            value: r.value,
            weight: weights.get(r.slot).copied().unwrap_or(0.0),
            is_default: modules.get(r.slot).is_some_and(|m| m.is_default),
            module: r.slot as u32,
        }
    }));
    influence.clear();
    influence.resize(group.len(), 0.0);
}

#[cfg(test)]
mod tests;
