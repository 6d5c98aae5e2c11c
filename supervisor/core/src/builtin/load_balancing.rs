//! Default load balancing: weights by spare CPU capacity.
//!
//! For each service set and each member host `i` with a CPU utilisation
//! reading `u_i` (a whole-host member reads its host's `cpu`, a resource
//! member its resource, as in [`SensorView::set_utilization`]):
//!
//! ```text
//! spare_i  = max(0, 1 − u_i) + floor        (u_i clamped to 0..=1)
//! weight_i = spare_i / Σ_j spare_j
//! ```
//!
//! The floor (default 0.01) keeps a saturated member in rotation with a
//! small weight instead of none. Several members of one set on the same
//! host add their spares into that host's weight. Members without a usable
//! reading get no weight: the weights, over those with readings, sum to 1.
//! If every spare is zero (saturated members with a zero floor) the weights
//! are equal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vcp_common::metric::CPU_UTILIZATION;
use vcp_common::module::{
    param, Goal, Kind, ModuleLogic, ModuleSpec, Objective, Proposal, SensorSelector, Solicitation,
    Target,
};
use vcp_common::view::{SensorView, ServiceSetState};

use super::{builtin_spec, ratio, usable};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadBalancingConfig {
    /// Added to every member's spare capacity so that none gets weight 0.
    pub floor: f64,
}

impl Default for LoadBalancingConfig {
    fn default() -> Self {
        LoadBalancingConfig { floor: 0.01 }
    }
}

/// The default load balancing module; see the module docs. Stateless.
#[derive(Debug, Clone, Default)]
pub struct LoadBalancing {
    config: LoadBalancingConfig,
}

impl LoadBalancing {
    pub fn new(config: LoadBalancingConfig) -> Self {
        LoadBalancing { config }
    }

    /// `(host, weight)` for the members of `set` with readings, by host name.
    pub fn weights(&self, view: &SensorView, set: &ServiceSetState) -> Vec<(String, f64)> {
        let floor = usable(self.config.floor).unwrap_or(0.0);
        let metric = CPU_UTILIZATION.name;
        let mut spare: BTreeMap<&str, f64> = BTreeMap::new();
        for m in &set.members {
            let resource = m.resource.as_deref().unwrap_or("cpu");
            let Some(u) = view.value(&m.host, resource, metric).and_then(ratio) else {
                continue;
            };
            *spare.entry(m.host.as_str()).or_insert(0.0) += (1.0 - u) + floor;
        }
        let total: f64 = spare.values().sum();
        let n = spare.len() as f64;
        spare
            .into_iter()
            .map(|(host, s)| {
                let w = if total > 0.0 { s / total } else { 1.0 / n };
                (host.to_owned(), w)
            })
            .collect()
    }
}

impl ModuleLogic for LoadBalancing {
    fn spec(&self) -> ModuleSpec {
        // Even out the members: drive their utilisation down together.
        let goal = Goal {
            metric: CPU_UTILIZATION.name.to_owned(),
            objective: Objective::Minimise,
            target: None,
            conditions: Vec::new(),
        };
        builtin_spec(
            Kind::LoadBalancing,
            vec![SensorSelector::metric(CPU_UTILIZATION.name)],
            &[param::LB_WEIGHT],
            vec![goal],
            10,
        )
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let mut out = Vec::new();
        for set in s.view.service_sets.iter() {
            for (host, value) in self.weights(&s.view, set) {
                out.push(Proposal {
                    target: Target::Member {
                        service_set: set.id.clone(),
                        host,
                    },
                    parameter: param::LB_WEIGHT.to_owned(),
                    value,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use vcp_common::metric;

    /// `(set, host, weight)` of every proposal.
    fn run(m: &mut LoadBalancing, v: SensorView) -> Vec<(String, String, f64)> {
        m.solicit(&solicitation(0, Kind::LoadBalancing, v))
            .into_iter()
            .map(|p| {
                assert_eq!(p.parameter, param::LB_WEIGHT);
                match p.target {
                    Target::Member { service_set, host } => (service_set, host, p.value),
                    t => panic!("unexpected target {t}"),
                }
            })
            .collect()
    }

    fn weights_of(out: &[(String, String, f64)]) -> Vec<f64> {
        out.iter().map(|(_, _, w)| *w).collect()
    }

    #[test]
    fn weights_follow_spare_capacity_and_sum_to_one() {
        let mut m = LoadBalancing::default();
        let v = view(
            0,
            vec![cpu_host("b", 0.6), cpu_host("a", 0.2), cpu_host("c", 1.0)],
            vec![set(
                "web",
                &[("b", None), ("a", None), ("c", None)],
                3,
                1,
                3,
            )],
        );
        let out = run(&mut m, v);
        let hosts: Vec<&str> = out.iter().map(|(_, h, _)| h.as_str()).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        assert!(out.iter().all(|(s, _, _)| s == "web"));
        // spares 0.81, 0.41, 0.01; total 1.23
        let w = weights_of(&out);
        close(w[0], 0.81 / 1.23);
        close(w[1], 0.41 / 1.23);
        close(w[2], 0.01 / 1.23);
        close(w.iter().sum(), 1.0);
    }

    #[test]
    fn members_without_readings_get_no_weight() {
        let mut m = LoadBalancing::default();
        let v = view(
            0,
            vec![
                cpu_host("a", 0.5),
                cpu_host("b", f64::NAN),
                host(
                    "d",
                    vec![reading("cgroup/api", metric::CPU_UTILIZATION, 0.25, 0)],
                ),
            ],
            vec![set(
                "api",
                &[
                    ("a", None),
                    ("b", None),
                    ("gone", None),
                    ("d", Some("cgroup/api")),
                ],
                4,
                1,
                4,
            )],
        );
        let out = run(&mut m, v);
        let hosts: Vec<&str> = out.iter().map(|(_, h, _)| h.as_str()).collect();
        assert_eq!(hosts, ["a", "d"]);
        // spares 0.51 and 0.76
        close(out[0].2, 0.51 / 1.27);
        close(out[1].2, 0.76 / 1.27);
    }

    #[test]
    fn saturated_members_share_equally() {
        for floor in [0.01, 0.0, -1.0, f64::NAN] {
            let mut m = LoadBalancing::new(LoadBalancingConfig { floor });
            let v = view(
                0,
                vec![cpu_host("a", 1.0), cpu_host("b", 1.7)],
                vec![set("web", &[("a", None), ("b", None)], 2, 1, 2)],
            );
            assert_eq!(weights_of(&run(&mut m, v)), vec![0.5, 0.5]);
        }
    }

    #[test]
    fn nothing_to_weigh_gives_nothing() {
        let mut m = LoadBalancing::default();
        assert!(run(&mut m, SensorView::default()).is_empty());
        let v = view(0, vec![cpu_host("a", 0.5)], vec![set("web", &[], 0, 0, 0)]);
        assert!(run(&mut m, v).is_empty());
    }
}
