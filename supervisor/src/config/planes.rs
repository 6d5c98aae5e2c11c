//! The control planes a configuration and the planes provisioned at run
//! time describe, in the core's terms.

use vcp_core::plane::{self, ControlPlane, PlaneSpec, ServiceSetDef};

use super::{ServiceSetConfig, SupervisorFile};

fn set_def(s: &ServiceSetConfig) -> ServiceSetDef {
    ServiceSetDef {
        id: s.id.get_ref().clone(),
        customer: s.customer.get_ref().clone(),
        members: s.members.iter().map(|m| m.member()).collect(),
        instances: *s.instances.get_ref(),
        goals: s.goals.clone(),
        instance: s.instance,
    }
}

impl SupervisorFile {
    /// The service sets, in the core's terms.
    pub fn service_set_defs(&self) -> Vec<ServiceSetDef> {
        self.service_sets.iter().map(set_def).collect()
    }

    /// The control planes of this (validated) file and of the planes
    /// `provisioned` at run time: the default plane first.
    pub fn planes(&self, provisioned: &[PlaneSpec]) -> Vec<ControlPlane> {
        let specs = self
            .control_planes
            .iter()
            .map(|c| (PlaneSpec::from(c), false))
            .chain(provisioned.iter().map(|p| (p.clone(), true)))
            .collect();
        plane::build(&self.service_set_defs(), specs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use vcp_common::module::{Kind, Target};
    use vcp_core::plane::{ModuleRef, DEFAULT_PLANE};

    #[test]
    fn example_builds_default_and_virtual_planes() {
        let cfg = SupervisorFile::parse(
            include_str!("../../supervisor.example.toml"),
            Path::new("x"),
        )
        .unwrap();
        let planes = cfg.planes(&[]);
        assert_eq!(planes.len(), 2);
        let (def, acme) = (&planes[0], &planes[1]);
        assert_eq!(def.id, DEFAULT_PLANE);
        assert_eq!(
            def.scope
                .service_sets
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["ops-web"]
        );
        assert_eq!(acme.id, "vcp-acme");
        assert_eq!(
            acme.modules(Kind::Autoscaling),
            [ModuleRef::Custom("acme-predictive".into())]
        );
        assert_eq!(acme.modules(Kind::LoadBalancing), [ModuleRef::Default]);
        assert!(acme.modules(Kind::Provisioning).is_empty());

        // Scope: acme sees agent-2 and agent-3, not agent-1.
        assert!(acme.scope.sees("agent-2", "cpu"));
        assert!(!acme.scope.sees("agent-1", "cpu"));
        assert!(acme.scope.covers(&Target::ServiceSet("acme-shop".into())));
        assert!(!acme.scope.covers(&Target::ServiceSet("ops-web".into())));
        assert!(!acme.scope.covers(&Target::Member {
            service_set: "acme-shop".into(),
            host: "agent-1".into()
        }));
        assert!(!acme.scope.covers(&Target::Resource {
            host: "agent-1".into(),
            resource: vcp_common::resource::ResourceId::new("nic/eth0").unwrap()
        }));
        assert!(def.scope.covers(&Target::Resource {
            host: "agent-3".into(),
            resource: vcp_common::resource::ResourceId::new("nic/eth0").unwrap()
        }));
    }
}
