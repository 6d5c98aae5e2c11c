//! The configuration in force: the last mediated value of every
//! (target, parameter), as an immutable map swapped atomically. Rounds of
//! different kinds write disjoint parameters; views and reports read it
//! without locks.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use vcp_common::module::Target;

/// A mediated configuration: what a round decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub round: u64,
    pub target: Target,
    pub parameter: String,
    pub value: f64,
    /// The module whose request won.
    pub module: String,
    pub control_plane: String,
    /// How many requests competed for this (target, parameter).
    pub contenders: usize,
    /// Each competing module's influence on the outcome (summing to 1).
    pub influences: Vec<(crate::judge::ModuleKey, f64)>,
}

pub type SettingsMap = HashMap<(Target, String), Decision>;

#[derive(Debug, Default)]
pub struct Settings {
    map: ArcSwap<SettingsMap>,
}

impl Settings {
    pub fn snapshot(&self) -> Arc<SettingsMap> {
        self.map.load_full()
    }

    /// Puts decisions in force.
    pub fn apply(&self, decisions: &[Decision]) {
        if decisions.is_empty() {
            return;
        }
        self.map.rcu(|m| {
            let mut next = SettingsMap::clone(m);
            for d in decisions {
                next.insert((d.target.clone(), d.parameter.clone()), d.clone());
            }
            next
        });
    }

    pub fn value(&self, target: &Target, parameter: &str) -> Option<f64> {
        // The key type owns its strings; a lookup by borrowed parts would
        // need a custom key, and this is not on a round's path.
        self.map
            .load()
            .get(&(target.clone(), parameter.to_owned()))
            .map(|d| d.value)
    }
}
