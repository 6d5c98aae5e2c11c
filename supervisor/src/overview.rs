//! What the HTTP side (API, dashboard, `/metrics`) may see of the running
//! supervisor, and the one thing it may send: a customer's rating, to the
//! judge. Through it nothing can bring a plane into force or out of it,
//! register a module or stop a task; provisioning goes through the
//! workflow engine and its `PlaneHost`.

use std::sync::Arc;

use vcp_common::module::Kind;

use crate::config::SupervisorFile;
use crate::control::Control;
use crate::dispatch::DispatchHandle;
use crate::fleet::Fleet;
use crate::judge::JudgeHandle;
use crate::solicit::KindStats;
use vcp_core::mediation::PolicyCounts;
use vcp_core::plane::{ControlPlane, PlaneSpec};
use vcp_core::settings::Settings;
use vcp_core::stats::{ModuleStats, ModuleSummary};

pub trait Overview: Send + Sync + 'static {
    /// The configuration the supervisor runs.
    fn file(&self) -> &SupervisorFile;
    /// Agents, their counters and the fleet view.
    fn fleet(&self) -> &Fleet;
    /// The decisions in force.
    fn settings(&self) -> &Settings;
    /// The judge's report, and where ratings go.
    fn judge(&self) -> &JudgeHandle;
    /// Delivery counts.
    fn dispatch(&self) -> &DispatchHandle;
    /// Decisions per mediation policy.
    fn policy_counts(&self) -> &PolicyCounts;
    /// Every kind's round counters.
    fn kinds(&self) -> &[(Kind, Arc<KindStats>)];
    /// The control planes in force, default first.
    fn planes(&self) -> Arc<Vec<Arc<ControlPlane>>>;
    fn plane(&self, id: &str) -> Option<Arc<ControlPlane>>;
    /// The provisioned plane of `customer`, if in force.
    fn provisioned(&self, customer: &str) -> Option<PlaneSpec>;
    /// Every module instance's counters, live and retired.
    fn modules(&self) -> Vec<ModuleSummary>;
    /// The counters of module `id` in plane `plane`, if it ever served it.
    fn known_stats(&self, id: &str, plane: &str) -> Option<Arc<ModuleStats>>;
}

impl Overview for Control {
    fn file(&self) -> &SupervisorFile {
        &self.file
    }
    fn fleet(&self) -> &Fleet {
        &self.fleet
    }
    fn settings(&self) -> &Settings {
        &self.settings
    }
    fn judge(&self) -> &JudgeHandle {
        &self.judge
    }
    fn dispatch(&self) -> &DispatchHandle {
        &self.dispatch
    }
    fn policy_counts(&self) -> &PolicyCounts {
        &self.policy_counts
    }
    fn kinds(&self) -> &[(Kind, Arc<KindStats>)] {
        &self.kinds
    }
    fn planes(&self) -> Arc<Vec<Arc<ControlPlane>>> {
        Control::planes(self)
    }
    fn plane(&self, id: &str) -> Option<Arc<ControlPlane>> {
        Control::plane(self, id)
    }
    fn provisioned(&self, customer: &str) -> Option<PlaneSpec> {
        Control::provisioned(self, customer)
    }
    fn modules(&self) -> Vec<ModuleSummary> {
        Control::modules(self)
    }
    fn known_stats(&self, id: &str, plane: &str) -> Option<Arc<ModuleStats>> {
        Control::known_stats(self, id, plane)
    }
}
