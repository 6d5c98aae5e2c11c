//! Builds the sensor view a module receives: the fleet view restricted to
//! its control plane's scope and to the module's declared inputs, its
//! service sets' state, and the configuration in force within its scope.

use vcp_common::module::{param, Goal, Objective, SensorSelector, Target};
use vcp_common::view::{HostReadings, Reading, SensorView, ServiceSetState, Setting};

use crate::plane::Scope;
use crate::settings::SettingsMap;
use crate::view::View;

/// A service set's goal as modules see it: as few instances as possible
/// while its conditions hold.
fn set_goals(s: &crate::plane::ServiceSetDef) -> Vec<Goal> {
    if s.goals.is_empty() {
        return Vec::new();
    }
    vec![Goal {
        metric: param::INSTANCES.into(),
        objective: Objective::Minimise,
        target: None,
        conditions: s.goals.clone(),
    }]
}

pub fn build(
    view: &View,
    scope: &Scope,
    inputs: &[SensorSelector],
    settings: &SettingsMap,
    at_ms: i64,
) -> SensorView {
    let hosts = view.hosts();
    let mut host_ids: Vec<_> = hosts.keys().filter(|h| scope.sees_host(h)).collect();
    host_ids.sort();
    let hosts = host_ids
        .into_iter()
        .filter_map(|id| {
            let snap = hosts.get(id)?.load();
            let readings = snap
                .readings()
                .filter(|(d, _)| {
                    scope.sees(id, &d.resource)
                        && inputs.iter().any(|s| s.matches(&d.resource, &d.metric))
                })
                .map(|(d, l)| Reading {
                    resource: d.resource.clone(),
                    metric: d.metric.clone(),
                    value: l.value,
                    at_ms: l.at_ms,
                })
                .collect();
            Some(HostReadings {
                host: id.to_string(),
                readings,
            })
        })
        .collect();
    // Instances in force: the parameter's map is looked up once, and one
    // key buffer serves every service set (no allocation per set).
    let in_force = settings.of(param::INSTANCES);
    let mut key = Target::ServiceSet(String::new());
    let service_sets = scope
        .service_sets
        .iter()
        .map(|s| {
            if let Target::ServiceSet(id) = &mut key {
                id.clear();
                id.push_str(&s.id);
            }
            let instances = in_force
                .get(&key)
                .map_or(s.instances.initial, |d| d.value.max(0.0) as u32);
            ServiceSetState {
                id: s.id.clone(),
                customer: s.customer.clone(),
                members: s.members.clone(),
                instances,
                min_instances: s.instances.min,
                max_instances: s.instances.max,
                goals: set_goals(s),
            }
        })
        .collect();
    let settings = settings
        .iter()
        .filter(|d| scope.covers(&d.target))
        .map(|d| Setting {
            target: d.target.clone(),
            parameter: d.parameter.to_string(),
            value: d.value,
        })
        .collect();
    SensorView {
        at_ms,
        hosts,
        service_sets,
        settings,
    }
}
