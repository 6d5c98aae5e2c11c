//! What the control hub counts: every module instance's statistics, for
//! reports, the biller and checkpoints, and their restoration after a
//! restart.

use std::sync::Arc;

use vcp_core::plane::ControlPlane;
use vcp_core::stats::{ModuleStats, ModuleSummary, ParamSummary};

use super::{Control, Known};
use crate::biller;
use crate::checkpoint;
use crate::solicit::KindSummary;

/// The module instances an earlier run counted, in the planes still in
/// force: their counters carry on when the modules come back.
pub(super) fn restore_known(
    usage: &[checkpoint::Usage],
    planes: &[Arc<ControlPlane>],
) -> Vec<Known> {
    usage
        .iter()
        .filter_map(|u| {
            let plane = planes.iter().find(|p| p.id == u.control_plane)?;
            Some(Known {
                id: u.module.clone(),
                kind: u.kind,
                plane: plane.clone(),
                remote: u.remote,
                shadow: u.shadow,
                stats: Arc::new(ModuleStats::restore(&u.stats)),
                since: std::time::Instant::now(),
            })
        })
        .collect()
}

impl Control {
    /// Every module instance's counters, for checkpoints.
    pub fn usage(&self) -> Vec<checkpoint::Usage> {
        self.lock_known()
            .iter()
            .map(|k| checkpoint::Usage {
                control_plane: k.plane.id.clone(),
                module: k.id.clone(),
                kind: k.kind,
                remote: k.remote,
                shadow: k.shadow,
                stats: k.stats.state(),
            })
            .collect()
    }

    /// Statistics of an earlier session of module `id` in `plane`.
    pub fn known_stats(&self, id: &str, plane: &str) -> Option<Arc<ModuleStats>> {
        self.lock_known()
            .iter()
            .find(|k| k.id == id && k.plane.id == plane)
            .map(|k| k.stats.clone())
    }

    /// Round counters per kind.
    pub fn rounds(&self) -> Vec<KindSummary> {
        self.kinds.iter().map(|(k, s)| s.summary(*k)).collect()
    }

    /// Request statistics of every module ever registered.
    pub fn modules(&self) -> Vec<ModuleSummary> {
        let live: Vec<_> = self
            .registry
            .all()
            .iter()
            .map(|m| (m.id().to_owned(), m.plane.id.clone()))
            .collect();
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        self.lock_known()
            .iter()
            .map(|k| {
                let s = &k.stats;
                let t = s.totals();
                let secs = k.since.elapsed().as_secs_f64().max(1e-3);
                ModuleSummary {
                    id: k.id.clone(),
                    kind: k.kind,
                    control_plane: k.plane.id.clone(),
                    customer: k.plane.customer.clone(),
                    vendor: self.custom(&k.id).map(|c| c.vendor.get_ref().clone()),
                    remote: k.remote,
                    shadow: k.shadow,
                    connected: live.iter().any(|(id, p)| *id == k.id && *p == k.plane.id),
                    solicitations: g(&s.solicitations),
                    responses: g(&s.responses),
                    deadline_misses: g(&s.deadline_misses),
                    busy: g(&s.busy),
                    faults: g(&s.faults),
                    requests: t.requests,
                    rate_per_second: t.requests as f64 / secs,
                    late: t.late,
                    rejected: t.rejected,
                    over_quota: t.over_quota,
                    clipped: t.clipped,
                    bytes: t.bytes,
                    protocol_errors: g(&s.protocol_errors),
                    cpu_ns: g(&s.cpu_ns),
                    parameters: s
                        .params()
                        .into_iter()
                        .map(|p| ParamSummary {
                            rate_per_second: p.requests as f64 / secs,
                            ..p
                        })
                        .collect(),
                    last_violation: s.last_violation.load_full().map(|v| v.to_string()),
                    last_fault: s.last_fault.load_full().map(|v| v.to_string()),
                }
            })
            .collect()
    }
}

impl biller::Counters for Control {
    fn modules(&self) -> Vec<ModuleSummary> {
        Control::modules(self)
    }

    fn usage(&self) -> Vec<checkpoint::Usage> {
        Control::usage(self)
    }

    fn planes(&self) -> Arc<Vec<Arc<ControlPlane>>> {
        Control::planes(self)
    }
}
