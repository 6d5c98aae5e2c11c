//! Members of service sets: hosts, or resources of hosts, and the rule
//! that no resource belongs to two customers.

use std::collections::HashMap;

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
    // Members of different hosts never overlap: only members of one host
    // are compared, so ten thousand sets cost no fifty million pairs.
    // The operator's sets may overlap anything.
    let mut by_host: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (j, s) in sets.iter().enumerate() {
        if s.customer.get_ref() != OPERATOR {
            for (k, m) in s.members.iter().enumerate() {
                by_host.entry(m.host.as_str()).or_default().push((j, k));
            }
        }
    }
    // The first pair in the order (later set, earlier set, its member, the
    // earlier set's member), whichever host it lies on.
    let mut first: Option<(usize, usize, usize, usize)> = None;
    for members in by_host.values() {
        for (x, &(j, kb)) in members.iter().enumerate() {
            let (b, mb) = (&sets[j], &sets[j].members[kb]);
            for &(i, ka) in &members[..x] {
                let (a, ma) = (&sets[i], &sets[i].members[ka]);
                let pair = (j, i, kb, ka);
                if i == j
                    || first.is_some_and(|f| f <= pair)
                    || a.customer.get_ref() == b.customer.get_ref()
                    || customer
                        .is_some_and(|c| a.customer.get_ref() != c && b.customer.get_ref() != c)
                {
                    continue;
                }
                if ma.member().overlaps(&mb.member()) {
                    first = Some(pair);
                }
            }
        }
    }
    let (j, i, kb, ka) = first?;
    let (a, b) = (&sets[i], &sets[j]);
    Some((
        j,
        format!(
            "member {} of service set {:?} (customer {:?}) overlaps member {} of service set {:?} (customer {:?}): a resource belongs to one account",
            b.members[kb],
            b.id.get_ref(),
            b.customer.get_ref(),
            a.members[ka],
            a.id.get_ref(),
            a.customer.get_ref()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(text: &str) -> Vec<ServiceSetConfig> {
        #[derive(Deserialize)]
        struct File {
            service_sets: Vec<ServiceSetConfig>,
        }
        toml::from_str::<File>(text).unwrap().service_sets
    }

    #[test]
    fn the_first_overlap_in_set_order_is_named_whatever_host_it_is_on() {
        let set = |id: &str, customer: &str, members: &str| {
            format!("[[service_sets]]\nid = \"{id}\"\ncustomer = \"{customer}\"\ninstances = {{ min = 1, max = 2, initial = 1 }}\nmembers = [{members}]\n")
        };
        let text = [
            set("ops", OPERATOR, "{ host = \"h1\" }, { host = \"h2\" }"),
            set(
                "a",
                "acme",
                "{ host = \"h2\", resource = \"cgroup/web\" }, { host = \"h1\" }",
            ),
            set(
                "b",
                "globex",
                "{ host = \"h3\" }, { host = \"h1\", resource = \"cgroup/x\" }",
            ),
            set("c", "initech", "{ host = \"h2\" }"),
        ]
        .concat();
        let sets = sets(&text);
        let (j, message) = overlapping_members(&sets, None).unwrap();
        assert_eq!(j, 2, "{message}");
        assert!(
            message.starts_with("member h1 cgroup/x of service set \"b\" (customer \"globex\") overlaps member h1 (whole host) of service set \"a\""),
            "{message}"
        );
        // Scoped to one customer: only pairs involving it count.
        let (j, message) = overlapping_members(&sets, Some("initech")).unwrap();
        assert_eq!(j, 3, "{message}");
        assert!(
            message.contains("overlaps member h2 cgroup/web of service set \"a\""),
            "{message}"
        );
        assert!(overlapping_members(&sets[..2], None).is_none());
    }
}
