//! The active module instances per kind, as immutable lists swapped
//! atomically: a round reads its kind's list without locks; registering or
//! removing a remote module replaces the list.

use std::sync::Arc;

use arc_swap::ArcSwap;
use vcp_common::module::Kind;

use crate::modules::instance::ModuleInstance;

pub type Instances = Arc<Vec<Arc<ModuleInstance>>>;

#[derive(Default)]
pub struct Registry {
    by_kind: [ArcSwap<Vec<Arc<ModuleInstance>>>; Kind::ALL.len()],
}

impl Registry {
    pub fn add(&self, m: Arc<ModuleInstance>) {
        self.by_kind[m.kind().index()].rcu(|list| {
            let mut next = Vec::clone(list);
            next.push(m.clone());
            next
        });
    }

    /// Removes the instance with `uid`, if present.
    pub fn remove(&self, kind: Kind, uid: u64) {
        self.by_kind[kind.index()].rcu(|list| {
            list.iter()
                .filter(|m| m.uid != uid)
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// The instances of `kind`, in registration order.
    pub fn of(&self, kind: Kind) -> Instances {
        self.by_kind[kind.index()].load_full()
    }

    /// Every instance, grouped by kind.
    pub fn all(&self) -> Vec<Arc<ModuleInstance>> {
        self.by_kind
            .iter()
            .flat_map(|l| l.load().iter().cloned().collect::<Vec<_>>())
            .collect()
    }
}
