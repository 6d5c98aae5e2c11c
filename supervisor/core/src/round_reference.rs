//! The reference model the round's property tests compare against: what
//! admission and mediation decide, worked out from the texts (parameters
//! and targets as strings, groups in a `BTreeMap`), with none of the
//! interning, counting sorts or reused buffers of the real round.

use std::collections::BTreeMap;
use std::sync::Arc;

use vcp_common::module::{param, Proposal, Target};

use crate::admission::intern::target_hash;
use crate::constraints::Constraints;
use crate::instance::Instance;
use crate::mediate::{mediate_value, Bid};
use crate::mediation::default_policy;
use crate::reputation::ReputationSnapshot;
use crate::settings::{Decision, SettingsMap};

/// The reference: what admission and mediation decide, from the texts.
pub(super) struct Reference {
    constraints: Constraints,
    /// Parameters in the order mediation first saw them.
    ranks: Vec<String>,
}

struct Admitted {
    slot: usize,
    index: usize,
    parameter: String,
    target: Target,
    value: f64,
}

impl Reference {
    pub(super) fn new(constraints: Constraints) -> Reference {
        Reference {
            constraints,
            ranks: Vec::new(),
        }
    }

    pub(super) fn round(
        &mut self,
        round: u64,
        modules: &[Arc<Instance>],
        answers: &[(usize, Vec<Proposal>)],
        settings: &SettingsMap,
    ) -> (Vec<Decision>, Vec<Decision>) {
        let constraints = &self.constraints;
        let mut admitted = Vec::new();
        for (slot, proposals) in answers {
            let m = &modules[*slot];
            let quota = m.limits.max_requests_per_round as usize;
            for (i, p) in proposals.iter().enumerate() {
                let declared = m.spec.outputs.contains(&p.parameter);
                if !declared || !m.plane.scope.covers(&p.target) || i >= quota {
                    continue;
                }
                let current = || settings.get(&p.target, &p.parameter).map(|d| d.value);
                let value = match constraints.check(&p.parameter, p.value, current) {
                    crate::constraints::Verdict::Accept(v) => v,
                    crate::constraints::Verdict::Clip { value, .. } => value,
                    crate::constraints::Verdict::Reject(_) => continue,
                };
                admitted.push(Admitted {
                    slot: *slot,
                    index: admitted.len(),
                    parameter: p.parameter.clone(),
                    target: p.target.clone(),
                    value,
                });
            }
        }
        let mut shadow = Vec::new();
        let mut groups: BTreeMap<(usize, u64, Target), Vec<&Admitted>> = BTreeMap::new();
        for a in &admitted {
            let m = &modules[a.slot];
            if m.shadow {
                shadow.push(Decision {
                    round,
                    target: a.target.clone(),
                    parameter: Arc::from(a.parameter.as_str()),
                    value: a.value,
                    module: m.name.clone(),
                    control_plane: m.plane_id.clone(),
                    contenders: 1,
                    influences: vec![],
                });
                continue;
            }
            let rank = match self.ranks.iter().position(|p| *p == a.parameter) {
                Some(r) => r,
                None => {
                    self.ranks.push(a.parameter.clone());
                    self.ranks.len() - 1
                }
            };
            groups
                .entry((rank, target_hash(&a.target), a.target.clone()))
                .or_default()
                .push(a);
        }
        let weights = ReputationSnapshot::<crate::ModuleKey>::empty(0.5, 0);
        let mut decisions = Vec::new();
        for ((rank, _, target), mut members) in groups {
            members.sort_by_key(|a| (a.slot, a.index));
            let parameter = &self.ranks[rank];
            let policy = default_policy(parameter);
            let bids: Vec<Bid> = members
                .iter()
                .map(|a| Bid {
                    value: a.value,
                    weight: weights.get(&modules[a.slot].key),
                    is_default: modules[a.slot].is_default,
                    module: a.slot as u32,
                })
                .collect();
            let mut influence = vec![0.0; bids.len()];
            let integer = param::is_integer(parameter);
            let Some(value) = mediate_value(&policy, &bids, integer, None, &mut influence) else {
                continue;
            };
            let (lead, _) = members
                .iter()
                .zip(&influence)
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.slot.cmp(&a.0.slot)))
                .unwrap();
            let m = &modules[lead.slot];
            decisions.push(Decision {
                round,
                target,
                parameter: Arc::from(parameter.as_str()),
                value,
                module: m.name.clone(),
                control_plane: m.plane_id.clone(),
                contenders: members.len(),
                influences: members
                    .iter()
                    .zip(&influence)
                    .filter(|(_, inf)| **inf > 0.0)
                    .map(|(a, inf)| (modules[a.slot].key.clone(), *inf))
                    .collect(),
            });
        }
        (decisions, shadow)
    }
}
