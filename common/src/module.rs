//! Control plane modules: what a module is (its spec), what it is asked
//! (a solicitation with a sensor view and a deadline) and what it answers
//! (proposals, which the supervisor turns into configuration requests).
//!
//! Remote modules receive and send them as the frozen messages of
//! [`crate::wire::v1`], converted by the frame codec.

use serde::{Deserialize, Serialize};

pub use crate::goal::{Cmp, Condition, Goal, Objective};
pub use crate::target::Target;
use crate::view::SensorView;

/// The kinds of control plane module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Provisioning,
    /// CPU/memory shares of a host among its virtual resources.
    Allocation,
    /// Instances of a service set.
    Autoscaling,
    /// Placement of a service set across hosts against correlated failure.
    Spread,
    /// Weights across the members of a service set.
    LoadBalancing,
    /// Anomalous or malicious traffic on NICs.
    TrafficDetection,
    /// A share of limited mitigation capacity.
    TrafficMitigation,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Provisioning,
        Kind::Allocation,
        Kind::Autoscaling,
        Kind::Spread,
        Kind::LoadBalancing,
        Kind::TrafficDetection,
        Kind::TrafficMitigation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Provisioning => "provisioning",
            Kind::Allocation => "allocation",
            Kind::Autoscaling => "autoscaling",
            Kind::Spread => "spread",
            Kind::LoadBalancing => "load_balancing",
            Kind::TrafficDetection => "traffic_detection",
            Kind::TrafficMitigation => "traffic_mitigation",
        }
    }

    /// Dense index, for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Output parameters of the built-in kinds. A module may only request the
/// parameters its spec declares.
pub mod param {
    /// Autoscaling: instances of a service set (integer).
    pub const INSTANCES: &str = "instances";
    /// Load balancing: a member's share of the service set's traffic, 0..1.
    pub const LB_WEIGHT: &str = "lb.weight";
    /// Spread: instances of a service set placed on one host (integer).
    pub const PLACEMENT: &str = "placement";
    /// Allocation: a virtual resource's share of its host's CPU, 0..1.
    pub const CPU_SHARE: &str = "cpu.share";
    /// Allocation: a virtual resource's share of its host's memory, 0..1.
    pub const MEMORY_SHARE: &str = "memory.share";
    /// Traffic detection: anomalous excess on an interface, bytes/s (0 = normal).
    pub const TRAFFIC_EXCESS: &str = "traffic.excess";
    /// Traffic mitigation: mitigation capacity asked for an interface, bytes/s.
    pub const MITIGATION: &str = "mitigation.capacity";

    /// Parameters whose values are whole numbers.
    pub fn is_integer(p: &str) -> bool {
        p == INSTANCES || p == PLACEMENT
    }
}

/// Which readings a module wants: a metric name or a `prefix.*` pattern,
/// optionally limited to resources starting with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorSelector {
    pub metric: String,
    pub resource_prefix: Option<String>,
}

impl SensorSelector {
    pub fn metric(pattern: &str) -> Self {
        SensorSelector {
            metric: pattern.to_owned(),
            resource_prefix: None,
        }
    }

    pub fn matches(&self, resource: &str, metric: &str) -> bool {
        let metric_ok = match self.metric.strip_suffix('*') {
            Some(prefix) => metric.starts_with(prefix),
            None => metric == self.metric,
        };
        metric_ok
            && self
                .resource_prefix
                .as_deref()
                .is_none_or(|p| resource.starts_with(p))
    }
}

/// A sensor a module adds to the standard schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomSensor {
    pub metric: String,
    pub unit: String,
    pub help: String,
}

/// Everything the supervisor needs to know about a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleSpec {
    pub id: String,
    pub kind: Kind,
    pub vendor: String,
    pub version: String,
    pub inputs: Vec<SensorSelector>,
    /// Parameters the module may request.
    pub outputs: Vec<String>,
    pub goals: Vec<Goal>,
    /// Longest the module may take to answer a solicitation, in ms.
    pub deadline_ms: u32,
    pub custom_sensors: Vec<CustomSensor>,
}

