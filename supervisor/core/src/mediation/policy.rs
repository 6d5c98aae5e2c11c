//! Mediation policies: which policy resolves a (kind, parameter) in a
//! control plane, the defaults, and per-policy decision counters.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use vcp_common::module::{param, Kind};

use crate::mediate::Policy;

/// One configured policy: for a kind and parameter, optionally only in one
/// control plane (the most specific entry wins).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    pub kind: Kind,
    pub parameter: String,
    #[serde(default)]
    pub control_plane: Option<String>,
    pub policy: Policy,
}

/// Mitigation capacity when no policy says otherwise: 10 Gbit/s, in bytes/s.
pub const DEFAULT_MITIGATION_CAPACITY: f64 = 1.25e9;

/// The policy of a parameter when the configuration names none.
pub fn default_policy(parameter: &str) -> Policy {
    match parameter {
        param::LB_WEIGHT | param::CPU_SHARE | param::MEMORY_SHARE => Policy::Weighted,
        param::PLACEMENT => Policy::Optimise { lambda: 1.0 },
        param::MITIGATION => Policy::Capacity {
            capacity: DEFAULT_MITIGATION_CAPACITY,
            exploration: 0.05,
        },
        _ => Policy::Precedence,
    }
}

/// Names of the policies, in the order of [`PolicyCounts`].
pub const POLICY_NAMES: [&str; 5] = [
    "precedence",
    "weighted",
    "capacity",
    "conditional",
    "optimise",
];

pub(crate) fn policy_index(p: &Policy) -> usize {
    match p {
        Policy::Precedence => 0,
        Policy::Weighted => 1,
        Policy::Capacity { .. } => 2,
        Policy::Conditional(_) => 3,
        Policy::Optimise { .. } => 4,
    }
}

/// Decisions per policy (atomics; read by reports and /metrics).
#[derive(Debug, Default)]
pub struct PolicyCounts(pub [AtomicU64; 5]);

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolicyCount {
    pub policy: &'static str,
    pub decisions: u64,
}

impl PolicyCounts {
    pub fn summary(&self) -> Vec<PolicyCount> {
        POLICY_NAMES
            .iter()
            .zip(&self.0)
            .map(|(p, c)| PolicyCount {
                policy: p,
                decisions: c.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// Configured policies, with the defaults of every known parameter
/// resolved up front so a lookup never allocates.
pub struct PolicyTable {
    entries: Vec<PolicyEntry>,
    defaults: Vec<(&'static str, Policy)>,
}

static PRECEDENCE: Policy = Policy::Precedence;

impl PolicyTable {
    pub fn new(entries: Vec<PolicyEntry>) -> Self {
        let known = [
            param::INSTANCES,
            param::LB_WEIGHT,
            param::PLACEMENT,
            param::CPU_SHARE,
            param::MEMORY_SHARE,
            param::TRAFFIC_EXCESS,
            param::MITIGATION,
        ];
        PolicyTable {
            entries,
            defaults: known.iter().map(|p| (*p, default_policy(p))).collect(),
        }
    }

    /// The policy for (kind, parameter) in control plane `plane`: the most
    /// specific configured entry, else the parameter's default.
    pub fn resolve(&self, kind: Kind, parameter: &str, plane: &str) -> &Policy {
        let configured = self
            .entries
            .iter()
            .filter(|e| e.kind == kind && e.parameter == parameter)
            .filter(|e| e.control_plane.as_deref().is_none_or(|p| p == plane))
            .max_by_key(|e| e.control_plane.is_some());
        match configured {
            Some(e) => &e.policy,
            None => self
                .defaults
                .iter()
                .find(|(p, _)| *p == parameter)
                .map_or(&PRECEDENCE, |(_, p)| p),
        }
    }
}
