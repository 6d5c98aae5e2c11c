//! Builds the sensor view a module receives: the fleet view restricted to
//! its control plane's scope and to the module's declared inputs, its
//! service sets' state, and the configuration in force within its scope.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use vcp_common::batch::SeriesDef;
use vcp_common::module::{param, Goal, Objective, SensorSelector, Target};
use vcp_common::view::{HostReadings, Reading, SensorView, ServiceSetState, Setting};

use crate::plane::Scope;
use crate::settings::SettingsMap;
use crate::view::{HostCell, HostSnapshot, View};

type Hosts = Arc<HashMap<Arc<str>, Arc<HostCell>>>;

/// What a projection keeps of one host: its dictionary as last seen, the
/// ids of the series in it the module sees, and the readings it built from
/// the snapshot it last saw (the `Weak` keeps that snapshot's allocation,
/// not its contents, so its address cannot be taken by a newer one).
#[derive(Debug, Default)]
struct Kept {
    dictionary: Arc<Vec<SeriesDef>>,
    visible: Vec<u32>,
    built: Option<(Weak<HostSnapshot>, Arc<HostReadings>)>,
}

/// What [`build_with`] keeps between rounds for one scope and one set of
/// inputs, so that a round does not redo what has not changed: the hosts
/// in the scope, in order, with their cells (the fleet's host list changes
/// only when a host first connects, so a round looks nothing up by name),
/// per host which series of its dictionary the module sees (a dictionary
/// changes only when its session defines series), and the readings of
/// each host's snapshot (a snapshot changes once per batch, while the
/// traffic kinds' rounds come ten times a second).
#[derive(Debug, Default)]
pub struct Projection {
    hosts: Option<Hosts>,
    rows: Vec<Row>,
}

/// One host of a projection, in the scope's order.
#[derive(Debug)]
struct Row {
    id: Arc<str>,
    cell: Arc<HostCell>,
    kept: Kept,
}

impl Projection {
    /// The rows for `hosts`, made again (keeping what each host had) only
    /// when the fleet's host list is not the one last seen.
    fn rows(&mut self, hosts: &Hosts, scope: &Scope) -> &mut [Row] {
        if !self.hosts.as_ref().is_some_and(|h| Arc::ptr_eq(h, hosts)) {
            let mut old: HashMap<Arc<str>, Kept> = std::mem::take(&mut self.rows)
                .into_iter()
                .map(|r| (r.id, r.kept))
                .collect();
            let mut rows: Vec<Row> = hosts
                .iter()
                .filter(|(h, _)| scope.sees_host(h))
                .map(|(id, cell)| Row {
                    id: id.clone(),
                    cell: cell.clone(),
                    kept: old.remove(id).unwrap_or_default(),
                })
                .collect();
            rows.sort_by(|a, b| a.id.cmp(&b.id));
            self.rows = rows;
            self.hosts = Some(hosts.clone());
        }
        &mut self.rows
    }
}

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

/// The view of `scope` and `inputs` at `at_ms`, from nothing kept.
pub fn build(
    view: &View,
    scope: &Scope,
    inputs: &[SensorSelector],
    settings: &SettingsMap,
    at_ms: i64,
) -> SensorView {
    build_with(
        &mut Projection::default(),
        view,
        scope,
        inputs,
        settings,
        at_ms,
    )
}

