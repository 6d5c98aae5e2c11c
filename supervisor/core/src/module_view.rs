//! Builds the sensor view a module receives: the fleet view restricted to
//! its control plane's scope and to the module's declared inputs, its
//! service sets' state, and the configuration in force within its scope.

use rustc_hash::FxHashMap as HashMap;
use std::sync::{Arc, Weak};

use vcp_common::batch::SeriesDef;
use vcp_common::module::{param, Goal, Objective, SensorSelector, Target};
use vcp_common::view::{HostReadings, Reading, SensorView, ServiceSetState, Setting};

use crate::plane::{Scope, ServiceSetDef};
use crate::settings::{ParamVersion, SettingsMap};
use crate::view::{HostCell, HostSnapshot, View};

type Hosts = Arc<std::collections::HashMap<Arc<str>, Arc<HostCell>>>;

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
/// changes only when its session defines series), the readings of each
/// host's snapshot (a snapshot changes once per batch, while the traffic
/// kinds' rounds come ten times a second), the scope's service sets (of
/// which only the instances in force change) and the settings in force
/// within the scope (which change only when a round decides something).
#[derive(Debug, Default)]
pub struct Projection {
    hosts: Option<Hosts>,
    rows: Vec<Row>,
    sets: Option<Arc<Vec<ServiceSetState>>>,
    settings: KeptSettings,
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

    /// The latest readings of every host in the scope that the inputs
    /// select, each built again only when its host's snapshot changed.
    fn readings(
        &mut self,
        view: &View,
        scope: &Scope,
        inputs: &[SensorSelector],
    ) -> Vec<Arc<HostReadings>> {
        let hosts = view.hosts();
        self.rows(&hosts, scope)
            .iter_mut()
            .map(|Row { id, cell, kept }| kept.readings(id, &cell.load(), scope, inputs))
            .collect()
    }

    /// The scope's service sets with the instances in force: the kept
    /// list, written only where an instance count moved (and copied only
    /// if a module still holds the last one).
    fn service_sets(&mut self, scope: &Scope, settings: &SettingsMap) -> Arc<Vec<ServiceSetState>> {
        // The parameter's map is looked up once, and one key buffer serves
        // every service set (no allocation per set).
        let in_force = settings.of(param::INSTANCES);
        let mut key = Target::ServiceSet(String::new());
        let mut instances = |s: &ServiceSetDef| {
            if let Target::ServiceSet(id) = &mut key {
                id.clear();
                id.push_str(&s.id);
            }
            in_force
                .get(&key)
                .map_or(s.instances.initial, |d| d.value.max(0.0) as u32)
        };
        let sets = match &mut self.sets {
            Some(sets) if sets.len() == scope.service_sets.len() => sets,
            _ => self.sets.insert(Arc::new(
                scope
                    .service_sets
                    .iter()
                    .map(|s| set_state(s, instances(s)))
                    .collect(),
            )),
        };
        for (at, def) in scope.service_sets.iter().enumerate() {
            let n = instances(def);
            if sets.get(at).is_some_and(|s| s.instances != n) {
                Arc::make_mut(sets)[at].instances = n;
            }
        }
        sets.clone()
    }

    /// The settings in force within the scope: the kept list, in which
    /// only the parameters whose decisions changed are read again, each
    /// decision's target looked up once (no allocation but for a target
    /// not seen before).
    fn settings(&mut self, scope: &Scope, settings: &SettingsMap) -> Arc<Vec<Setting>> {
        let kept = &mut self.settings;
        for (parameter, decisions) in settings.params() {
            let (version, at) = kept.params.entry(parameter.clone()).or_default();
            if version.is(&decisions) {
                continue;
            }
            *version = decisions.version();
            for d in decisions.iter() {
                let slot = match at.get(&d.target) {
                    Some(&slot) => slot,
                    None => {
                        let slot = scope.covers(&d.target).then(|| {
                            Arc::make_mut(&mut kept.list).push(Setting {
                                target: d.target.clone(),
                                parameter: parameter.to_string(),
                                value: d.value,
                            });
                            kept.list.len() - 1
                        });
                        at.insert(d.target.clone(), slot);
                        slot
                    }
                };
                if let Some(slot) = slot {
                    if kept.list.get(slot).is_some_and(|s| s.value != d.value) {
                        Arc::make_mut(&mut kept.list)[slot].value = d.value;
                    }
                }
            }
        }
        kept.list.clone()
    }
}

/// The settings a projection keeps: per parameter, the decisions last read
/// and where each target sits in the list (`None`: outside the scope).
/// Decisions are never withdrawn, only replaced, so the list only grows.
#[derive(Debug, Default)]
struct KeptSettings {
    params: HashMap<Arc<str>, (ParamVersion, Slots)>,
    list: Arc<Vec<Setting>>,
}

/// Where each target of one parameter sits in a projection's settings.
type Slots = HashMap<Target, Option<usize>>;

