//! Default autoscaling, after Kubernetes' Horizontal Pod Autoscaler.
//!
//! Per service set, with `u` its mean CPU utilisation
//! ([`SensorView::set_utilization`]) and `t` the target utilisation:
//!
//! ```text
//! desired = current                      if |u / t − 1| ≤ tolerance
//!         = ceil(current × u / t)        otherwise
//! proposal = clamp(max { desired_k : at_k ∈ [now − window, now] },
//!                  min_instances, max_instances)
//! ```
//!
//! The max over the scale-down stabilisation window makes scale-up
//! immediate while scale-down waits until every recommendation of the last
//! `window` agrees on the lower count. The history of `(at_ms, desired)` is
//! kept per set (unclamped, so a changed min/max applies at once) and pruned
//! to the window. The `ceil` ignores a 1e-9 excess so that floating-point
//! noise (`9 × (0.4 / 0.6) = 6.000000000000001`) does not add an instance.
//!
//! A proposal is made every round for every set it can decide, even when
//! unchanged: the module holds its opinion for the mediator. Nothing is
//! proposed for a set without readings, with a NaN utilisation or with
//! `min_instances > max_instances`, nor at all when the config is invalid.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use vcp_common::metric::{APP_UTILIZATION, CPU_UTILIZATION};
use vcp_common::module::{
    param, Cmp, Condition, Goal, Kind, ModuleLogic, ModuleSpec, Objective, Proposal,
    SensorSelector, Solicitation, Target,
};
use vcp_common::view::{SensorView, ServiceSetState};

use super::{builtin_spec, usable};

/// Longest history kept per set, whatever the window (bounds memory when
/// rounds come faster than expected or `at_ms` stands still).
const MAX_HISTORY: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoscalingConfig {
    /// Mean CPU utilisation to hold, in (0, 1].
    pub target_utilization: f64,
    /// No change while `|u / target − 1|` is at most this.
    pub tolerance: f64,
    /// Scale-down stabilisation window, seconds.
    pub scale_down_window_s: u64,
    /// Utilisation the goal's condition keeps the set below.
    pub max_utilization: f64,
}

impl Default for AutoscalingConfig {
    fn default() -> Self {
        AutoscalingConfig {
            target_utilization: 0.6,
            tolerance: 0.1,
            scale_down_window_s: 300,
            max_utilization: 0.9,
        }
    }
}

impl AutoscalingConfig {
    fn is_valid(&self) -> bool {
        self.target_utilization.is_finite()
            && self.target_utilization > 0.0
            && usable(self.tolerance).is_some()
    }
}

/// The default autoscaling module; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Autoscaling {
    config: AutoscalingConfig,
    /// Per service set: `(at_ms, desired)` within the window, oldest first.
    history: HashMap<String, VecDeque<(i64, u32)>>,
}

impl Autoscaling {
    pub fn new(config: AutoscalingConfig) -> Self {
        Autoscaling {
            config,
            history: HashMap::new(),
        }
    }

    /// The recommendation for `set` before stabilisation, or `None` when
    /// it cannot be decided.
    fn desired(&self, view: &SensorView, set: &ServiceSetState) -> Option<u32> {
        let u = usable(view.set_utilization(set)?)?;
        let ratio = u / self.config.target_utilization;
        if (ratio - 1.0).abs() <= self.config.tolerance {
            return Some(set.instances);
        }
        let raw = (f64::from(set.instances) * ratio - 1e-9).ceil();
        // Saturate: a wild reading must not wrap around.
        Some(raw.clamp(0.0, f64::from(u32::MAX)) as u32)
    }

