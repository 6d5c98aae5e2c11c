//! The resources application lines may name, from the agent's config.

use std::collections::BTreeSet;

use super::check_resource;

/// The resources application lines may name (see the module docs); built
/// from the agent's configuration by
/// [`SensorConfig::app_allowed`](super::SensorConfig::app_allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedResources {
    exact: BTreeSet<String>,
    /// `cgroup/<slice>`, whose direct children are allowed.
    slice: Option<String>,
}

impl AllowedResources {
    /// Allows `r` itself; an invalid resource is refused with the reason.
    pub fn insert(&mut self, r: &str) -> Result<(), String> {
        check_resource(r)?;
        self.exact.insert(r.to_owned());
        Ok(())
    }

    /// Allows `cgroup/<group>`, the resource the cgroup sensor reports for
    /// `group`.
    pub fn insert_cgroup(&mut self, group: &str) -> Result<(), String> {
        self.insert(&format!("cgroup/{group}"))
    }

    /// Allows `cgroup/<slice>/<child>` for every single-segment `child`.
    pub fn set_cgroup_slice(&mut self, slice: &str) -> Result<(), String> {
        let r = format!("cgroup/{slice}");
        check_resource(&r)?;
        self.slice = Some(r);
        Ok(())
    }

    /// Whether lines may name `r`.
    pub fn allows(&self, r: &str) -> bool {
        if self.exact.contains(r) {
            return true;
        }
        self.slice.as_deref().is_some_and(|slice| {
            r.strip_prefix(slice)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|child| !child.is_empty() && !child.contains('/'))
                && check_resource(r).is_ok()
        })
    }
}