/// One thing a module asks for: set `parameter` of `target` to `value`
/// (a value, or a capacity for capacity-shared parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub target: Target,
    pub parameter: String,
    pub value: f64,
}

fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn str_len(s: &str) -> usize {
    varint_len(s.len()) + s.len()
}

impl Proposal {
    /// Bytes this proposal takes in a module's answer on the wire
    /// ([`crate::wire::v1::Proposal`], postcard), computed without encoding
    /// it: what request statistics count.
    pub fn wire_size(&self) -> usize {
        // Variant tags are one-byte varints; an f64 is 8 bytes.
        let target = 1 + match &self.target {
            Target::ServiceSet(s) => str_len(s),
            Target::Member { service_set, host } => str_len(service_set) + str_len(host),
            Target::Resource { host, resource } => str_len(host) + str_len(resource),
        };
        target + str_len(&self.parameter) + 8
    }
}

/// One solicitation round as a module sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solicitation {
    pub round: u64,
    pub kind: Kind,
    /// Time left to answer when the solicitation was sent, in ms.
    pub budget_ms: u32,
    pub view: SensorView,
}

/// The supervisor's answer to a module's `Register` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub protocol: u16,
    /// The control plane the module now serves.
    pub control_plane: String,
    pub customer: String,
}

/// A module's answer to a `Solicit` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub round: u64,
    pub proposals: Vec<Proposal>,
}

/// A module's logic: answer a solicitation with proposals. Built-in modules
/// and remote ones (through the SDK) implement the same trait. Time comes
/// in with the solicitation; implementations must not block.
pub trait ModuleLogic: Send {
    fn spec(&self) -> ModuleSpec;
    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_spec() -> ModuleSpec {
        ModuleSpec {
            id: "acme-predictive".into(),
            kind: Kind::Autoscaling,
            vendor: "predictive-labs".into(),
            version: "1.0.0".into(),
            inputs: vec![SensorSelector::metric("cpu.*")],
            outputs: vec![param::INSTANCES.into()],
            goals: vec![Goal {
                metric: param::INSTANCES.into(),
                objective: Objective::Minimise,
                target: None,
                conditions: vec![Condition {
                    metric: "app.latency.p95".into(),
                    cmp: Cmp::Below,
                    value: 0.1,
                }],
            }],
            deadline_ms: 50,
            custom_sensors: vec![],
        }
    }

    #[test]
    fn proposal_wire_size_is_exact() {
        let targets = [
            Target::ServiceSet("acme-shop".into()),
            Target::Member {
                service_set: "s".repeat(200),
                host: "agent-2".into(),
            },
            Target::Resource {
                host: "h".into(),
                resource: crate::resource::ResourceId::new("nic/eth0").unwrap(),
            },
        ];
        for target in targets {
            let p = Proposal {
                target,
                parameter: "x".repeat(130),
                value: 2.5,
            };
            assert_eq!(
                p.wire_size(),
                postcard::to_stdvec(&crate::wire::v1::Proposal::from(&p))
                    .unwrap()
                    .len(),
                "{p:?}"
            );
        }
    }

    #[test]
    fn selectors_match_exact_and_prefix() {
        let s = SensorSelector::metric("nic.*");
        assert!(s.matches("nic/eth0", "nic.rx.bytes_per_second"));
        assert!(!s.matches("cpu", "cpu.utilization"));
        let s = SensorSelector {
            metric: "cpu.utilization".into(),
            resource_prefix: Some("cpu/".into()),
        };
        assert!(s.matches("cpu/3", "cpu.utilization"));
        assert!(!s.matches("cpu", "cpu.utilization"));
    }

    #[test]
    fn kinds_index_densely() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
