//! The operator's built-in default modules: one per kind except
//! provisioning (which is a workflow, not a control loop).
//!
//! Every module is a pure state machine over [`Solicitation`]s: no clocks,
//! no I/O, no threads; time is `view.at_ms`. Each has a config struct with
//! `Default` that the supervisor's TOML can tune through [`BuiltinConfig`]
//! (one table per kind; omitted fields keep their defaults):
//!
//! ```toml
//! [autoscaling]
//! target_utilization = 0.5
//! [spread]
//! max_per_host = 2
//! ```
//!
//! Modules never panic on odd input; what they cannot decide (no readings,
//! NaN, `min_instances > max_instances`, an invalid config) gets no proposal.

use serde::{Deserialize, Serialize};
use vcp_common::module::{Goal, Kind, ModuleLogic, ModuleSpec, SensorSelector};

pub mod allocation;
pub mod autoscaling;
pub mod load_balancing;
pub mod spread;
#[cfg(test)]
mod testutil;
pub mod traffic_detection;
pub mod traffic_mitigation;

pub use allocation::{Allocation, AllocationConfig};
pub use autoscaling::{Autoscaling, AutoscalingConfig};
pub use load_balancing::{LoadBalancing, LoadBalancingConfig};
pub use spread::{Spread, SpreadConfig};
pub use traffic_detection::{TrafficDetection, TrafficDetectionConfig};
pub use traffic_mitigation::{TrafficMitigation, TrafficMitigationConfig};

/// Vendor of every built-in module.
pub const VENDOR: &str = "operator";

/// Id of the default module of `kind`: `default-<kind>` (e.g.
/// `default-autoscaling`, `default-load_balancing`).
pub fn module_id(kind: Kind) -> String {
    format!("default-{kind}")
}

/// The default module of `kind` with its default config; `None` for
/// provisioning.
pub fn default_module(kind: Kind) -> Option<Box<dyn ModuleLogic>> {
    BuiltinConfig::default().module(kind)
}

/// Configs of all built-in modules, as found in the supervisor's TOML.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinConfig {
    pub allocation: AllocationConfig,
    pub autoscaling: AutoscalingConfig,
    pub spread: SpreadConfig,
    pub load_balancing: LoadBalancingConfig,
    pub traffic_detection: TrafficDetectionConfig,
    pub traffic_mitigation: TrafficMitigationConfig,
}

impl BuiltinConfig {
    /// A fresh instance (empty state) of the default module of `kind`;
    /// `None` for provisioning.
    pub fn module(&self, kind: Kind) -> Option<Box<dyn ModuleLogic>> {
        Some(match kind {
            Kind::Provisioning => return None,
            Kind::Allocation => Box::new(Allocation::new(self.allocation.clone())),
            Kind::Autoscaling => Box::new(Autoscaling::new(self.autoscaling.clone())),
            Kind::Spread => Box::new(Spread::new(self.spread.clone())),
            Kind::LoadBalancing => Box::new(LoadBalancing::new(self.load_balancing.clone())),
            Kind::TrafficDetection => {
                Box::new(TrafficDetection::new(self.traffic_detection.clone()))
            }
            Kind::TrafficMitigation => {
                Box::new(TrafficMitigation::new(self.traffic_mitigation.clone()))
            }
        })
    }
}

/// The spec every built-in module shares but for its kind-specific parts.
fn builtin_spec(
    kind: Kind,
    inputs: Vec<SensorSelector>,
    outputs: &[&str],
    goals: Vec<Goal>,
    deadline_ms: u32,
) -> ModuleSpec {
    ModuleSpec {
        id: module_id(kind),
        kind,
        vendor: VENDOR.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        inputs,
        outputs: outputs.iter().map(|&o| o.to_owned()).collect(),
        goals,
        deadline_ms,
        custom_sensors: Vec::new(),
    }
}

/// `x` if it is a finite, non-negative number.
fn usable(x: f64) -> Option<f64> {
    (x.is_finite() && x >= 0.0).then_some(x)
}

