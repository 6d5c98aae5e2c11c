//! Default spread: place a service set's instances across its member hosts
//! so that the largest per-host share — what one host failure takes down —
//! is as small as possible.
//!
//! With `n` instances on `h` distinct member hosts and an optional per-host
//! cap `c`:
//!
//! ```text
//! base = ⌊n / h⌋,  rem = n mod h
//! count_i = min(c, base + [i among the rem hosts with the most spare CPU])
//! ```
//!
//! Counts differ by at most 1, which minimises the maximum. Spare CPU is
//! `1 − cpu.utilization` of the host (resource `cpu`); hosts without a
//! reading rank last, and ties go by host name so the placement is
//! deterministic. When the cap makes the placement infeasible (`h × c < n`)
//! every host gets `c` and the counts sum to less than `n`: what fits is
//! placed. Every member host gets a proposal, zeros included, so a host
//! that held instances is told to hold none. Sets without members get none.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use vcp_common::metric::CPU_UTILIZATION;
use vcp_common::module::{
    param, Goal, Kind, ModuleLogic, ModuleSpec, Objective, Proposal, SensorSelector, Solicitation,
    Target,
};
use vcp_common::view::{SensorView, ServiceSetState};

use super::{builtin_spec, ratio};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpreadConfig {
    /// Most instances of one set on one host; none by default.
    pub max_per_host: Option<u32>,
}

/// The default spread module; see the module docs. Stateless.
#[derive(Debug, Clone, Default)]
pub struct Spread {
    config: SpreadConfig,
}

impl Spread {
    pub fn new(config: SpreadConfig) -> Self {
        Spread { config }
    }

