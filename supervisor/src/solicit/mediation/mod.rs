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

use vcp_common::module::{param, Kind, Target};

use crate::mediate::capacity::allocate;
use crate::mediate::optimise;
use crate::mediate::{mediate_value, Bid, Policy, SeedableRng, SmallRng};
use crate::modules::instance::ModuleInstance;
use crate::settings::{Decision, SettingsMap};
use crate::solicit::policy::policy_index;
pub use crate::solicit::policy::{
    default_policy, PolicyCount, PolicyCounts, PolicyEntry, PolicyTable, POLICY_NAMES,
};
use crate::solicit::round::Request;

mod placement;

/// FNV-1a over a target's text: a cheap grouping key (equal targets, equal
/// keys; a collision only costs a string comparison).
fn target_hash(t: &Target) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    match t {
        Target::ServiceSet(s) => feed(s.as_bytes()),
        Target::Member { service_set, host } => {
            feed(service_set.as_bytes());
            feed(host.as_bytes());
        }
        Target::Resource { host, resource } => {
            feed(host.as_bytes());
            feed(resource.as_bytes());
        }
    }
    h
}

/// Resolves one kind's requests, round after round.
pub struct Mediator {
    kind: Kind,
    table: Arc<PolicyTable>,
    /// Parameter names seen, by ordinal.
    params: Vec<Arc<str>>,
    pub counts: Arc<PolicyCounts>,
    rng: SmallRng,
    bids: Vec<Bid>,
    influence: Vec<f64>,
    alloc: Vec<f64>,
    scratch: Vec<usize>,
    opt: optimise::Scratch,
    hosts: Vec<String>,
    keys: Vec<u128>,
    order: Vec<u32>,
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
            params: Vec::new(),
            counts,
            rng: SmallRng::seed_from_u64(seed),
            bids: Vec::new(),
            influence: Vec::new(),
            alloc: Vec::new(),
            scratch: Vec::new(),
            opt: optimise::Scratch::default(),
            hosts: Vec::new(),
            keys: Vec::new(),
            order: Vec::new(),
            flat: Vec::new(),
            placed: Vec::new(),
            search_budget: Duration::from_millis(5),
        }
    }

    fn param_name(&self, ordinal: u32) -> Arc<str> {
        self.params
            .get(ordinal as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    fn count(&self, p: &Policy, n: usize) {
        self.counts.0[policy_index(p)].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Mediates `requests` into `out`. `weights[slot]` is the reputation of
    /// `modules[slot]`. Requests are grouped through a sorted index of
    /// integer keys (parameter ordinal, target hash, slot), so strings are
    /// compared only within a group and requests never move.
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
        self.keys.clear();
        for (i, r) in requests.iter_mut().enumerate() {
            let ordinal = match self.params.iter().position(|p| **p == *r.parameter) {
                Some(o) => o,
                None => {
                    self.params.push(Arc::from(r.parameter.as_str()));
                    self.params.len() - 1
                }
            };
            r.group = (ordinal as u32, target_hash(&r.target));
            let key = (u128::from(r.group.0) << 112)
                | (u128::from(r.group.1) << 48)
                | (((r.slot as u128) & 0xffff) << 32)
                | i as u128;
            self.keys.push(key);
        }
        self.keys.sort_unstable();
        self.order.clear();
        self.order.extend(self.keys.iter().map(|k| *k as u32));
        let mut order = std::mem::take(&mut self.order);
        let mut start = 0;
        while start < order.len() {
            let ordinal = requests[order[start] as usize].group.0;
            let end = start
                + order[start..]
                    .iter()
                    .take_while(|&&i| requests[i as usize].group.0 == ordinal)
                    .count();
            let first = &requests[order[start] as usize];
            let plane = modules.get(first.slot).map_or("", |m| m.plane.id.as_str());
            let policy = self
                .table
                .resolve(self.kind, &first.parameter, plane)
                .clone();
            let before = out.len();
            match &policy {
                Policy::Capacity {
                    capacity,
                    exploration,
                } => self.pool(
                    round,
                    requests,
                    &mut order[start..end],
                    modules,
                    weights,
                    *capacity,
                    *exploration,
                    out,
                ),
                Policy::Optimise { lambda } => {
                    let mut run = order[start..end].to_vec();
                    // A placement search needs each service set's requests together.
                    run.sort_unstable_by(|&a, &b| {
                        let (a, b) = (&requests[a as usize], &requests[b as usize]);
                        a.target.cmp(&b.target).then(a.slot.cmp(&b.slot))
                    });
                    self.placements(
                        round, requests, &run, modules, weights, settings, *lambda, deadline, out,
                    )
                }
                _ => self.per_target(
                    round,
                    requests,
                    &mut order[start..end],
                    modules,
                    weights,
                    settings,
                    out,
                ),
            }
            self.count(&policy, out.len() - before);
            start = end;
        }
        self.order = order;
    }

    /// The decision for one group (indices into `reqs`), with
    /// `self.influence` holding each member's influence.
    fn decision(
        &self,
        round: u64,
        reqs: &[Request],
        group: &[u32],
        value: f64,
        modules: &[Arc<ModuleInstance>],
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
            target: lead.target.clone(),
            parameter: self.param_name(lead.group.0),
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
        run: &mut [u32],
        modules: &[Arc<ModuleInstance>],
        weights: &[f64],
        settings: &SettingsMap,
        out: &mut Vec<Decision>,
    ) {
        let mut start = 0;
        while start < run.len() {
            let end = start + group_len(reqs, &mut run[start..]);
            let group = &run[start..end];
            let first = &reqs[group[0] as usize];
            let plane = modules.get(first.slot).map_or("", |m| m.plane.id.as_str());
            let policy = self.table.resolve(self.kind, &first.parameter, plane);
            fill_bids(
                &mut self.bids,
                &mut self.influence,
                reqs,
                group,
                modules,
                weights,
            );
            let current = settings
                .get(&first.target, &first.parameter)
                .map(|d| d.value);
            let integer = param::is_integer(&first.parameter);
            if let Some(v) =
                mediate_value(policy, &self.bids, integer, current, &mut self.influence)
            {
                out.extend(self.decision(round, reqs, group, v, modules));
            }
            start = end;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pool(
        &mut self,
        round: u64,
        reqs: &[Request],
        run: &mut [u32],
        modules: &[Arc<ModuleInstance>],
        weights: &[f64],
        capacity: f64,
        exploration: f64,
        out: &mut Vec<Decision>,
    ) {
        separate_collisions(reqs, run);
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
        let mut start = 0;
        while start < run.len() {
            let end = start + group_len(reqs, &mut run[start..]);
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
            out.extend(self.decision(round, reqs, &run[start..end], value, modules));
            start = end;
        }
        self.alloc = allocs;
    }
}

/// How many leading indices of `run` name the same (parameter, target) as
/// the first. Equal keys almost always mean equal targets; when two targets'
/// hashes collide, their indices are first ordered by target so that they
/// do not interleave.
fn group_len(reqs: &[Request], run: &mut [u32]) -> usize {
    let first = &reqs[run[0] as usize];
    let same_key = run
        .iter()
        .take_while(|&&i| reqs[i as usize].group == first.group)
        .count();
    let same = run[..same_key]
        .iter()
        .take_while(|&&i| reqs[i as usize].target == first.target)
        .count();
    if same < same_key {
        separate_collisions(reqs, &mut run[..same_key]);
        let first = &reqs[run[0] as usize];
        return run[..same_key]
            .iter()
            .take_while(|&&i| reqs[i as usize].target == first.target)
            .count();
    }
    same
}

/// Within runs of equal (parameter, hash) keys, orders indices by target so
/// that two targets whose hashes collide do not interleave.
fn separate_collisions(reqs: &[Request], order: &mut [u32]) {
    let mut start = 0;
    while start < order.len() {
        let key = reqs[order[start] as usize].group;
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| reqs[i as usize].group == key)
                .count();
        let run = &mut order[start..end];
        let first = &reqs[run[0] as usize].target;
        if run.iter().any(|&i| reqs[i as usize].target != *first) {
            run.sort_by(|&a, &b| {
                let (a, b) = (&reqs[a as usize], &reqs[b as usize]);
                a.target.cmp(&b.target).then(a.slot.cmp(&b.slot))
            });
        }
        start = end;
    }
}

fn fill_bids(
    bids: &mut Vec<Bid>,
    influence: &mut Vec<f64>,
    reqs: &[Request],
    group: &[u32],
    modules: &[Arc<ModuleInstance>],
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
mod tests {
    use super::*;

    fn req(slot: usize, set: &str, group: (u32, u64)) -> Request {
        Request {
            slot,
            target: Target::ServiceSet(set.into()),
            parameter: param::INSTANCES.into(),
            value: 1.0,
            group,
        }
    }

    #[test]
    fn colliding_keys_still_group_by_target() {
        // Three requests share one key (a forced hash collision) but name two
        // targets, interleaved by slot as the key sort would leave them.
        let reqs = vec![
            req(0, "a", (0, 7)),
            req(1, "b", (0, 7)),
            req(2, "a", (0, 7)),
            req(0, "c", (0, 9)),
        ];
        let mut order = vec![0u32, 1, 2, 3];
        let first = group_len(&reqs, &mut order);
        assert_eq!(first, 2);
        assert!(order[..2]
            .iter()
            .all(|&i| reqs[i as usize].target == Target::ServiceSet("a".into())));
        assert_eq!(group_len(&reqs, &mut order[2..]), 1);
        assert_eq!(group_len(&reqs, &mut order[3..]), 1);
    }

    #[test]
    fn target_hash_distinguishes_field_boundaries() {
        let a = Target::Member {
            service_set: "ab".into(),
            host: "c".into(),
        };
        let b = Target::Member {
            service_set: "a".into(),
            host: "bc".into(),
        };
        assert_ne!(target_hash(&a), target_hash(&b));
        assert_eq!(target_hash(&a), target_hash(&a.clone()));
    }
}
