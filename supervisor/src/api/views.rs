//! What the API returns and the dashboard shows, filtered to what the
//! caller may see: the operator sees everything, a customer its own
//! control planes and hosts, a vendor its own modules.

use std::collections::BTreeMap;

use serde::Serialize;
use vcp_common::module::{Kind, Target};

use super::ApiError;
use crate::overview::Overview;
use vcp_core::plane::{ControlPlane, ModuleRef};
use vcp_core::reputation::Components;
use vcp_core::stats::ModuleSummary;
use vcp_store::accounts::{Principal, Role};

#[derive(Debug, Clone, Serialize)]
pub struct PlaneView {
    pub id: String,
    pub customer: String,
    /// `configuration` (the supervisor's file) or `api` (provisioned).
    pub source: &'static str,
    /// Module ids per kind.
    pub modules: BTreeMap<Kind, Vec<String>>,
    pub service_sets: Vec<String>,
}

/// Whether the caller may see plane `p`.
pub fn sees_plane(caller: &Principal, p: &ControlPlane) -> bool {
    caller.is_operator() || (caller.role == Role::Customer && caller.account == p.customer)
}

fn module_id(control: &dyn Overview, kind: Kind, m: &ModuleRef) -> String {
    match m {
        ModuleRef::Custom(id) => id.clone(),
        ModuleRef::Default => control
            .file()
            .builtin
            .module(kind)
            .map_or_else(|| format!("default-{kind}"), |l| l.spec().id),
    }
}

pub fn plane_view(control: &dyn Overview, p: &ControlPlane) -> PlaneView {
    PlaneView {
        id: p.id.clone(),
        customer: p.customer.clone(),
        source: if p.provisioned {
            "api"
        } else {
            "configuration"
        },
        modules: Kind::ALL
            .into_iter()
            .filter(|k| !p.modules(*k).is_empty())
            .map(|k| {
                (
                    k,
                    p.modules(k)
                        .iter()
                        .map(|m| module_id(control, k, m))
                        .collect(),
                )
            })
            .collect(),
        service_sets: p.scope.service_sets.iter().map(|s| s.id.clone()).collect(),
    }
}

/// The control planes the caller may see. Vendors see none.
pub fn planes(control: &dyn Overview, caller: &Principal) -> Result<Vec<PlaneView>, ApiError> {
    if caller.role == Role::Vendor {
        return Err(ApiError::forbidden("vendors do not see control planes"));
    }
    Ok(control
        .planes()
        .iter()
        .filter(|p| sees_plane(caller, p))
        .map(|p| plane_view(control, p))
        .collect())
}

/// One module in one control plane.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleInPlane {
    pub control_plane: String,
    pub customer: String,
    pub connected: bool,
    pub shadow: bool,
    pub requests: u64,
    pub deadline_misses: u64,
    pub reputation: Option<Components>,
    pub contribution: f64,
    pub reward_share: f64,
}

/// A module of the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleView {
    pub id: String,
    pub kind: Kind,
    /// The vendor of a custom module; `None` for the operator's defaults.
    pub vendor: Option<String>,
    /// The customer a custom module is offered to.
    pub offered_to: Option<String>,
    pub planes: Vec<ModuleInPlane>,
}

/// Whether the caller may see the module at all.
fn sees_module(caller: &Principal, vendor: Option<&str>, offered_to: Option<&str>) -> bool {
    match caller.role {
        Role::Operator => true,
        Role::Vendor => vendor == Some(caller.account.as_str()),
        Role::Customer => offered_to.is_none_or(|c| c == caller.account),
        Role::Enrol => false,
    }
}

/// Whether the caller may see the module's record in a plane of `customer`.
fn sees_record(caller: &Principal, vendor: Option<&str>, customer: &str) -> bool {
    match caller.role {
        Role::Operator => true,
        Role::Vendor => vendor == Some(caller.account.as_str()),
        Role::Customer => customer == caller.account,
        Role::Enrol => false,
    }
}

