//! The standard sensor view handed to modules with each solicitation:
//! latest readings of the hosts and resources in the module's scope, the
//! state of its service sets, and the configuration currently in force.
//! The supervisor builds it restricted to the module's declared inputs and
//! to its customer's resources; a module never sees anything else.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::goal::Goal;
use crate::resource::ResourceId;
use crate::target::Target;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub resource: String,
    pub metric: String,
    pub value: f64,
    /// Unix ms when the agent read it.
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HostReadings {
    pub host: String,
    pub readings: Vec<Reading>,
}

impl HostReadings {
    pub fn value(&self, resource: &str, metric: &str) -> Option<f64> {
        self.readings
            .iter()
            .find(|r| r.resource == resource && r.metric == metric)
            .map(|r| r.value)
    }
}

/// A virtual resource of a service set: a whole host, or one resource of
/// it (e.g. `cgroup/web`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    pub host: String,
    pub resource: Option<ResourceId>,
}

impl Member {
    /// Whether `resource` of `host` belongs to this member: the whole host,
    /// or the member's resource and what lies below it, segment by segment.
    pub fn covers(&self, host: &str, resource: &str) -> bool {
        self.host == host
            && match &self.resource {
                None => crate::resource::validate(resource).is_ok(),
                Some(r) => r.contains(resource),
            }
    }

    /// Whether the two members share a resource: same host, and one is
    /// the whole host or one's resource lies within the other's.
    pub fn overlaps(&self, other: &Member) -> bool {
        self.host == other.host
            && match (&self.resource, &other.resource) {
                (Some(a), Some(b)) => a.overlaps(b),
                _ => true,
            }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSetState {
    pub id: String,
    pub customer: String,
    pub members: Vec<Member>,
    /// Instances currently configured.
    pub instances: u32,
    pub min_instances: u32,
    pub max_instances: u32,
    pub goals: Vec<Goal>,
}

/// A configuration value in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub target: Target,
    pub parameter: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SensorView {
    /// Unix ms when the supervisor took the view.
    pub at_ms: i64,
    /// Shared: the supervisor keeps a host's readings between rounds and
    /// hands the same ones to every round until the host's next batch.
    pub hosts: Vec<Arc<HostReadings>>,
    /// Shared likewise: kept between rounds, copied only when a value in
    /// it changed while a module still held the last round's.
    pub service_sets: Arc<Vec<ServiceSetState>>,
    /// Shared likewise: built again only when the settings in force change.
    pub settings: Arc<Vec<Setting>>,
}

impl SensorView {
    pub fn host(&self, host: &str) -> Option<&HostReadings> {
        self.hosts.iter().map(|h| &**h).find(|h| h.host == host)
    }

    /// Latest value of `(resource, metric)` on `host`.
    pub fn value(&self, host: &str, resource: &str, metric: &str) -> Option<f64> {
        self.host(host)?.value(resource, metric)
    }

    /// The value in force for `(target, parameter)`.
    pub fn setting(&self, target: &Target, parameter: &str) -> Option<f64> {
        self.settings
            .iter()
            .find(|s| &s.target == target && s.parameter == parameter)
            .map(|s| s.value)
    }

    /// Mean utilisation of a service set's members: a whole-host member
    /// counts its host's `cpu` utilisation, a resource member the
    /// `cpu.utilization` of that resource, or else the `app.utilization` its
    /// application reports. `None` when no member has a reading.
    pub fn set_utilization(&self, set: &ServiceSetState) -> Option<f64> {
        let cpu = crate::metric::CPU_UTILIZATION.name;
        let app = crate::metric::APP_UTILIZATION.name;
        let values: Vec<f64> = set
            .members
            .iter()
            .filter_map(|m| match m.resource.as_deref() {
                None => self.value(&m.host, "cpu", cpu),
                Some(r) => self
                    .value(&m.host, r, cpu)
                    .or_else(|| self.value(&m.host, r, app)),
            })
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_cover_their_resources_only() {
        let whole = Member {
            host: "h1".into(),
            resource: None,
        };
        assert!(whole.covers("h1", "cpu"));
        assert!(!whole.covers("h2", "cpu"));
        let web = Member {
            host: "h1".into(),
            resource: Some(ResourceId::new("cgroup/web").unwrap()),
        };
        assert!(web.covers("h1", "cgroup/web"));
        assert!(web.covers("h1", "cgroup/web/worker"));
        assert!(!web.covers("h1", "cgroup/webx"));
        assert!(!web.covers("h1", "cgroup/web/../x"));
        assert!(!web.covers("h1", "cpu"));
        assert!(
            !whole.covers("h1", "../cpu"),
            "no invalid resource is covered"
        );
        assert!(whole.overlaps(&web) && web.overlaps(&whole));
        let api = Member {
            host: "h1".into(),
            resource: Some(ResourceId::new("cgroup/api").unwrap()),
        };
        assert!(!api.overlaps(&web));
    }

    #[test]
    fn set_utilization_averages_members() {
        let r = |v| Reading {
            resource: "cpu".into(),
            metric: "cpu.utilization".into(),
            value: v,
            at_ms: 0,
        };
        let view = SensorView {
            hosts: vec![
                Arc::new(HostReadings {
                    host: "a".into(),
                    readings: vec![r(0.2)],
                }),
                Arc::new(HostReadings {
                    host: "b".into(),
                    readings: vec![r(0.6)],
                }),
            ],
            ..Default::default()
        };
        let set = ServiceSetState {
            id: "web".into(),
            customer: "c".into(),
            members: vec![
                Member {
                    host: "a".into(),
                    resource: None,
                },
                Member {
                    host: "b".into(),
                    resource: None,
                },
                Member {
                    host: "gone".into(),
                    resource: None,
                },
            ],
            instances: 2,
            min_instances: 1,
            max_instances: 4,
            goals: vec![],
        };
        assert!((view.set_utilization(&set).unwrap() - 0.4).abs() < 1e-12);
    }
}
