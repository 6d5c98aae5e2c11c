//! Admission of one module's answer into a round: each proposal is checked
//! against the module's quota, its declared outputs, its control plane's
//! scope, the module's rate, and the parameter constraints; the outcome is
//! counted in the module's request statistics. Proposals past the quota
//! are only counted (over quota, the vendor's): an answer of any size costs
//! the round a count per proposal and no more.

pub mod intern;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::debug;
use vcp_common::module::Proposal;

use crate::stats::ParamCounters;

use crate::admission::intern::Interner;
use crate::constraints::{Constraints, RateLimiter, Rule, Verdict};
use crate::instance::Instance;
use crate::settings::{ParamSettings, SettingsMap};

/// A request that passed admission. Its parameter and target are ids in
/// the round's [`Interner`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    pub slot: usize,
    /// The parameter's ordinal.
    pub param: u32,
    /// The target's id.
    pub target: u32,
    pub value: f64,
}

/// What the caller needs besides the accepted requests.
pub struct Admission<'a> {
    pub constraints: &'a Constraints,
    pub limiter: &'a mut RateLimiter,
    pub settings: &'a SettingsMap,
    pub interner: &'a mut Interner,
    pub now_ms: i64,
}

fn add(a: &AtomicU64, n: u64) {
    if n > 0 {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

fn record_violation(m: &Instance, what: &str, p: &Proposal, why: &str) {
    let reason = format!("{what} {} of {}: {why}", p.parameter, p.target);
    debug!(module = %m.id(), %reason, "request {what}");
    m.stats.last_violation.store(Some(Arc::new(reason)));
}

/// Counters and rules of the current run of one parameter.
struct Run<'a> {
    parameter: String,
    counters: &'a ParamCounters,
    declared: bool,
    rule: Rule<'a>,
    /// The parameter's ordinal (when declared).
    ordinal: u32,
    current: ParamSettings<'a>,
    n: RunCounts,
}

/// Counts of one run of one parameter, added to its counters at once.
#[derive(Default)]
struct RunCounts {
    requests: u64,
    bytes: u64,
    rejected: u64,
    clipped: u64,
    fault_bytes: u64,
}

/// Counts the proposals past the quota per parameter and drops them: they
/// are rejected, charged to the vendor, and never examined, so an answer of
/// any size costs the round one pass of counting and no more.
fn over_quota(m: &Instance, proposals: &mut Vec<Proposal>, quota: usize) {
    let Some(first) = proposals.get(quota) else {
        return;
    };
    record_violation(
        m,
        "rejected",
        first,
        &format!(
            "{} requests over the module's quota of {quota} per round",
            proposals.len() - quota
        ),
    );
    // (requests, bytes) per parameter slot of the module's counters.
    let mut counts = vec![(0u64, 0u64); m.stats.slots()];
    for p in &proposals[quota..] {
        let c = &mut counts[m.stats.slot(&p.parameter)];
        c.0 += 1;
        c.1 += p.wire_size() as u64;
    }
    for (slot, (n, bytes)) in counts.into_iter().enumerate() {
        let c = m.stats.at(slot);
        add(&c.requests, n);
        add(&c.rejected, n);
        add(&c.over_quota, n);
        add(&c.bytes, bytes);
        add(&c.fault_bytes, bytes);
    }
    proposals.truncate(quota);
}

/// Admits `proposals` of the module in `slot`, appending accepted requests
/// to `out`. Counters are added once per run of one parameter, not per
/// request.
pub fn admit(
    slot: usize,
    m: &Instance,
    mut proposals: Vec<Proposal>,
    a: &mut Admission<'_>,
    out: &mut Vec<Request>,
) {
    let quota = (m.limits.max_requests_per_round as usize).min(proposals.len());
    let granted = a.limiter.take(&m.key, &m.limits, a.now_ms, quota);
    let (constraints, settings) = (a.constraints, a.settings);
    let scope = &*m.plane.scope;
    let bit = a.interner.scope_bit(&m.plane.scope);
    // Answers usually repeat one parameter: what depends on it is looked
    // up once per run of equal parameters.
    let mut run: Option<Run<'_>> = None;
    let flush = |run: &mut Option<Run<'_>>| {
        if let Some(r) = run.take() {
            let (c, n) = (r.counters, r.n);
            add(&c.requests, n.requests);
            add(&c.bytes, n.bytes);
            add(&c.rejected, n.rejected);
            add(&c.clipped, n.clipped);
            add(&c.fault_bytes, n.fault_bytes);
        }
    };
    over_quota(m, &mut proposals, quota);
    for (i, p) in proposals.drain(..).enumerate() {
        if run.as_ref().is_none_or(|r| r.parameter != p.parameter) {
            flush(&mut run);
            let (counters, declared) = m.stats.param(&p.parameter);
            run = Some(Run {
                parameter: p.parameter.clone(),
                counters,
                declared,
                rule: constraints.rule(&p.parameter),
                ordinal: if declared {
                    a.interner.param(&p.parameter)
                } else {
                    0
                },
                current: settings.of(&p.parameter),
                n: RunCounts::default(),
            });
        }
        let Some(Run {
            declared,
            rule,
            ordinal,
            current,
            n,
            ..
        }) = run.as_mut()
        else {
            continue;
        };
        let declared = *declared;
        let size = p.wire_size() as u64;
        n.requests += 1;
        n.bytes += size;
        // Targets seen before are checked against the scope once.
        let found = if declared {
            a.interner.find_at(slot, i, &p.target)
        } else {
            None
        };
        let why = if !declared {
            Some("parameter not declared in the module's outputs")
        } else if !match found {
            Some(id) => a.interner.covered(id, scope, bit),
            None => scope.covers(&p.target),
        } {
            Some("target outside the control plane's resources")
        } else if i >= granted {
            Some("over the module's request rate")
        } else {
            None
        };
        if let Some(why) = why {
            n.rejected += 1;
            n.fault_bytes += size;
            record_violation(m, "rejected", &p, why);
            continue;
        }
        let in_force = || current.get(&p.target).map(|d| d.value);
        let value = match rule.check(&p.parameter, p.value, in_force) {
            Verdict::Accept(v) => v,
            Verdict::Clip { value, reason } => {
                n.clipped += 1;
                n.fault_bytes += size;
                record_violation(m, "clipped", &p, &reason);
                value
            }
            Verdict::Reject(reason) => {
                n.rejected += 1;
                n.fault_bytes += size;
                record_violation(m, "rejected", &p, &reason);
                continue;
            }
        };
        let target = match found {
            Some(id) => {
                a.interner.hold(id, p.target);
                id
            }
            None => {
                let id = a.interner.intern(p.target);
                a.interner.set_covered(id, bit);
                a.interner.hint(slot, i, id);
                id
            }
        };
        a.interner.spend(p.parameter);
        out.push(Request {
            slot,
            param: *ordinal,
            target,
            value,
        });
    }
    flush(&mut run);
    a.interner.spend_buffer(proposals);
}