    /// `(host, count)` for every distinct member host of `set`, by host name.
    pub fn placement(&self, view: &SensorView, set: &ServiceSetState) -> Vec<(String, u32)> {
        let mut hosts: Vec<&str> = set.members.iter().map(|m| m.host.as_str()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        if hosts.is_empty() {
            return Vec::new();
        }
        // Rank: most spare CPU first, no reading last, then by name.
        let spare = |h: &str| {
            view.value(h, "cpu", CPU_UTILIZATION.name)
                .and_then(ratio)
                .map(|u| 1.0 - u)
        };
        let mut ranked: Vec<(&str, Option<f64>)> = hosts.iter().map(|&h| (h, spare(h))).collect();
        ranked.sort_by(|(ha, sa), (hb, sb)| {
            let by_spare = match (sa, sb) {
                (Some(a), Some(b)) => b.partial_cmp(a).unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            by_spare.then_with(|| ha.cmp(hb))
        });
        let h = u32::try_from(ranked.len()).unwrap_or(u32::MAX);
        let (base, rem) = (set.instances / h, set.instances % h);
        let cap = self.config.max_per_host.unwrap_or(u32::MAX);
        let mut out: Vec<(String, u32)> = ranked
            .iter()
            .enumerate()
            .map(|(i, (host, _))| {
                let extra = u32::from((i as u64) < u64::from(rem));
                ((*host).to_owned(), (base + extra).min(cap))
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl ModuleLogic for Spread {
    fn spec(&self) -> ModuleSpec {
        // Minimise what one host holds of a set.
        let goal = Goal {
            metric: param::PLACEMENT.to_owned(),
            objective: Objective::Minimise,
            target: None,
            conditions: Vec::new(),
        };
        builtin_spec(
            Kind::Spread,
            vec![SensorSelector::metric(CPU_UTILIZATION.name)],
            &[param::PLACEMENT],
            vec![goal],
            50,
        )
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let mut out = Vec::new();
        for set in s.view.service_sets.iter() {
            for (host, count) in self.placement(&s.view, set) {
                out.push(Proposal {
                    target: Target::Member {
                        service_set: set.id.clone(),
                        host,
                    },
                    parameter: param::PLACEMENT.to_owned(),
                    value: f64::from(count),
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

    fn three_hosts(instances: u32) -> SensorView {
        view(
            0,
            vec![cpu_host("a", 0.5), cpu_host("b", 0.1), cpu_host("c", 0.3)],
            vec![set(
                "web",
                &[("c", None), ("a", None), ("b", None)],
                instances,
                1,
                10,
            )],
        )
    }

    /// `(host, count)` of every proposal of set `web`.
    fn run(m: &mut Spread, v: SensorView) -> Vec<(String, f64)> {
        m.solicit(&solicitation(0, Kind::Spread, v))
            .into_iter()
            .map(|p| {
                assert_eq!(p.parameter, param::PLACEMENT);
                match p.target {
                    Target::Member { service_set, host } if service_set == "web" => (host, p.value),
                    t => panic!("unexpected target {t}"),
                }
            })
            .collect()
    }

    fn counts(out: &[(String, f64)]) -> Vec<f64> {
        out.iter().map(|(_, c)| *c).collect()
    }

    #[test]
    fn remainder_goes_to_the_most_spare_hosts() {
        let mut m = Spread::default();
        let out = run(&mut m, three_hosts(5));
        let hosts: Vec<&str> = out.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        // base 1, remainder 2 to b (0.9 spare) and c (0.7).
        assert_eq!(counts(&out), vec![1.0, 2.0, 2.0]);
        assert_eq!(counts(&run(&mut m, three_hosts(4))), vec![1.0, 2.0, 1.0]);
        assert_eq!(counts(&run(&mut m, three_hosts(9))), vec![3.0, 3.0, 3.0]);
        assert_eq!(counts(&run(&mut m, three_hosts(2))), vec![0.0, 1.0, 1.0]);
        assert_eq!(counts(&run(&mut m, three_hosts(0))), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn ties_by_name_and_missing_readings_last() {
        let mut m = Spread::default();
        let v = view(
            0,
            vec![
                cpu_host("b", 0.2),
                cpu_host("c", 0.2),
                cpu_host("d", f64::NAN),
            ],
            vec![set(
                "web",
                &[
                    ("d", None),
                    ("c", None),
                    ("b", None),
                    ("a", None),
                    ("b", Some("cgroup/x")),
                ],
                6,
                1,
                10,
            )],
        );
        // Four distinct hosts: base 1, remainder 2 to b then c; a and d
        // (no usable reading) last.
        assert_eq!(
            run(&mut m, v),
            vec![
                ("a".to_owned(), 1.0),
                ("b".to_owned(), 2.0),
                ("c".to_owned(), 2.0),
                ("d".to_owned(), 1.0)
            ]
        );
    }

    #[test]
    fn cap_places_what_fits() {
        let mut m = Spread::new(SpreadConfig {
            max_per_host: Some(2),
        });
        assert_eq!(counts(&run(&mut m, three_hosts(5))), vec![1.0, 2.0, 2.0]);
        assert_eq!(counts(&run(&mut m, three_hosts(7))), vec![2.0, 2.0, 2.0]);
        let mut m = Spread::new(SpreadConfig {
            max_per_host: Some(0),
        });
        assert_eq!(counts(&run(&mut m, three_hosts(5))), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn counts_sum_to_instances_and_differ_by_at_most_one() {
        let mut m = Spread::default();
        for n in 0..40 {
            let c = counts(&run(&mut m, three_hosts(n)));
            assert_eq!(c.iter().sum::<f64>(), f64::from(n));
            let (lo, hi) = c
                .iter()
                .fold((f64::MAX, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
            assert!(hi - lo <= 1.0);
        }
    }

    #[test]
    fn sets_without_members_get_nothing() {
        let mut m = Spread::default();
        let v = view(0, vec![cpu_host("a", 0.1)], vec![set("web", &[], 3, 1, 3)]);
        assert!(run(&mut m, v).is_empty());
        assert!(run(&mut m, SensorView::default()).is_empty());
    }
}
