//! Provisioning of virtual control planes at run time: what a customer
//! asks for (a [`PlaneSpec`]), its validation against the configuration,
//! the workflow templates and tasks that bring it into force, and the
//! durable record of provisioned planes.

pub mod store;
pub mod tasks;

use vcp_common::module::Kind;
use vcp_core::plane::{Choice, Mode, PlaneSpec, OPERATOR};

use crate::config::SupervisorFile;

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

/// Whether `spec` makes sense for `file`: a known customer (not the
/// operator) owning at least one service set, and valid choices.
pub fn validate(spec: &PlaneSpec, file: &SupervisorFile) -> Result<(), String> {
    if spec.customer == OPERATOR {
        return Err("the operator's default control plane is implicit; virtual control planes belong to customers".into());
    }
    if !file
        .customers
        .iter()
        .any(|c| c.id.get_ref() == &spec.customer)
    {
        return Err(format!("unknown customer {:?}", spec.customer));
    }
    if !file
        .service_sets
        .iter()
        .any(|s| s.customer.get_ref() == &spec.customer)
    {
        return Err(format!(
            "customer {:?} owns no service set: a control plane would have nothing to control",
            spec.customer
        ));
    }
    if let Some((_, message)) =
        crate::config::overlapping_members(&file.service_sets, Some(&spec.customer))
    {
        return Err(message);
    }
    for (kind, c) in &spec.modules {
        check_choice(file, &spec.customer, *kind, c.mode, c.module.as_deref())?;
    }
    Ok(())
}

impl From<&crate::config::ControlPlaneConfig> for PlaneSpec {
    fn from(c: &crate::config::ControlPlaneConfig) -> Self {
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
