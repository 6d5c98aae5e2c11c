//! Request statistics per module instance — i.e. per (module, control
//! plane, customer, kind) — and per parameter: requests, late, rejected,
//! clipped, bytes. Atomics only: written on the round's path, read by
//! reports and (later) by the cost ledger.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use vcp_common::module::Kind;

/// Bucket for requests of parameters the module did not declare.
pub const UNDECLARED: &str = "(undeclared)";

/// One parameter's request counters. `requests` counts every request of
/// every answer; `late`, `rejected` and `clipped` are disjoint subsets of
/// it (`over_quota` a subset of `rejected`), and so are the bytes of the
/// requests in them (`fault_bytes`). Those are the module's own doing and
/// are charged to its vendor; the rest — admitted as asked, on time and
/// within the quota — is what the customer may be billed for.
#[derive(Debug, Default)]
pub struct ParamCounters {
    pub requests: AtomicU64,
    pub late: AtomicU64,
    pub rejected: AtomicU64,
    pub over_quota: AtomicU64,
    pub clipped: AtomicU64,
    pub bytes: AtomicU64,
    pub fault_bytes: AtomicU64,
}

#[derive(Debug, Default)]
pub struct ModuleStats {
    pub solicitations: AtomicU64,
    /// Answers that arrived before the deadline.
    pub responses: AtomicU64,
    /// Rounds the module did not answer in time (late, hung, or still busy).
    pub deadline_misses: AtomicU64,
    /// Rounds skipped because the module was still busy with an older one.
    pub busy: AtomicU64,
    /// Panics, errors and disconnects.
    pub faults: AtomicU64,
    /// Sessions closed for breaking the protocol or a limit (an
    /// unsolicited answer, a frame flood); none of it is billed.
    pub protocol_errors: AtomicU64,
    /// Supervisor CPU time spent admitting and mediating this module's
    /// requests (ns), measured on the round's path.
    pub cpu_ns: AtomicU64,
    /// Why the module's last request was clipped or rejected.
    pub last_violation: arc_swap::ArcSwapOption<String>,
    /// The module's last fault.
    pub last_fault: arc_swap::ArcSwapOption<String>,
    params: Vec<(String, ParamCounters)>,
}

/// A copy of one parameter's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ParamSummary {
    pub parameter: String,
    pub requests: u64,
    /// Requests per second over the module's life (set by reports).
    pub rate_per_second: f64,
    pub late: u64,
    pub rejected: u64,
    pub over_quota: u64,
    pub clipped: u64,
    pub bytes: u64,
    pub fault_bytes: u64,
}

