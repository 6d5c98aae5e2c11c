//! Default allocation: CPU and memory shares of a host among its virtual
//! resources, by demand.
//!
//! For each host, the virtual resources are the service-set members on it
//! that name a resource (`Member.resource = Some(r)`), across all sets in
//! the view, deduplicated. With `n` of them, demand `d_i` and floor `f`:
//!
//! ```text
//! share_i = f + (1 − n·f) × d_i / Σ_j d_j      (equal 1/n if n·f ≥ 1 or Σ d = 0)
//! ```
//!
//! so the shares of a host sum to 1 and nobody gets less than the floor.
//! CPU demand is the resource's `cpu.utilization`, memory demand its
//! `memory.used`. A resource without a usable reading gets an equal default
//! demand: the mean of the known demands on that host (neutral: it neither
//! gains nor loses against the others), or equal shares if none is known.
//! Memory shares can be switched off in the config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vcp_common::metric::{Metric, CPU_UTILIZATION, MEMORY_USED};
use vcp_common::module::{
    param, Kind, ModuleLogic, ModuleSpec, Proposal, SensorSelector, Solicitation, Target,
};
use vcp_common::resource::ResourceId;
use vcp_common::view::SensorView;

use super::{builtin_spec, usable};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllocationConfig {
    /// Least share of any virtual resource.
    pub floor: f64,
    /// Also propose memory shares.
    pub memory: bool,
}

impl Default for AllocationConfig {
    fn default() -> Self {
        AllocationConfig {
            floor: 0.05,
            memory: true,
        }
    }
}

/// The default allocation module; see the module docs. Stateless.
#[derive(Debug, Clone, Default)]
pub struct Allocation {
    config: AllocationConfig,
}

/// Shares from demands (`None` = unknown), in the same order; see the
/// module docs. Empty in, empty out.
pub fn shares(demands: &[Option<f64>], floor: f64) -> Vec<f64> {
    let n = demands.len() as f64;
    let floor = usable(floor).unwrap_or(0.0);
    let known: Vec<f64> = demands.iter().filter_map(|d| d.and_then(usable)).collect();
    let default = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let d: Vec<f64> = demands
        .iter()
        .map(|x| x.and_then(usable).unwrap_or(default))
        .collect();
    let total: f64 = d.iter().sum();
    if n * floor >= 1.0 || !(total > 0.0 && total.is_finite()) {
        return vec![1.0 / n; demands.len()];
    }
    d.iter()
        .map(|di| floor + (1.0 - n * floor) * di / total)
        .collect()
}

impl Allocation {
    pub fn new(config: AllocationConfig) -> Self {
        Allocation { config }
    }

    /// Host → its virtual resources, both sorted.
    fn resources(view: &SensorView) -> BTreeMap<&str, Vec<&str>> {
        let mut by_host: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for set in view.service_sets.iter() {
            for m in &set.members {
                if let Some(r) = m.resource.as_deref() {
                    by_host.entry(m.host.as_str()).or_default().push(r);
                }
            }
        }
        for rs in by_host.values_mut() {
            rs.sort_unstable();
            rs.dedup();
        }
        by_host
    }

    fn propose(
        &self,
        view: &SensorView,
        host: &str,
        resources: &[&str],
        metric: Metric,
        parameter: &str,
        out: &mut Vec<Proposal>,
    ) {
        let demands: Vec<Option<f64>> = resources
            .iter()
            .map(|r| view.value(host, r, metric.name))
            .collect();
        for (r, value) in resources.iter().zip(shares(&demands, self.config.floor)) {
            // The view holds only valid resource ids (the decoder checks them).
            let Ok(resource) = ResourceId::new(*r) else {
                continue;
            };
            out.push(Proposal {
                target: Target::Resource {
                    host: host.to_owned(),
                    resource,
                },
                parameter: parameter.to_owned(),
                value,
            });
        }
    }
}

