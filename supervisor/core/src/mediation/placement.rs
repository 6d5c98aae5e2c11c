//! Placement requests (the optimise policy): one search per service set
//! over its member hosts, within a time budget inside the round's deadline.

use std::sync::Arc;
use std::time::Instant;

use vcp_common::module::{param, Target};

use super::Mediator;
use crate::admission::intern::Interner;
use crate::admission::Request;
use crate::instance::Instance;
use crate::mediate::optimise::{self, place, Problem, Search};
use crate::settings::{Decision, SettingsMap};
use crate::ModuleKey;

impl Mediator {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn placements(
        &mut self,
        round: u64,
        reqs: &[Request],
        targets: &Interner,
        run: &[u32],
        modules: &[Arc<Instance>],
        weights: &[f64],
        settings: &SettingsMap,
        lambda: f64,
        deadline: Instant,
        out: &mut Vec<Decision>,
    ) {
        let set_of = |i: &u32| match targets.target(reqs[*i as usize].target) {
            Target::Member { service_set, .. } => Some(service_set.as_str()),
            _ => None,
        };
        let mut start = 0;
        while start < run.len() {
            let set = set_of(&run[start]);
            let end = start + run[start..].iter().take_while(|i| set_of(i) == set).count();
            if let Some(set) = set {
                let group = Placement {
                    reqs,
                    targets,
                    group: &run[start..end],
                };
                self.place_set(
                    round, set, group, modules, weights, settings, lambda, deadline, out,
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
        group: Placement<'_>,
        modules: &[Arc<Instance>],
        weights: &[f64],
        settings: &SettingsMap,
        lambda: f64,
        deadline: Instant,
        out: &mut Vec<Decision>,
    ) {
        self.hosts.clear();
        for (_, t) in group.iter() {
            if let Target::Member { host, .. } = t {
                if !self.hosts.contains(host) {
                    self.hosts.push(host.clone());
                }
            }
        }
        self.hosts.sort();
        let mut slots: Vec<usize> = group.iter().map(|(r, _)| r.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        let h = self.hosts.len();
        self.flat.clear();
        self.flat.resize(slots.len() * h, 0);
        for (r, t) in group.iter() {
            let (Target::Member { host, .. }, Some(m)) =
                (t, slots.iter().position(|s| *s == r.slot))
            else {
                continue;
            };
            if let Some(j) = self.hosts.iter().position(|x| x == host) {
                self.flat[m * h + j] = r.value.max(0.0).round() as u32;
            }
        }
        let instances = settings
            .get(&Target::ServiceSet(set.to_owned()), param::INSTANCES)
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
        let problem = Problem {
            instances,
            capacities: &capacities,
            proposals: &proposals,
            lambda,
        };
        let search = Search {
            deadline: deadline.min(Instant::now() + self.search_budget),
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
        let parameter: Arc<str> = Arc::from(param::PLACEMENT);
        for (host, count) in self.hosts.iter().zip(&self.placed) {
            out.push(Decision {
                round,
                target: Target::Member {
                    service_set: set.to_owned(),
                    host: host.clone(),
                },
                parameter: parameter.clone(),
                value: f64::from(*count),
                module: lead.name.clone(),
                control_plane: lead.plane_id.clone(),
                contenders: slots.len(),
                influences: influences.clone(),
            });
        }
    }
}

/// One service set's placement requests.
#[derive(Clone, Copy)]
struct Placement<'a> {
    reqs: &'a [Request],
    targets: &'a Interner,
    group: &'a [u32],
}

impl<'a> Placement<'a> {
    /// The requests with their targets.
    fn iter(self) -> impl Iterator<Item = (&'a Request, &'a Target)> {
        self.group.iter().map(move |&i| {
            let r = &self.reqs[i as usize];
            (r, self.targets.target(r.target))
        })
    }
}
