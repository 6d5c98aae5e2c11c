//! The configuration in force: the last mediated value of every
//! (target, parameter), as an immutable map swapped atomically. Rounds of
//! different kinds write disjoint parameters; views and reports read it
//! without locks.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use vcp_common::module::Target;

/// A mediated configuration: what a round decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub round: u64,
    pub target: Target,
    pub parameter: Arc<str>,
    pub value: f64,
    /// The module whose request won (or weighed most).
    pub module: Arc<str>,
    pub control_plane: Arc<str>,
    /// How many requests competed for this (target, parameter).
    pub contenders: usize,
    /// Each competing module's influence on the outcome (summing to 1).
    pub influences: Vec<(crate::ModuleKey, f64)>,
}

/// A decision keyed by its target, so the map needs no separate key (and
/// cloning the map clones no strings).
#[derive(Debug, Clone)]
struct ByTarget(Arc<Decision>);

impl PartialEq for ByTarget {
    fn eq(&self, other: &Self) -> bool {
        self.0.target == other.0.target
    }
}

impl Eq for ByTarget {}

impl std::hash::Hash for ByTarget {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.target.hash(state)
    }
}

impl std::borrow::Borrow<Target> for ByTarget {
    fn borrow(&self) -> &Target {
        &self.0.target
    }
}

/// Decisions in force by parameter, then target: looked up by borrowed
/// parts, so a round's admission never allocates a key. Each parameter's
/// map sits behind its own `Arc`, so a round copies only the maps of the
/// parameters it decided, and a copy only bumps reference counts.
#[derive(Debug, Clone, Default)]
pub struct SettingsMap {
    by_param: HashMap<Arc<str>, Arc<HashSet<ByTarget>>>,
}

impl SettingsMap {
    pub fn get(&self, target: &Target, parameter: &str) -> Option<&Decision> {
        self.by_param.get(parameter)?.get(target).map(|b| &*b.0)
    }

    /// The decisions in force of one parameter, looked up once for many
    /// targets.
    pub fn of(&self, parameter: &str) -> ParamSettings<'_> {
        ParamSettings(self.by_param.get(parameter))
    }

    /// Each parameter with its decisions in force.
    pub fn params(&self) -> impl Iterator<Item = (&Arc<str>, ParamSettings<'_>)> {
        self.by_param
            .iter()
            .map(|(p, m)| (p, ParamSettings(Some(m))))
    }

    pub fn insert(&mut self, d: Arc<Decision>) {
        let set = self.by_param.entry(d.parameter.clone()).or_default();
        Arc::make_mut(set).replace(ByTarget(d));
    }

    /// Every decision in force.
    pub fn iter(&self) -> impl Iterator<Item = &Decision> {
        self.by_param.values().flat_map(|m| m.iter().map(|b| &*b.0))
    }

    pub fn len(&self) -> usize {
        self.by_param.values().map(|m| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One parameter's decisions in force (see [`SettingsMap::of`]).
#[derive(Debug, Clone, Copy)]
pub struct ParamSettings<'a>(Option<&'a Arc<HashSet<ByTarget>>>);

impl<'a> ParamSettings<'a> {
    pub fn get(&self, target: &Target) -> Option<&'a Decision> {
        self.0?.get(target).map(|b| &*b.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a Decision> {
        self.0.into_iter().flat_map(|m| m.iter().map(|b| &*b.0))
    }

    /// A token of these decisions: a map is never changed once shared, so
    /// a parameter whose token [`is`](ParamVersion::is) the one kept has
    /// the same decisions in force. It keeps the map's allocation, not its
    /// decisions, so no later map can take its address.
    pub fn version(&self) -> ParamVersion {
        ParamVersion(self.0.map(Arc::downgrade).unwrap_or_default())
    }
}

/// See [`ParamSettings::version`].
#[derive(Debug, Clone, Default)]
pub struct ParamVersion(std::sync::Weak<HashSet<ByTarget>>);

impl ParamVersion {
    pub fn is(&self, settings: &ParamSettings<'_>) -> bool {
        settings
            .0
            .is_some_and(|m| std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(m)))
    }
}

#[derive(Debug, Default)]
pub struct Settings {
    map: ArcSwap<SettingsMap>,
    /// What shadow modules would have decided (never in force).
    shadow: ArcSwap<SettingsMap>,
}

impl Settings {
    pub fn snapshot(&self) -> Arc<SettingsMap> {
        self.map.load_full()
    }

    /// Puts decisions in force.
    pub fn apply(&self, decisions: &[Arc<Decision>]) {
        if decisions.is_empty() {
            return;
        }
        self.map.rcu(|m| {
            let mut next = SettingsMap::clone(m);
            for d in decisions {
                next.insert(d.clone());
            }
            next
        });
    }

    /// Records what shadow modules would have decided.
    pub fn apply_shadow(&self, decisions: &[Arc<Decision>]) {
        if decisions.is_empty() {
            return;
        }
        self.shadow.rcu(|m| {
            let mut next = SettingsMap::clone(m);
            for d in decisions {
                next.insert(d.clone());
            }
            next
        });
    }

    /// The value a shadow module would have put in force.
    pub fn shadow_value(&self, target: &Target, parameter: &str) -> Option<f64> {
        self.shadow.load().get(target, parameter).map(|d| d.value)
    }

    pub fn value(&self, target: &Target, parameter: &str) -> Option<f64> {
        self.map.load().get(target, parameter).map(|d| d.value)
    }
}