impl Kept {
    /// `snap`'s readings that the module sees, as kept if `snap` is the
    /// snapshot they were built from.
    fn readings(
        &mut self,
        id: &str,
        snap: &Arc<HostSnapshot>,
        scope: &Scope,
        inputs: &[SensorSelector],
    ) -> Arc<HostReadings> {
        if let Some((from, built)) = &self.built {
            if std::ptr::eq(from.as_ptr(), Arc::as_ptr(snap)) {
                return built.clone();
            }
        }
        if !Arc::ptr_eq(&self.dictionary, &snap.series)
            || self.dictionary.len() != snap.series.len()
        {
            self.dictionary = snap.series.clone();
            self.visible = (0u32..)
                .zip(snap.series.iter())
                .filter(|(_, d)| {
                    scope.sees(id, &d.resource)
                        && inputs.iter().any(|s| s.matches(&d.resource, &d.metric))
                })
                .map(|(i, _)| i)
                .collect();
        }
        let readings = self
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
        self.built = Some((Arc::downgrade(snap), built.clone()));
        built
    }
}

/// A service set's goal as modules see it: as few instances as possible
/// while its conditions hold.
fn set_goals(s: &ServiceSetDef) -> Vec<Goal> {
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

fn set_state(s: &ServiceSetDef, instances: u32) -> ServiceSetState {
    ServiceSetState {
        id: s.id.clone(),
        customer: s.customer.clone(),
        members: s.members.clone(),
        instances,
        min_instances: s.instances.min,
        max_instances: s.instances.max,
        goals: set_goals(s),
    }
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
    SensorView {
        at_ms,
        hosts: projection.readings(view, scope, inputs),
        service_sets: projection.service_sets(scope, settings),
        settings: projection.settings(scope, settings),
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

    fn instances(set: &str, value: f64) -> Arc<crate::settings::Decision> {
        Arc::new(crate::settings::Decision {
            round: 1,
            target: Target::ServiceSet(set.into()),
            parameter: Arc::from(param::INSTANCES),
            value,
            module: Arc::from("m"),
            control_plane: Arc::from("p"),
            contenders: 1,
            influences: vec![],
        })
    }

    #[test]
    fn kept_service_sets_and_settings_follow_the_settings_in_force() {
        let set = |id: &str| crate::plane::ServiceSetDef {
            id: id.into(),
            customer: "acme".into(),
            members: vec![vcp_common::view::Member {
                host: "h".into(),
                resource: None,
            }],
            instances: crate::plane::Instances {
                min: 1,
                max: 8,
                initial: 2,
            },
            goals: vec![],
            instance: None,
        };
        let view = View::default();
        let scope = Scope::new(vec![set("a"), set("b")], false);
        let settings = crate::settings::Settings::default();
        let mut kept = Projection::default();
        let counts = |v: &SensorView| -> Vec<(String, u32)> {
            v.service_sets
                .iter()
                .map(|s| (s.id.clone(), s.instances))
                .collect()
        };
        let first = build_with(&mut kept, &view, &scope, &[], &settings.snapshot(), 1);
        assert_eq!(counts(&first), [("a".into(), 2), ("b".into(), 2)]);
        assert!(first.settings.is_empty());
        // Nothing decided since: the same lists, shared.
        let again = build_with(&mut kept, &view, &scope, &[], &settings.snapshot(), 2);
        assert!(Arc::ptr_eq(&first.service_sets, &again.service_sets));
        assert!(Arc::ptr_eq(&first.settings, &again.settings));
        // A decision moves one set: the kept list is copied, since the
        // earlier views still hold it, and those keep what they saw.
        settings.apply(&[instances("b", 5.0), instances("elsewhere", 3.0)]);
        let moved = build_with(&mut kept, &view, &scope, &[], &settings.snapshot(), 3);
        assert_eq!(counts(&moved), [("a".into(), 2), ("b".into(), 5)]);
        assert_eq!(counts(&first), [("a".into(), 2), ("b".into(), 2)]);
        assert_eq!(
            moved
                .settings
                .iter()
                .map(|s| (s.target.to_string(), s.value))
                .collect::<Vec<_>>(),
            [(Target::ServiceSet("b".into()).to_string(), 5.0)]
        );
        // Moved again, and a first decision for the other set.
        settings.apply(&[instances("b", 6.0)]);
        settings.apply(&[instances("a", 1.0)]);
        let last = build_with(&mut kept, &view, &scope, &[], &settings.snapshot(), 4);
        assert_eq!(counts(&last), [("a".into(), 1), ("b".into(), 6)]);
        let fresh = build(&view, &scope, &[], &settings.snapshot(), 4);
        assert_eq!(counts(&fresh), counts(&last));
        let sorted = |v: &SensorView| {
            let mut s: Vec<(String, f64)> = v
                .settings
                .iter()
                .map(|s| (s.target.to_string(), s.value))
                .collect();
            s.sort_by(|a, b| a.0.cmp(&b.0));
            s
        };
        assert_eq!(sorted(&fresh), sorted(&last));
        assert_eq!(sorted(&last).len(), 2);
    }
}
