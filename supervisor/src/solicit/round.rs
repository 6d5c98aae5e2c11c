//! Admission of one module's answer into a round: each proposal is checked
//! against the module's declared outputs, its control plane's scope, the
//! module's quota and rate, and the parameter constraints; the outcome is
//! counted in the module's request statistics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::debug;
use vcp_common::module::{Proposal, Target};

use crate::modules::stats::ParamCounters;

use crate::modules::instance::ModuleInstance;
use crate::settings::SettingsMap;
use crate::solicit::constraints::{Constraints, RateLimiter, Verdict};

/// A request that passed admission.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub slot: usize,
    pub target: Target,
    pub parameter: String,
    pub value: f64,
    /// Grouping key set by the mediator: (parameter ordinal, target hash).
    pub group: (u32, u64),
}

/// What the caller needs besides the accepted requests.
pub struct Admission<'a> {
    pub constraints: &'a Constraints,
    pub limiter: &'a mut RateLimiter,
    pub settings: &'a SettingsMap,
    pub now_ms: i64,
}

fn add(a: &AtomicU64, n: u64) {
    if n > 0 {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

fn record_violation(m: &ModuleInstance, what: &str, p: &Proposal, why: &str) {
    let reason = format!("{what} {} of {}: {why}", p.parameter, p.target);
    debug!(module = %m.id(), %reason, "request {what}");
    m.stats.last_violation.store(Some(Arc::new(reason)));
}

/// Admits `proposals` of the module in `slot`, appending accepted requests
/// to `out`. Counters are added once per run of one parameter, not per
/// request.
pub fn admit(
    slot: usize,
    m: &ModuleInstance,
    proposals: Vec<Proposal>,
    a: &mut Admission<'_>,
    out: &mut Vec<Request>,
) {
    let quota = (m.limits.max_requests_per_round as usize).min(proposals.len());
    let granted = a.limiter.take(m.uid, &m.limits, a.now_ms, quota);
    // Pending counts for the current parameter run: requests, bytes,
    // rejected, clipped.
    let mut run: Option<(&ParamCounters, [u64; 4])> = None;
    let flush = |run: &mut Option<(&ParamCounters, [u64; 4])>| {
        if let Some((c, [req, bytes, rej, clip])) = run.take() {
            add(&c.requests, req);
            add(&c.bytes, bytes);
            add(&c.rejected, rej);
            add(&c.clipped, clip);
        }
    };
    for (i, p) in proposals.into_iter().enumerate() {
        let (counters, declared) = m.stats.param(&p.parameter);
        if !run
            .as_ref()
            .is_some_and(|(c, _)| std::ptr::eq(*c, counters))
        {
            flush(&mut run);
            run = Some((counters, [0; 4]));
        }
        let Some((_, n)) = run.as_mut() else { continue };
        n[0] += 1;
        n[1] += p.wire_size() as u64;
        let why = if !declared {
            Some("parameter not declared in the module's outputs")
        } else if !m.plane.scope.covers(&p.target) {
            Some("target outside the control plane's resources")
        } else if i >= quota {
            Some("over the module's quota of requests per round")
        } else if i >= granted {
            Some("over the module's request rate")
        } else {
            None
        };
        if let Some(why) = why {
            n[2] += 1;
            record_violation(m, "rejected", &p, why);
            continue;
        }
        let settings = a.settings;
        let current = || settings.get(&p.target, &p.parameter).map(|d| d.value);
        let value = match a.constraints.check(&p.parameter, p.value, current) {
            Verdict::Accept(v) => v,
            Verdict::Clip { value, reason } => {
                n[3] += 1;
                record_violation(m, "clipped", &p, &reason);
                value
            }
            Verdict::Reject(reason) => {
                n[2] += 1;
                record_violation(m, "rejected", &p, &reason);
                continue;
            }
        };
        out.push(Request {
            slot,
            target: p.target,
            parameter: p.parameter,
            value,
            group: (0, 0),
        });
    }
    flush(&mut run);
}
