//! What a configuration request is about.

use serde::{Deserialize, Serialize};

use crate::resource::ResourceId;

/// What a configuration request is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    /// A whole service set (e.g. its instances).
    ServiceSet(String),
    /// A service set's presence on one host (weights, placement).
    Member { service_set: String, host: String },
    /// A resource of a host: `nic/eth0`, `cgroup/web`, …
    Resource { host: String, resource: ResourceId },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::ServiceSet(s) => write!(f, "set:{s}"),
            Target::Member { service_set, host } => write!(f, "set:{service_set}@{host}"),
            Target::Resource { host, resource } => write!(f, "{host}:{resource}"),
        }
    }
}