    /// Records `desired` at `now` for `set` and returns the max over the
    /// window.
    fn stabilise(&mut self, set: &str, now: i64, desired: u32) -> u32 {
        let window_ms =
            i64::try_from(self.config.scale_down_window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let since = now.saturating_sub(window_ms);
        let h = self.history.entry(set.to_owned()).or_default();
        // Entries from the "future" (the clock went back) are dropped too.
        h.retain(|&(at, _)| at >= since && at <= now);
        if h.len() >= MAX_HISTORY {
            h.pop_front();
        }
        h.push_back((now, desired));
        h.iter().map(|&(_, d)| d).max().unwrap_or(desired)
    }
}

impl ModuleLogic for Autoscaling {
    fn spec(&self) -> ModuleSpec {
        let goal = Goal {
            metric: param::INSTANCES.to_owned(),
            objective: Objective::Minimise,
            target: None,
            conditions: vec![Condition {
                metric: CPU_UTILIZATION.name.to_owned(),
                cmp: Cmp::Below,
                value: self.config.max_utilization,
            }],
        };
        builtin_spec(
            Kind::Autoscaling,
            // Hosts' CPU, or what a member application reports of itself.
            vec![
                SensorSelector::metric(CPU_UTILIZATION.name),
                SensorSelector::metric(APP_UTILIZATION.name),
            ],
            &[param::INSTANCES],
            vec![goal],
            50,
        )
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let view = &s.view;
        // Forget sets that left the view.
        let present: HashSet<&str> = view.service_sets.iter().map(|s| s.id.as_str()).collect();
        self.history.retain(|id, _| present.contains(id.as_str()));
        if !self.config.is_valid() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for set in view.service_sets.iter() {
            if set.min_instances > set.max_instances {
                continue;
            }
            let Some(desired) = self.desired(view, set) else {
                continue;
            };
            let stable = self.stabilise(&set.id, view.at_ms, desired);
            let value = stable.clamp(set.min_instances, set.max_instances);
            out.push(Proposal {
                target: Target::ServiceSet(set.id.clone()),
                parameter: param::INSTANCES.to_owned(),
                value: f64::from(value),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn web(instances: u32, min: u32, max: u32) -> ServiceSetState {
        set("web", &[("a", None), ("b", None)], instances, min, max)
    }

    /// Proposals for set `web` at `at_ms`, with both hosts at `u`.
    fn run(m: &mut Autoscaling, at_ms: i64, u: f64, set: ServiceSetState) -> Vec<f64> {
        let v = view(at_ms, vec![cpu_host("a", u), cpu_host("b", u)], vec![set]);
        m.solicit(&solicitation(0, Kind::Autoscaling, v))
            .into_iter()
            .map(|p| {
                assert_eq!(p.target, Target::ServiceSet("web".into()));
                assert_eq!(p.parameter, param::INSTANCES);
                p.value
            })
            .collect()
    }

    #[test]
    fn scales_by_the_utilisation_ratio() {
        // 9 × 0.4 / 0.6 = 6, not 7 from floating-point noise.
        let mut m = Autoscaling::default();
        assert_eq!(run(&mut m, 0, 0.4, web(9, 1, 10)), vec![6.0]);
        let mut m = Autoscaling::default();
        // 2 × 0.9 / 0.6 = 3.
        assert_eq!(run(&mut m, 0, 0.9, web(2, 1, 10)), vec![3.0]);
        // 3 × 0.8 / 0.6 = 4.
        assert_eq!(run(&mut m, 1000, 0.8, web(3, 1, 10)), vec![4.0]);
        // 4 × 0.95 / 0.6 = 6.33 → 7.
        assert_eq!(run(&mut m, 2000, 0.95, web(4, 1, 10)), vec![7.0]);
    }

    #[test]
    fn holds_within_tolerance_and_clamps_to_bounds() {
        let mut m = Autoscaling::new(AutoscalingConfig::default());
        // 0.65 / 0.6 = 1.083: within 10 %.
        assert_eq!(run(&mut m, 0, 0.65, web(5, 1, 10)), vec![5.0]);
        let mut m = Autoscaling::new(AutoscalingConfig::default());
        // 4 × 1.0 / 0.6 = 6.67 → 7, capped at 5.
        assert_eq!(run(&mut m, 0, 1.0, web(4, 1, 5)), vec![5.0]);
        let mut m = Autoscaling::new(AutoscalingConfig::default());
        // 4 × 0.05 / 0.6 = 0.33 → 1, raised to min 2.
        assert_eq!(run(&mut m, 0, 0.05, web(4, 2, 5)), vec![2.0]);
        // Currently above max: brought back even when within tolerance.
        let mut m = Autoscaling::new(AutoscalingConfig::default());
        assert_eq!(run(&mut m, 0, 0.6, web(9, 1, 5)), vec![5.0]);
    }

    #[test]
    fn scale_down_waits_for_the_window_scale_up_does_not() {
        let mut m = Autoscaling::new(AutoscalingConfig::default());
        let s = 1000;
        assert_eq!(run(&mut m, 0, 0.9, web(2, 1, 10)), vec![3.0]);
        // 3 × 0.2 / 0.6 = 1, but 3 was recommended within 300 s.
        assert_eq!(run(&mut m, 60 * s, 0.2, web(3, 1, 10)), vec![3.0]);
        assert_eq!(run(&mut m, 300 * s, 0.2, web(3, 1, 10)), vec![3.0]);
        // The recommendation of t = 0 has left the window.
        assert_eq!(run(&mut m, 300 * s + 1, 0.2, web(3, 1, 10)), vec![1.0]);
        // Scale-up is immediate: 1 × 1.0 / 0.6 = 1.67 → 2.
        assert_eq!(run(&mut m, 301 * s, 1.0, web(1, 1, 10)), vec![2.0]);
        // With no window, scale-down is immediate too.
        let mut m = Autoscaling::new(AutoscalingConfig {
            scale_down_window_s: 0,
            ..Default::default()
        });
        assert_eq!(run(&mut m, 0, 0.9, web(2, 1, 10)), vec![3.0]);
        assert_eq!(run(&mut m, 1, 0.2, web(3, 1, 10)), vec![1.0]);
    }

    #[test]
    fn history_is_pruned_and_forgotten_with_the_set() {
        let mut m = Autoscaling::new(AutoscalingConfig::default());
        for i in 0..2000 {
            run(&mut m, i * 1000, 0.9, web(2, 1, 10));
        }
        assert_eq!(m.history["web"].len(), 301);
        // A view taken at a fixed time keeps the history bounded.
        for _ in 0..2000 {
            run(&mut m, 7, 0.9, web(2, 1, 10));
        }
        assert!(m.history["web"].len() <= MAX_HISTORY);
        let v = view(0, vec![], vec![]);
        assert!(m.solicit(&solicitation(0, Kind::Autoscaling, v)).is_empty());
        assert!(m.history.is_empty());
    }

    #[test]
    fn undecidable_sets_get_nothing() {
        let mut m = Autoscaling::new(AutoscalingConfig::default());
        assert!(run(&mut m, 0, f64::NAN, web(2, 1, 10)).is_empty());
        assert!(run(&mut m, 0, f64::INFINITY, web(2, 1, 10)).is_empty());
        assert!(run(&mut m, 0, 0.9, web(2, 5, 3)).is_empty());
        // No readings for its members.
        let v = view(0, vec![cpu_host("x", 0.9)], vec![web(2, 1, 10)]);
        assert!(m.solicit(&solicitation(0, Kind::Autoscaling, v)).is_empty());
        // Zero members.
        let v = view(0, vec![], vec![set("web", &[], 2, 1, 10)]);
        assert!(m.solicit(&solicitation(0, Kind::Autoscaling, v)).is_empty());
        // Zero instances: 0 × anything = 0, raised to min.
        assert_eq!(run(&mut m, 0, 0.9, web(0, 1, 10)), vec![1.0]);
        // A wild reading saturates instead of wrapping.
        assert_eq!(run(&mut m, 0, 1e300, web(2, 1, 10)), vec![10.0]);
        for target in [0.0, -1.0, f64::NAN] {
            let mut m = Autoscaling::new(AutoscalingConfig {
                target_utilization: target,
                ..Default::default()
            });
            assert!(run(&mut m, 0, 0.9, web(2, 1, 10)).is_empty());
        }
    }

    #[test]
    fn spec_declares_instances_and_a_goal() {
        let spec = Autoscaling::default().spec();
        assert_eq!(spec.id, "default-autoscaling");
        assert_eq!(spec.outputs, vec![param::INSTANCES.to_owned()]);
        assert_eq!(spec.deadline_ms, 50);
        let goal = &spec.goals[0];
        assert_eq!(goal.objective, Objective::Minimise);
        assert!(goal.conditions[0].holds(0.8) && !goal.conditions[0].holds(0.95));
    }
}