/// As [`build`], reusing what `projection` kept from the last build of the
/// same scope and inputs (the caller keeps one per scope and inputs).
pub fn build_with(
    projection: &mut Projection,
    view: &View,
    scope: &Scope,
    inputs: &[SensorSelector],
    settings: &SettingsMap,
    at_ms: i64,
) -> SensorView {
    let hosts = view.hosts();
    let hosts = projection
        .rows(&hosts, scope)
        .iter_mut()
        .map(|Row { id, cell, kept }| {
            let snap = cell.load();
            if let Some((from, built)) = &kept.built {
                if std::ptr::eq(from.as_ptr(), Arc::as_ptr(&snap)) {
                    return built.clone();
                }
            }
            if !Arc::ptr_eq(&kept.dictionary, &snap.series)
                || kept.dictionary.len() != snap.series.len()
            {
                kept.dictionary = snap.series.clone();
                kept.visible = (0u32..)
                    .zip(snap.series.iter())
                    .filter(|(_, d)| {
                        scope.sees(id, &d.resource)
                            && inputs.iter().any(|s| s.matches(&d.resource, &d.metric))
                    })
                    .map(|(i, _)| i)
                    .collect();
            }
            let readings = kept
                .visible
                .iter()
                .filter_map(|&i| {
                    let latest = (*snap.latest.get(i as usize)?)?;
                    let d = snap.series.get(i as usize)?;
                    Some(Reading {
                        resource: d.resource.clone(),
                        metric: d.metric.clone(),
                        value: latest.value,
                        at_ms: latest.at_ms,
                    })
                })
                .collect();
            let built = Arc::new(HostReadings {
                host: id.to_string(),
                readings,
            });
            kept.built = Some((Arc::downgrade(&snap), built.clone()));
            built
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Carry;
    use vcp_common::batch::{Batch, Column};

    fn def(id: u32, resource: &str, metric: &str) -> SeriesDef {
        SeriesDef {
            id,
            resource: resource.into(),
            metric: metric.into(),
            exp: -3,
        }
    }

    /// Applies one sample of `values` (by series id) to `host`, defining
    /// `new` first.
    fn apply(view: &View, host: &str, new: &[SeriesDef], values: &[(u32, f64)], at_ms: i64) {
        let batch = Batch {
            seq: 1,
            timestamps: vec![at_ms],
            columns: values
                .iter()
                .map(|&(series, v)| Column {
                    series,
                    start: 0,
                    values: vec![v],
                })
                .collect(),
        };
        let cell = view.host(host);
        cell.store(
            cell.load()
                .with_batch(1, new, &batch, &mut Carry::default()),
        );
    }

    fn readings(v: &SensorView) -> Vec<(String, String, f64)> {
        v.hosts
            .iter()
            .flat_map(|h| {
                h.readings.iter().map(move |r| {
                    (
                        h.host.clone(),
                        r.resource.clone() + " " + &r.metric,
                        r.value,
                    )
                })
            })
            .collect()
    }

    #[test]
    fn a_kept_projection_sees_new_values_series_and_hosts_as_a_fresh_build_does() {
        let view = View::default();
        let scope = Scope::new(Vec::new(), true);
        let inputs = [SensorSelector::metric("cpu.*")];
        let settings = SettingsMap::default();
        let mut kept = Projection::default();
        apply(
            &view,
            "b",
            &[
                def(0, "cpu", "cpu.utilization"),
                def(1, "memory", "memory.used"),
            ],
            &[(0, 0.5), (1, 9.0)],
            1,
        );
        let check = |kept: &mut Projection, want: Vec<(&str, &str, f64)>| {
            let fresh = build(&view, &scope, &inputs, &settings, 5);
            let reused = build_with(kept, &view, &scope, &inputs, &settings, 5);
            let want: Vec<(String, String, f64)> = want
                .into_iter()
                .map(|(h, rm, v)| (h.to_owned(), rm.to_owned(), v))
                .collect();
            assert_eq!(readings(&fresh), want);
            assert_eq!(readings(&reused), want);
        };
        check(&mut kept, vec![("b", "cpu cpu.utilization", 0.5)]);
        // No batch since: the same readings, shared, not built again.
        let first = build_with(&mut kept, &view, &scope, &inputs, &settings, 5);
        let again = build_with(&mut kept, &view, &scope, &inputs, &settings, 6);
        assert!(Arc::ptr_eq(&first.hosts[0], &again.hosts[0]));
        // A new value, the same dictionary.
        apply(&view, "b", &[], &[(0, 0.7)], 2);
        check(&mut kept, vec![("b", "cpu cpu.utilization", 0.7)]);
        // A new series the inputs match, and a new host, listed in order.
        apply(
            &view,
            "b",
            &[def(2, "cpu/0", "cpu.utilization")],
            &[(2, 0.9)],
            3,
        );
        apply(&view, "a", &[def(0, "cpu", "cpu.load1")], &[(0, 2.0)], 3);
        check(
            &mut kept,
            vec![
                ("a", "cpu cpu.load1", 2.0),
                ("b", "cpu cpu.utilization", 0.7),
                ("b", "cpu/0 cpu.utilization", 0.9),
            ],
        );
    }
}