/// The module catalog: the operator's default modules and every custom
/// module, with reputation and contribution per control plane.
pub fn modules(control: &dyn Overview, caller: &Principal) -> Vec<ModuleView> {
    let report = control.judge().report.load_full();
    let summaries = control.modules();
    let mut catalog: Vec<ModuleView> = Vec::new();
    for kind in Kind::ALL {
        if let Some(logic) = control.file().builtin.module(kind) {
            catalog.push(ModuleView {
                id: logic.spec().id,
                kind,
                vendor: None,
                offered_to: None,
                planes: Vec::new(),
            });
        }
    }
    for c in &control.file().custom_modules {
        catalog.push(ModuleView {
            id: c.id.get_ref().clone(),
            kind: c.kind,
            vendor: Some(c.vendor.get_ref().clone()),
            offered_to: Some(c.customer.get_ref().clone()),
            planes: Vec::new(),
        });
    }
    catalog.retain(|m| sees_module(caller, m.vendor.as_deref(), m.offered_to.as_deref()));
    for m in &mut catalog {
        for s in summaries.iter().filter(|s| s.id == m.id) {
            if !sees_record(caller, m.vendor.as_deref(), &s.customer) {
                continue;
            }
            m.planes.push(in_plane(s, &report));
        }
    }
    catalog
}

fn in_plane(s: &ModuleSummary, report: &crate::judge::JudgeReport) -> ModuleInPlane {
    let rep = report
        .reputation
        .iter()
        .find(|r| r.module == s.id && r.control_plane == s.control_plane);
    let con = report
        .contribution
        .iter()
        .find(|r| r.module == s.id && r.control_plane == s.control_plane);
    ModuleInPlane {
        control_plane: s.control_plane.clone(),
        customer: s.customer.clone(),
        connected: s.connected,
        shadow: s.shadow,
        requests: s.requests,
        deadline_misses: s.deadline_misses,
        reputation: rep.map(|r| r.components),
        contribution: con.map_or(0.0, |c| c.cumulative),
        reward_share: con.map_or(0.0, |c| c.reward_share),
    }
}

/// A mediated decision in force.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub round: u64,
    pub control_plane: String,
    pub target: String,
    pub parameter: String,
    pub value: f64,
    /// The module that won (or weighed most).
    pub module: String,
    pub contenders: usize,
}

pub fn target_label(t: &Target) -> String {
    match t {
        Target::ServiceSet(s) => s.clone(),
        Target::Member { service_set, host } => format!("{service_set}@{host}"),
        Target::Resource { host, resource } => format!("{host}/{resource}"),
    }
}

/// Decisions listed when the caller gives no limit, and the most listed.
pub const DECISIONS_DEFAULT: usize = 100;
pub const DECISIONS_MAX: usize = 10_000;

/// The newest decisions in force in the planes the caller sees, newest
/// round first: `limit` of them (default 100, at most 10,000).
pub fn decisions(
    control: &dyn Overview,
    caller: &Principal,
    limit: Option<usize>,
) -> Result<Vec<DecisionView>, ApiError> {
    let limit = limit.unwrap_or(DECISIONS_DEFAULT);
    if limit > DECISIONS_MAX {
        return Err(ApiError::unprocessable(format!(
            "limit {limit} is over {DECISIONS_MAX}"
        )));
    }
    let visible: Vec<String> = planes(control, caller)?.into_iter().map(|p| p.id).collect();
    let snapshot = control.settings().snapshot();
    let mut out: Vec<DecisionView> = snapshot
        .iter()
        .filter(|d| visible.iter().any(|p| **p == *d.control_plane))
        .map(|d| DecisionView {
            round: d.round,
            control_plane: d.control_plane.to_string(),
            target: target_label(&d.target),
            parameter: d.parameter.to_string(),
            value: d.value,
            module: d.module.to_string(),
            contenders: d.contenders,
        })
        .collect();
    out.sort_by(|a, b| {
        b.round
            .cmp(&a.round)
            .then_with(|| a.target.cmp(&b.target))
            .then_with(|| a.parameter.cmp(&b.parameter))
    });
    out.truncate(limit);
    Ok(out)
}

