//! Control planes: the operator's default one and one virtual control plane
//! per customer that opts in, each a set of modules per kind and a scope —
//! the service sets and resources its modules may see and configure.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use vcp_common::module::{Kind, Target};
use vcp_common::view::Member;

/// The operator's account (owner of the default control plane).
pub const OPERATOR: &str = "operator";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Instances {
    pub min: u32,
    pub max: u32,
    pub initial: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct InstanceSize {
    pub cores: f64,
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: f64,
}

/// What a virtual control plane does with one kind.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Use the operator's default module.
    Keep,
    /// Use the custom module instead of the default.
    Replace,
    /// Use both; their requests compete in mediation.
    Complement,
}

/// What a virtual control plane does with one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub mode: Mode,
    /// The custom module (for replace and complement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// A customer's virtual control plane: one per customer, over the service
/// sets the customer owns. Kinds not listed keep the default module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaneSpec {
    pub customer: String,
    #[serde(default)]
    pub modules: BTreeMap<Kind, Choice>,
}

impl PlaneSpec {
    /// The custom modules the plane uses.
    pub fn custom_modules(&self) -> impl Iterator<Item = &str> {
        self.modules.values().filter_map(|c| c.module.as_deref())
    }
}

/// Id of the operator's default control plane.
pub const DEFAULT_PLANE: &str = "default";

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSetDef {
    pub id: String,
    pub customer: String,
    pub members: Vec<Member>,
    pub instances: Instances,
    pub goals: Vec<vcp_common::module::Condition>,
    pub instance: Option<InstanceSize>,
}

/// What a control plane's modules may see and configure. Indexed, since
/// admission asks it about every request of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub service_sets: Vec<ServiceSetDef>,
    /// The operator's plane sees every host's implementation resources.
    pub all_hosts: bool,
    by_id: HashMap<String, usize>,
    /// Host -> the members on it (set index, member).
    by_host: HashMap<String, Vec<(usize, Member)>>,
}

impl Scope {
    pub fn new(service_sets: Vec<ServiceSetDef>, all_hosts: bool) -> Self {
        let by_id = service_sets
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let mut by_host: HashMap<String, Vec<(usize, Member)>> = HashMap::default();
        for (i, s) in service_sets.iter().enumerate() {
            for m in &s.members {
                by_host
                    .entry(m.host.clone())
                    .or_default()
                    .push((i, m.clone()));
            }
        }
        Scope {
            service_sets,
            all_hosts,
            by_id,
            by_host,
        }
    }

    pub fn set(&self, id: &str) -> Option<&ServiceSetDef> {
        self.by_id.get(id).and_then(|&i| self.service_sets.get(i))
    }

    /// Whether readings of `resource` on `host` are visible.
    pub fn sees(&self, host: &str, resource: &str) -> bool {
        self.all_hosts
            || self
                .by_host
                .get(host)
                .is_some_and(|ms| ms.iter().any(|(_, m)| m.covers(host, resource)))
    }

    /// Whether the host appears in the scope at all.
    pub fn sees_host(&self, host: &str) -> bool {
        self.all_hosts || self.by_host.contains_key(host)
    }

    /// Whether a request may target `target`.
    pub fn covers(&self, target: &Target) -> bool {
        match target {
            Target::ServiceSet(id) => self.by_id.contains_key(id.as_str()),
            Target::Member { service_set, host } => match self.by_id.get(service_set.as_str()) {
                Some(&i) => self
                    .by_host
                    .get(host.as_str())
                    .is_some_and(|ms| ms.iter().any(|(set, _)| *set == i)),
                None => false,
            },
            Target::Resource { host, resource } => self.sees(host, resource),
        }
    }
}

/// Which module fills a kind in a control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleRef {
    /// The operator's built-in default module (an instance of its own).
    Default,
    /// A custom module, by id.
    Custom(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ControlPlane {
    pub id: String,
    /// The customer, or `operator` for the default control plane.
    pub customer: String,
    pub scope: Arc<Scope>,
    /// Modules per kind, indexed by `Kind::index`.
    pub modules: [Vec<ModuleRef>; Kind::ALL.len()],
    /// Provisioned at run time (through the API), not by the configuration.
    pub provisioned: bool,
}

impl ControlPlane {
    pub fn modules(&self, kind: Kind) -> &[ModuleRef] {
        &self.modules[kind.index()]
    }

    pub fn is_default(&self) -> bool {
        self.id == DEFAULT_PLANE
    }
}

/// Id of a customer's virtual control plane.
pub fn virtual_plane_id(customer: &str) -> String {
    format!("vcp-{customer}")
}

/// The control planes in force, replaced as a whole when one is
/// provisioned or removed; readers take a snapshot without locks.
pub type Planes = Arc<arc_swap::ArcSwap<Vec<Arc<ControlPlane>>>>;

/// The control planes over `service_sets` that `specs` describe (each
/// with whether it was provisioned at run time): the default plane first,
/// then one per customer with a virtual control plane. The default plane
/// holds the service sets of every customer without one.
pub fn build(service_sets: &[ServiceSetDef], specs: Vec<(PlaneSpec, bool)>) -> Vec<ControlPlane> {
    let has_vcp = |customer: &str| specs.iter().any(|(s, _)| s.customer == customer);
    let default_modules = || {
        std::array::from_fn(|i| {
            if Kind::ALL[i] == Kind::Provisioning {
                vec![]
            } else {
                vec![ModuleRef::Default]
            }
        })
    };
    let mut planes = vec![ControlPlane {
        id: DEFAULT_PLANE.into(),
        customer: OPERATOR.into(),
        scope: Arc::new(Scope::new(
            service_sets
                .iter()
                .filter(|s| !has_vcp(&s.customer))
                .cloned()
                .collect(),
            true,
        )),
        modules: default_modules(),
        provisioned: false,
    }];
    for (spec, provisioned) in specs {
        let mut modules: [Vec<ModuleRef>; Kind::ALL.len()] = default_modules();
        for (kind, choice) in &spec.modules {
            let custom = choice.module.clone().map(ModuleRef::Custom);
            modules[kind.index()] = match (choice.mode, custom) {
                (Mode::Replace, Some(c)) => vec![c],
                (Mode::Complement, Some(c)) => vec![ModuleRef::Default, c],
                _ => vec![ModuleRef::Default],
            };
        }
        planes.push(ControlPlane {
            id: virtual_plane_id(&spec.customer),
            scope: Arc::new(Scope::new(
                service_sets
                    .iter()
                    .filter(|s| s.customer == spec.customer)
                    .cloned()
                    .collect(),
                false,
            )),
            customer: spec.customer,
            modules,
            provisioned,
        });
    }
    planes
}
