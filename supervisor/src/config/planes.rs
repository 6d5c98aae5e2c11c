//! The control planes a configuration and the planes provisioned at run
//! time describe, in the core's terms.

use vcp_common::module::Kind;
use vcp_core::plane::{self, Choice, ControlPlane, Mode, PlaneSpec, ServiceSetDef};

use super::{ControlPlaneConfig, ServiceSetConfig, SupervisorFile};

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

/// Checks one kind's choice of a plane of `customer` against the custom
/// modules of `file`: the message says what is wrong.
pub fn check_choice(
    file: &SupervisorFile,
    customer: &str,
    kind: Kind,
    mode: Mode,
    module: Option<&str>,
) -> Result<(), String> {
    if kind == Kind::Provisioning {
        return Err("provisioning: control planes do not choose provisioning modules".into());
    }
    match (mode, module) {
        (Mode::Keep, None) => Ok(()),
        (Mode::Keep, Some(_)) => Err(format!(
            "{kind}: mode \"keep\" uses the default module; remove `module`"
        )),
        (_, None) => Err(format!("{kind}: mode {mode:?} needs `module`")),
        (_, Some(m)) => {
            let Some(def) = file.custom_modules.iter().find(|c| c.id.get_ref() == m) else {
                let mut known: Vec<_> = file
                    .custom_modules
                    .iter()
                    .map(|c| c.id.get_ref().as_str())
                    .collect();
                known.sort();
                return Err(format!(
                    "unknown custom module {m:?}: expected one of {known:?}"
                ));
            };
            if def.kind != kind {
                return Err(format!("module {m:?} is a {} module, not {kind}", def.kind));
            }
            if def.customer.get_ref() != customer {
                return Err(format!(
                    "module {m:?} is offered to customer {:?}, not {customer:?}",
                    def.customer.get_ref()
                ));
            }
            Ok(())
        }
    }
}

impl From<&ControlPlaneConfig> for PlaneSpec {
    fn from(c: &ControlPlaneConfig) -> Self {
        PlaneSpec {
            customer: c.customer.get_ref().clone(),
            modules: c
                .modules
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        Choice {
                            mode: v.mode,
                            module: v.module.as_ref().map(|m| m.get_ref().clone()),
                        },
                    )
                })
                .collect(),
        }
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
