//! Builders for hand-made sensor views in the built-in modules' tests.

use vcp_common::metric::Metric;
use vcp_common::module::{Kind, Solicitation};
use vcp_common::view::{HostReadings, Member, Reading, SensorView, ServiceSetState};

pub fn reading(resource: &str, metric: Metric, value: f64, at_ms: i64) -> Reading {
    Reading {
        resource: resource.into(),
        metric: metric.name.into(),
        value,
        at_ms,
    }
}

pub fn host(name: &str, readings: Vec<Reading>) -> HostReadings {
    HostReadings {
        host: name.into(),
        readings,
    }
}

/// A host with only a whole-host `cpu` utilisation reading.
pub fn cpu_host(name: &str, utilization: f64) -> HostReadings {
    host(
        name,
        vec![reading(
            "cpu",
            vcp_common::metric::CPU_UTILIZATION,
            utilization,
            0,
        )],
    )
}

/// A service set of customer `c` with members `(host, resource)`.
pub fn set(
    id: &str,
    members: &[(&str, Option<&str>)],
    instances: u32,
    min_instances: u32,
    max_instances: u32,
) -> ServiceSetState {
    ServiceSetState {
        id: id.into(),
        customer: "c".into(),
        members: members
            .iter()
            .map(|(h, r)| Member {
                host: (*h).into(),
                resource: r.map(|r| vcp_common::resource::ResourceId::new(r).unwrap()),
            })
            .collect(),
        instances,
        min_instances,
        max_instances,
        goals: Vec::new(),
    }
}

pub fn view(
    at_ms: i64,
    hosts: Vec<HostReadings>,
    service_sets: Vec<ServiceSetState>,
) -> SensorView {
    SensorView {
        at_ms,
        hosts: hosts.into_iter().map(Into::into).collect(),
        service_sets: service_sets.into(),
        settings: Vec::new().into(),
    }
}

pub fn solicitation(round: u64, kind: Kind, view: SensorView) -> Solicitation {
    Solicitation {
        round,
        kind,
        budget_ms: 50,
        view,
    }
}

/// Asserts `a` and `b` agree to 1e-9.
#[track_caller]
pub fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}
