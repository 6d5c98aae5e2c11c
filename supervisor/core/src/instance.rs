//! A module instance as the round sees it: one module serving one control
//! plane, with its limits and request counters. How the supervisor talks
//! to the module (an inbox, a QUIC session) is the shell's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vcp_common::module::{Kind, ModuleSpec};

use crate::constraints::ModuleLimits;
use crate::plane::ControlPlane;
use crate::stats::ModuleStats;
use crate::{module_key, ModuleKey};

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// One module serving one control plane.
pub struct Instance {
    /// Unique per instance, also across reconnects of a remote module.
    pub uid: u64,
    /// Reputation and contribution key: `<control plane>/<module id>`.
    pub key: ModuleKey,
    /// The module id and its control plane's id, shared by decisions.
    pub name: Arc<str>,
    pub plane_id: Arc<str>,
    pub spec: ModuleSpec,
    pub plane: Arc<ControlPlane>,
    /// The operator's built-in module for its kind.
    pub is_default: bool,
    pub remote: bool,
    /// Runs in the shadow: solicited like the others, its requests never
    /// take effect but are kept as what it would have done (the baseline
    /// of cost-benefit contracts measured against the default module).
    pub shadow: bool,
    pub limits: ModuleLimits,
    pub stats: Arc<ModuleStats>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.spec.id)
            .field("plane", &self.plane.id)
            .finish()
    }
}

impl Instance {
    /// A new instance; `stats` carries over from an earlier session of the
    /// same module, if any.
    pub fn new(
        spec: ModuleSpec,
        plane: Arc<ControlPlane>,
        is_default: bool,
        remote: bool,
        limits: ModuleLimits,
        stats: Option<Arc<ModuleStats>>,
    ) -> Instance {
        let stats = stats.unwrap_or_else(|| Arc::new(ModuleStats::new(&spec.outputs)));
        Instance {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            key: module_key(&plane.id, &spec.id),
            name: Arc::from(spec.id.as_str()),
            plane_id: Arc::from(plane.id.as_str()),
            spec,
            plane,
            is_default,
            remote,
            shadow: false,
            limits,
            stats,
        }
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind
    }
}