impl ModuleLogic for Allocation {
    fn spec(&self) -> ModuleSpec {
        let (inputs, outputs) = if self.config.memory {
            (
                vec![
                    SensorSelector::metric(CPU_UTILIZATION.name),
                    SensorSelector::metric(MEMORY_USED.name),
                ],
                &[param::CPU_SHARE, param::MEMORY_SHARE][..],
            )
        } else {
            (
                vec![SensorSelector::metric(CPU_UTILIZATION.name)],
                &[param::CPU_SHARE][..],
            )
        };
        builtin_spec(Kind::Allocation, inputs, outputs, Vec::new(), 20)
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let mut out = Vec::new();
        for (host, resources) in Self::resources(&s.view) {
            self.propose(
                &s.view,
                host,
                &resources,
                CPU_UTILIZATION,
                param::CPU_SHARE,
                &mut out,
            );
            if self.config.memory {
                self.propose(
                    &s.view,
                    host,
                    &resources,
                    MEMORY_USED,
                    param::MEMORY_SHARE,
                    &mut out,
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::collections::HashMap;

    /// `(parameter, host) → [(resource, share)]` of every proposal.
    fn run(m: &mut Allocation, v: SensorView) -> HashMap<(String, String), Vec<(String, f64)>> {
        let mut out: HashMap<(String, String), Vec<(String, f64)>> = HashMap::new();
        for p in m.solicit(&solicitation(0, Kind::Allocation, v)) {
            let Target::Resource { host, resource } = p.target else {
                panic!("unexpected target {}", p.target);
            };
            out.entry((p.parameter, host))
                .or_default()
                .push((resource.to_string(), p.value));
        }
        out
    }

    fn key(parameter: &str, host: &str) -> (String, String) {
        (parameter.to_owned(), host.to_owned())
    }

    fn fixture() -> SensorView {
        let at = 0;
        view(
            0,
            vec![
                host(
                    "h1",
                    vec![
                        reading("cpu", CPU_UTILIZATION, 0.99, at),
                        reading("cgroup/web", CPU_UTILIZATION, 0.6, at),
                        reading("cgroup/db", CPU_UTILIZATION, 0.2, at),
                        reading("cgroup/web", MEMORY_USED, 3e9, at),
                        reading("cgroup/db", MEMORY_USED, 1e9, at),
                        reading("cgroup/batch", MEMORY_USED, f64::NAN, at),
                    ],
                ),
                host("h2", vec![]),
            ],
            vec![
                set("web", &[("h1", Some("cgroup/web")), ("h2", None)], 2, 1, 2),
                set(
                    "back",
                    &[
                        ("h1", Some("cgroup/db")),
                        ("h1", Some("cgroup/batch")),
                        ("h1", Some("cgroup/db")),
                    ],
                    2,
                    1,
                    2,
                ),
                set("solo", &[("h2", Some("vm/solo"))], 1, 1, 1),
            ],
        )
    }

    #[test]
    fn cpu_shares_follow_demand_above_the_floor_and_sum_to_one() {
        let out = run(&mut Allocation::default(), fixture());
        let cpu = &out[&key(param::CPU_SHARE, "h1")];
        let names: Vec<&str> = cpu.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, ["cgroup/batch", "cgroup/db", "cgroup/web"]);
        // Demands: batch unknown → mean 0.4; db 0.2; web 0.6; Σ = 1.2;
        // 1 − 3 × 0.05 = 0.85 shared by demand.
        close(cpu[0].1, 0.05 + 0.85 * 0.4 / 1.2);
        close(cpu[1].1, 0.05 + 0.85 * 0.2 / 1.2);
        close(cpu[2].1, 0.05 + 0.85 * 0.6 / 1.2);
        close(cpu.iter().map(|(_, s)| s).sum(), 1.0);
        // A lone resource gets the whole host; the whole-host member none.
        assert_eq!(
            out[&key(param::CPU_SHARE, "h2")],
            vec![("vm/solo".to_owned(), 1.0)]
        );
    }

    #[test]
    fn memory_shares_use_memory_demand() {
        let out = run(&mut Allocation::default(), fixture());
        let mem = &out[&key(param::MEMORY_SHARE, "h1")];
        // batch's NaN → mean 2e9; Σ = 6e9.
        close(mem[0].1, 0.05 + 0.85 * 2.0 / 6.0);
        close(mem[1].1, 0.05 + 0.85 * 1.0 / 6.0);
        close(mem[2].1, 0.05 + 0.85 * 3.0 / 6.0);
        close(mem.iter().map(|(_, s)| s).sum(), 1.0);
        let mut m = Allocation::new(AllocationConfig {
            memory: false,
            ..Default::default()
        });
        assert_eq!(m.spec().outputs, vec![param::CPU_SHARE.to_owned()]);
        assert!(run(&mut m, fixture())
            .keys()
            .all(|(p, _)| p == param::CPU_SHARE));
    }

    #[test]
    fn shares_degrade_to_equal() {
        // n·floor ≥ 1.
        assert_eq!(shares(&[Some(0.9), Some(0.1)], 0.5), vec![0.5, 0.5]);
        // Nothing known, or no demand at all.
        assert_eq!(shares(&[None, None, None, None], 0.05), vec![0.25; 4]);
        assert_eq!(shares(&[Some(0.0), Some(0.0)], 0.05), vec![0.5, 0.5]);
        // Zero demand keeps exactly the floor.
        let s = shares(&[Some(0.0), Some(1.0)], 0.05);
        close(s[0], 0.05);
        close(s[1], 0.95);
        // A bad floor is no floor.
        let s = shares(&[Some(1.0), Some(3.0)], f64::NAN);
        close(s[0], 0.25);
        close(s[1], 0.75);
        assert!(shares(&[], 0.05).is_empty());
        // Infinite demand is unknown, not a panic.
        let s = shares(&[Some(f64::INFINITY), Some(1.0)], 0.0);
        assert_eq!(s, vec![0.5, 0.5]);
    }

    #[test]
    fn nothing_named_gives_nothing() {
        let mut m = Allocation::default();
        assert!(run(&mut m, SensorView::default()).is_empty());
        let v = view(
            0,
            vec![cpu_host("a", 0.5)],
            vec![set("web", &[("a", None)], 1, 1, 1)],
        );
        assert!(run(&mut m, v).is_empty());
    }
}