/// A module instance's counters as numbers, to keep across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsState {
    pub solicitations: u64,
    pub responses: u64,
    pub deadline_misses: u64,
    pub busy: u64,
    pub faults: u64,
    pub protocol_errors: u64,
    pub cpu_ns: u64,
    /// Per parameter: requests, late, rejected, over quota, clipped,
    /// bytes, fault bytes.
    pub params: Vec<(String, [u64; 7])>,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl ModuleStats {
    /// Counters for the declared output parameters (plus the undeclared
    /// bucket), allocated once so that the round never allocates for them.
    pub fn new(outputs: &[String]) -> Self {
        let mut params: Vec<_> = outputs
            .iter()
            .map(|p| (p.clone(), ParamCounters::default()))
            .collect();
        params.push((UNDECLARED.to_owned(), ParamCounters::default()));
        ModuleStats {
            params,
            ..Default::default()
        }
    }

    /// Counters of `parameter`, or of the undeclared bucket; `false` means
    /// the parameter was not declared.
    pub fn param(&self, parameter: &str) -> (&ParamCounters, bool) {
        let slot = self.slot(parameter);
        (&self.params[slot].1, slot + 1 < self.params.len())
    }

    /// Number of counter slots (declared parameters and the undeclared one).
    pub fn slots(&self) -> usize {
        self.params.len()
    }

    /// The slot of `parameter`'s counters: its own when declared, the
    /// undeclared bucket (the last slot) otherwise.
    pub fn slot(&self, parameter: &str) -> usize {
        let last = self.params.len() - 1;
        if parameter == UNDECLARED {
            return last;
        }
        self.params[..last]
            .iter()
            .position(|(p, _)| p == parameter)
            .unwrap_or(last)
    }

    /// The counters in `slot` (see [`ModuleStats::slot`]).
    pub fn at(&self, slot: usize) -> &ParamCounters {
        &self.params[slot.min(self.params.len() - 1)].1
    }

    /// The counters now.
    pub fn state(&self) -> StatsState {
        StatsState {
            solicitations: get(&self.solicitations),
            responses: get(&self.responses),
            deadline_misses: get(&self.deadline_misses),
            busy: get(&self.busy),
            faults: get(&self.faults),
            protocol_errors: get(&self.protocol_errors),
            cpu_ns: get(&self.cpu_ns),
            params: self
                .params
                .iter()
                .map(|(p, c)| {
                    let n = [
                        &c.requests,
                        &c.late,
                        &c.rejected,
                        &c.over_quota,
                        &c.clipped,
                        &c.bytes,
                        &c.fault_bytes,
                    ]
                    .map(get);
                    (p.clone(), n)
                })
                .collect(),
        }
    }

    /// Counters that start from `s` (its parameters are the declared ones).
    pub fn restore(s: &StatsState) -> Self {
        let outputs: Vec<String> = s
            .params
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| p != UNDECLARED)
            .collect();
        let stats = ModuleStats::new(&outputs);
        for (a, v) in [
            (&stats.solicitations, s.solicitations),
            (&stats.responses, s.responses),
            (&stats.deadline_misses, s.deadline_misses),
            (&stats.busy, s.busy),
            (&stats.faults, s.faults),
            (&stats.protocol_errors, s.protocol_errors),
            (&stats.cpu_ns, s.cpu_ns),
        ] {
            a.store(v, Ordering::Relaxed);
        }
        for (p, n) in &s.params {
            let c = stats.at(stats.slot(p));
            for (a, v) in [
                &c.requests,
                &c.late,
                &c.rejected,
                &c.over_quota,
                &c.clipped,
                &c.bytes,
                &c.fault_bytes,
            ]
            .into_iter()
            .zip(n)
            {
                a.store(*v, Ordering::Relaxed);
            }
        }
        stats
    }

    /// Counts an answer that arrived after its round closed: its requests
    /// are still counted, all as late (charged to the vendor).
    pub fn record_late(&self, proposals: &[vcp_common::module::Proposal]) {
        for p in proposals {
            let (c, _) = self.param(&p.parameter);
            let size = p.wire_size() as u64;
            bump(&c.requests, 1);
            bump(&c.late, 1);
            bump(&c.bytes, size);
            bump(&c.fault_bytes, size);
        }
    }

    pub fn params(&self) -> Vec<ParamSummary> {
        self.params
            .iter()
            .map(|(p, c)| ParamSummary {
                parameter: p.clone(),
                requests: get(&c.requests),
                rate_per_second: 0.0,
                late: get(&c.late),
                rejected: get(&c.rejected),
                over_quota: get(&c.over_quota),
                clipped: get(&c.clipped),
                bytes: get(&c.bytes),
                fault_bytes: get(&c.fault_bytes),
            })
            .filter(|s| s.requests > 0 || s.parameter != UNDECLARED)
            .collect()
    }

    /// Sum over parameters.
    pub fn totals(&self) -> ParamSummary {
        self.params()
            .into_iter()
            .fold(ParamSummary::default(), |mut t, p| {
                t.requests += p.requests;
                t.late += p.late;
                t.rejected += p.rejected;
                t.over_quota += p.over_quota;
                t.clipped += p.clipped;
                t.bytes += p.bytes;
                t.fault_bytes += p.fault_bytes;
                t
            })
    }
}

/// One module's request statistics, for reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleSummary {
    pub id: String,
    pub kind: Kind,
    pub control_plane: String,
    pub customer: String,
    /// The custom module's vendor; `None` for the operator's modules.
    pub vendor: Option<String>,
    pub remote: bool,
    /// A default module running in the shadow (never in force, never billed).
    pub shadow: bool,
    pub connected: bool,
    pub solicitations: u64,
    pub responses: u64,
    pub deadline_misses: u64,
    pub busy: u64,
    pub faults: u64,
    pub requests: u64,
    /// Requests per second since the module was first registered.
    pub rate_per_second: f64,
    pub late: u64,
    pub rejected: u64,
    /// Rejected for being past the quota per round.
    pub over_quota: u64,
    pub clipped: u64,
    pub bytes: u64,
    /// Sessions closed for breaking the protocol or a limit.
    pub protocol_errors: u64,
    /// Supervisor CPU spent on the module's requests (ns).
    pub cpu_ns: u64,
    pub parameters: Vec<ParamSummary>,
    pub last_violation: Option<String>,
    pub last_fault: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::module::{Proposal, Target};

    #[test]
    fn undeclared_parameters_get_their_own_bucket_and_late_counts() {
        let s = ModuleStats::new(&["instances".into()]);
        assert!(s.param("instances").1);
        assert!(!s.param("weights").1);
        assert!(!s.param(UNDECLARED).1);
        let p = Proposal {
            target: Target::ServiceSet("web".into()),
            parameter: "instances".into(),
            value: 3.0,
        };
        s.record_late(&[p.clone(), p.clone()]);
        let t = s.totals();
        assert_eq!(
            (t.requests, t.late, t.bytes, t.fault_bytes),
            (2, 2, 2 * p.wire_size() as u64, 2 * p.wire_size() as u64)
        );
        assert_eq!(s.params().len(), 1, "empty undeclared bucket hidden");
        s.busy.store(3, Ordering::Relaxed);
        let again = ModuleStats::restore(&s.state());
        assert_eq!(again.state(), s.state());
        assert_eq!(again.totals(), s.totals());
    }
}
