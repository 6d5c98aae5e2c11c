//! Provisioning of virtual control planes at run time: what a customer
//! asks for (a [`PlaneSpec`]), its validation against the configuration,
//! the workflow templates and tasks that bring it into force, and the
//! durable record of provisioned planes.

use vcp_core::plane::{PlaneSpec, OPERATOR};

use crate::config::SupervisorFile;

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
        crate::config::check_choice(file, &spec.customer, *kind, c.mode, c.module.as_deref())?;
    }
    Ok(())
}
