//! The provisioning workflows: templates and what their tasks do.
//!
//! `provision`: validate → authorise → {register_modules ∥ subscribe_sensors}
//! → activate. `deprovision`: deactivate → unregister_modules. Every task is
//! idempotent (a task a crash interrupted runs again) and has an undo, so
//! a failed workflow rolls back to where it started.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::SupervisorFile;
use crate::workflow::{Actions, BoxFuture, TaskDef, Template, WorkflowInfo};
use vcp_core::plane::virtual_plane_id;
use vcp_core::plane::OPERATOR as OPERATOR_ACCOUNT;
use vcp_core::plane::{ControlPlane, PlaneSpec};
use vcp_store::planes::{PlaneState, PlaneStore};

pub static PROVISION: Template = Template {
    name: "provision",
    tasks: &[
        TaskDef {
            name: "validate",
            after: &[],
        },
        TaskDef {
            name: "authorise",
            after: &["validate"],
        },
        TaskDef {
            name: "register_modules",
            after: &["authorise"],
        },
        TaskDef {
            name: "subscribe_sensors",
            after: &["authorise"],
        },
        TaskDef {
            name: "activate",
            after: &["register_modules", "subscribe_sensors"],
        },
    ],
};

pub static DEPROVISION: Template = Template {
    name: "deprovision",
    tasks: &[
        TaskDef {
            name: "deactivate",
            after: &[],
        },
        TaskDef {
            name: "unregister_modules",
            after: &["deactivate"],
        },
    ],
};

/// What provisioning needs of the supervisor: the configuration, the
/// planes in force, bringing a plane into and out of force, and whether a
/// host's agent ever reported.
pub trait PlaneHost: Send + Sync {
    fn file(&self) -> &SupervisorFile;
    fn plane(&self, id: &str) -> Option<Arc<ControlPlane>>;
    /// The spec of the plane `customer` provisioned, if in force.
    fn provisioned(&self, customer: &str) -> Option<PlaneSpec>;
    fn activate(&self, spec: PlaneSpec) -> Result<Arc<ControlPlane>, String>;
    fn deactivate(&self, customer: &str);
    fn knows_host(&self, host: &str) -> bool;
}

/// Runs the provisioning tasks against the live control planes.
pub struct Provisioner {
    pub control: Arc<dyn PlaneHost>,
    pub store: Arc<PlaneStore>,
    /// For tests: a task of this name never finishes (as if the supervisor
    /// died while running it).
    pub hold: Option<String>,
}

/// What a provisioning workflow carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    pub spec: PlaneSpec,
    /// For `deprovision`: the workflow that provisioned the plane to
    /// remove (a plane provisioned again since is left alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_by: Option<String>,
}

impl Provisioner {
    fn step(&self, wf: &WorkflowInfo, task: &str, undo: bool) -> Result<(), String> {
        let Payload {
            spec,
            provisioned_by,
        } = serde_json::from_value(wf.payload.clone())
            .map_err(|e| format!("bad workflow payload: {e}"))?;
        let customer = spec.customer.as_str();
        // The workflow the plane's record belongs to.
        let record_of = provisioned_by.as_deref().unwrap_or(&wf.id);
        let store_err = |e: vcp_store::StoreError| e.to_string();
        let ours = || -> Result<bool, String> {
            Ok(self
                .store
                .get(customer)
                .map_err(store_err)?
                .is_some_and(|r| r.workflow == record_of))
        };
        match (task, undo) {
            ("validate", false) => crate::provision::validate(&spec, self.control.file()),
            ("authorise", false) => {
                if wf.owner != customer && wf.owner != OPERATOR_ACCOUNT {
                    return Err(format!(
                        "account {:?} may not provision a control plane for {customer:?}",
                        wf.owner
                    ));
                }
                let id = virtual_plane_id(customer);
                match self.control.plane(&id) {
                    Some(p) if !p.provisioned => Err(format!(
                        "customer {customer:?} has control plane {id:?} from the configuration file"
                    )),
                    Some(_) if self.control.provisioned(customer).as_ref() != Some(&spec) => Err(
                        format!("customer {customer:?} already has control plane {id:?}"),
                    ),
                    _ => Ok(()),
                }
            }
            ("register_modules", false) | ("unregister_modules", true) => {
                for m in spec.custom_modules() {
                    if self.control.file().custom(m).is_none() {
                        return Err(format!("module {m:?} is no longer configured"));
                    }
                }
                self.store.register(&spec, record_of)
            }
            ("register_modules", true) | ("unregister_modules", false) => {
                if ours()? {
                    self.store.remove(customer).map_err(store_err)?;
                }
                Ok(())
            }
            ("subscribe_sensors", false) => self.subscribe(&spec),
            ("activate", false) | ("deactivate", true) => {
                self.control.activate(spec.clone())?;
                self.store
                    .set_state(customer, PlaneState::Active)
                    .map_err(store_err)
            }
            ("activate", true) | ("deactivate", false) => {
                if task == "deactivate" {
                    if self.control.provisioned(customer).is_none() {
                        if let Some(p) = self.control.plane(&virtual_plane_id(customer)) {
                            return Err(format!(
                                "control plane {:?} comes from the configuration file; remove it there",
                                p.id
                            ));
                        }
                    }
                    if let Some(r) = self.store.get(customer).map_err(store_err)? {
                        if r.workflow != record_of {
                            return Err(format!(
                                "the control plane was provisioned again by {} since its removal was asked",
                                r.workflow
                            ));
                        }
                    }
                }
                self.control.deactivate(customer);
                self.store
                    .set_state(customer, PlaneState::Registered)
                    .map_err(store_err)
            }
            // Checks and subscriptions leave nothing to undo.
            (_, true) => Ok(()),
            (other, false) => Err(format!("unknown task {other:?}")),
        }
    }

    /// Every host of the customer's service sets must have an agent that
    /// reported: that is where the plane's sensors come from.
    fn subscribe(&self, spec: &PlaneSpec) -> Result<(), String> {
        for set in self
            .control
            .file()
            .service_sets
            .iter()
            .filter(|s| s.customer.get_ref() == &spec.customer)
        {
            for m in &set.members {
                if !self.control.knows_host(&m.host) {
                    return Err(format!(
                        "host {:?} of service set {:?} has no agent that ever reported: no sensors to subscribe",
                        m.host,
                        set.id.get_ref()
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Actions for Provisioner {
    fn run(&self, wf: &WorkflowInfo, task: &str) -> BoxFuture<'static, Result<(), String>> {
        if self.hold.as_deref() == Some(task) {
            return Box::pin(std::future::pending());
        }
        let r = self.step(wf, task, false);
        Box::pin(std::future::ready(r))
    }

    fn undo(&self, wf: &WorkflowInfo, task: &str) -> BoxFuture<'static, Result<(), String>> {
        let r = self.step(wf, task, true);
        Box::pin(std::future::ready(r))
    }
}
