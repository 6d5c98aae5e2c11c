//! Members of service sets: hosts, or resources of hosts, and the rule
//! that no resource belongs to two customers.

use serde::Deserialize;
use vcp_common::resource::ResourceId;
use vcp_common::view::Member;

use super::{ServiceSetConfig, OPERATOR};

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub host: String,
    /// A resource of the host (e.g. `cgroup/web`); the whole host if absent.
    #[serde(default)]
    pub resource: Option<ResourceId>,
}

impl MemberConfig {
    pub fn member(&self) -> Member {
        Member {
            host: self.host.clone(),
            resource: self.resource.clone(),
        }
    }
}

impl std::fmt::Display for MemberConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.resource {
            Some(r) => write!(f, "{} {r}", self.host),
            None => write!(f, "{} (whole host)", self.host),
        }
    }
}

/// The first pair of members of service sets of two different customers
/// that share a resource, described with both sets, their owners and the
/// members — or `None`. With `customer`, only pairs involving that
/// customer's sets count. A module sees and configures what its plane's
/// members cover, so no resource may belong to two customers. (The
/// operator's own sets may hold what it lends to customers: its default
/// plane sees every host anyway.)
pub fn overlapping_members(
    sets: &[ServiceSetConfig],
    customer: Option<&str>,
) -> Option<(usize, String)> {
    for (j, b) in sets.iter().enumerate() {
        for a in &sets[..j] {
            if a.customer.get_ref() == b.customer.get_ref()
                || a.customer.get_ref() == OPERATOR
                || b.customer.get_ref() == OPERATOR
                || customer.is_some_and(|c| a.customer.get_ref() != c && b.customer.get_ref() != c)
            {
                continue;
            }
            for mb in &b.members {
                if let Some(ma) = a
                    .members
                    .iter()
                    .find(|ma| ma.member().overlaps(&mb.member()))
                {
                    return Some((
                        j,
                        format!(
                            "member {mb} of service set {:?} (customer {:?}) overlaps member {ma} of service set {:?} (customer {:?}): a resource belongs to one account",
                            b.id.get_ref(),
                            b.customer.get_ref(),
                            a.id.get_ref(),
                            a.customer.get_ref()
                        ),
                    ));
                }
            }
        }
    }
    None
}