/// A utilisation ratio clamped to 0..=1, `None` when NaN or infinite.
fn ratio(x: f64) -> Option<f64> {
    x.is_finite().then(|| x.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use vcp_common::metric;
    use vcp_common::module::{param, Proposal, Target};
    use vcp_common::view::Setting;

    /// A sequence of views that makes every built-in module propose.
    fn rich_views() -> Vec<vcp_common::view::SensorView> {
        (0..15)
            .map(|i| {
                let rx = if i < 12 {
                    1e6 + (i % 3) as f64 * 1e5
                } else {
                    5e8
                };
                let mut v = view(
                    i * 1000,
                    vec![
                        host(
                            "h1",
                            vec![
                                reading("cpu", metric::CPU_UTILIZATION, 0.95, i * 1000),
                                reading("cgroup/web", metric::CPU_UTILIZATION, 0.5, i * 1000),
                                reading("cgroup/web", metric::MEMORY_USED, 1e9, i * 1000),
                                reading("nic/eth0", metric::NIC_RX_BYTES, rx, i * 1000),
                                reading("nic/eth0", metric::NIC_RX_PACKETS, rx / 1000.0, i * 1000),
                            ],
                        ),
                        host(
                            "h2",
                            vec![reading("cpu", metric::CPU_UTILIZATION, 0.9, i * 1000)],
                        ),
                    ],
                    vec![set(
                        "web",
                        &[
                            ("h1", Some("cgroup/web")),
                            ("h1", Some("cgroup/db")),
                            ("h2", None),
                        ],
                        2,
                        1,
                        10,
                    )],
                );
                std::sync::Arc::make_mut(&mut v.settings).push(Setting {
                    target: Target::Resource {
                        host: "h1".into(),
                        resource: vcp_common::resource::ResourceId::new("nic/eth0").unwrap(),
                    },
                    parameter: param::TRAFFIC_EXCESS.into(),
                    value: if i < 14 { 1e6 } else { 0.0 },
                });
                v
            })
            .collect()
    }

    #[test]
    fn every_kind_but_provisioning_has_a_module_that_keeps_to_its_outputs() {
        assert!(default_module(Kind::Provisioning).is_none());
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Provisioning) {
            let mut m = default_module(kind).expect("module for kind");
            let spec = m.spec();
            assert_eq!(spec.kind, kind);
            assert_eq!(spec.id, format!("default-{}", kind.as_str()));
            assert_eq!(spec.vendor, "operator");
            assert_eq!(spec.version, env!("CARGO_PKG_VERSION"));
            assert!(!spec.outputs.is_empty() && spec.deadline_ms > 0, "{kind}");
            let mut proposals: Vec<Proposal> = Vec::new();
            for (round, v) in rich_views().into_iter().enumerate() {
                proposals.extend(m.solicit(&solicitation(round as u64, kind, v)));
                // Empty views never make a module panic or propose.
                assert!(m
                    .solicit(&solicitation(99, kind, Default::default()))
                    .is_empty());
            }
            assert!(!proposals.is_empty(), "{kind} never proposed");
            for p in &proposals {
                assert!(spec.outputs.contains(&p.parameter), "{kind}: {p:?}");
                assert!(p.value.is_finite() && p.value >= 0.0, "{kind}: {p:?}");
            }
        }
    }

    #[test]
    fn config_parses_from_toml_and_rejects_unknown_fields() {
        let c: BuiltinConfig =
            toml::from_str("[autoscaling]\ntarget_utilization = 0.5\n[spread]\nmax_per_host = 2\n")
                .expect("valid config");
        assert_eq!(c.autoscaling.target_utilization, 0.5);
        assert_eq!(
            c.autoscaling.tolerance,
            AutoscalingConfig::default().tolerance
        );
        assert_eq!(c.spread.max_per_host, Some(2));
        assert_eq!(c.load_balancing, LoadBalancingConfig::default());
        assert!(toml::from_str::<BuiltinConfig>("[autoscaling]\ntarget = 0.5\n").is_err());
        assert!(toml::from_str::<BuiltinConfig>("[nope]\n").is_err());
        assert_eq!(
            toml::from_str::<BuiltinConfig>("").ok(),
            Some(BuiltinConfig::default())
        );
    }
}