/// A host and its latest readings.
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    pub id: String,
    pub connected: bool,
    pub last_seen_ms: i64,
    /// Host CPU busy share (0..1), from `cpu.utilization` of resource `cpu`.
    pub cpu_utilization: Option<f64>,
    pub memory_used_bytes: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    /// Every latest reading the caller may see: `resource` -> `metric` -> value.
    pub readings: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The hosts the caller may see: the operator every host, a customer the
/// hosts of its service sets (only their members' resources); vendors none.
pub fn hosts(control: &dyn Overview, caller: &Principal) -> Result<Vec<HostView>, ApiError> {
    if caller.role == Role::Vendor {
        return Err(ApiError::forbidden("vendors do not see hosts"));
    }
    // A customer sees the members of its own service sets.
    let own: Vec<vcp_common::view::Member> = control
        .file()
        .service_sets
        .iter()
        .filter(|s| s.customer.get_ref() == &caller.account)
        .flat_map(|s| &s.members)
        .map(|m| m.member())
        .collect();
    let sees = |host: &str, resource: &str| {
        caller.is_operator() || own.iter().any(|m| m.covers(host, resource))
    };
    let agents = control.fleet().summaries();
    let hosts = control.fleet().view.hosts();
    let mut out = Vec::new();
    for a in &agents {
        let mut readings: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        if let Some(cell) = hosts.get(a.id.as_str()) {
            for (def, latest) in cell.load().readings() {
                if sees(&a.id, &def.resource) {
                    readings
                        .entry(def.resource.clone())
                        .or_default()
                        .insert(def.metric.clone(), latest.value);
                }
            }
        }
        if readings.is_empty() && !caller.is_operator() {
            continue;
        }
        let get = |r: &str, m: &str| readings.get(r).and_then(|x| x.get(m)).copied();
        out.push(HostView {
            id: a.id.clone(),
            connected: a.connected,
            last_seen_ms: a.last_seen_ms,
            cpu_utilization: get("cpu", vcp_common::metric::CPU_UTILIZATION.name),
            memory_used_bytes: get("memory", vcp_common::metric::MEMORY_USED.name),
            memory_total_bytes: get("memory", vcp_common::metric::MEMORY_TOTAL.name),
            readings,
        });
    }
    Ok(out)
}

/// A service set, the plane it runs under and how its goals fare.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSetView {
    pub id: String,
    pub customer: String,
    pub control_plane: String,
    pub members: Vec<vcp_common::view::Member>,
    pub instances: vcp_core::plane::Instances,
    /// The instances decided and in force, once a module decided.
    pub instances_in_force: Option<f64>,
    pub goals: Vec<vcp_common::module::Condition>,
    /// Evaluation windows judged, and those in which every goal held.
    pub goal_windows: u64,
    pub goal_windows_met: u64,
}

/// The service sets the caller may see: the operator every set, a
/// customer its own; vendors none.
pub fn service_sets(
    control: &dyn Overview,
    caller: &Principal,
) -> Result<Vec<ServiceSetView>, ApiError> {
    if caller.role == Role::Vendor {
        return Err(ApiError::forbidden("vendors do not see service sets"));
    }
    let report = control.judge().report.load_full();
    Ok(control
        .planes()
        .iter()
        .flat_map(|p| p.scope.service_sets.iter().map(move |s| (p, s)))
        .filter(|(_, s)| caller.is_operator() || s.customer == caller.account)
        .map(|(p, s)| {
            let goals = report.goals.iter().find(|g| g.service_set == s.id);
            ServiceSetView {
                id: s.id.clone(),
                customer: s.customer.clone(),
                control_plane: p.id.clone(),
                members: s.members.clone(),
                instances: s.instances,
                instances_in_force: control.settings().value(
                    &Target::ServiceSet(s.id.clone()),
                    vcp_common::module::param::INSTANCES,
                ),
                goals: s.goals.clone(),
                goal_windows: goals.map_or(0, |g| g.windows),
                goal_windows_met: goals.map_or(0, |g| g.met),
            }
        })
        .collect())
}
