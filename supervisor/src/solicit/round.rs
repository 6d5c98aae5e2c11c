//! Admission of one module's answer into a round: each proposal is checked
//! against the module's declared outputs, its control plane's scope, the
//! module's quota and rate, and the parameter constraints; the outcome is
//! counted in the module's request statistics.

use tracing::debug;
use vcp_common::module::{Proposal, Target};

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
}

/// What the caller needs besides the accepted requests.
pub struct Admission<'a> {
    pub constraints: &'a Constraints,
    pub limiter: &'a mut RateLimiter,
    pub settings: &'a SettingsMap,
    pub now_ms: i64,
}

fn bump(a: &std::sync::atomic::AtomicU64) {
    a.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Admits `proposals` of the module in `slot`, appending accepted requests
/// to `out`.
pub fn admit(
    slot: usize,
    m: &ModuleInstance,
    proposals: Vec<Proposal>,
    a: &mut Admission<'_>,
    out: &mut Vec<Request>,
) {
    for (i, p) in proposals.into_iter().enumerate() {
        let (counters, declared) = m.stats.param(&p.parameter);
        bump(&counters.requests);
        counters
            .bytes
            .fetch_add(p.wire_size() as u64, std::sync::atomic::Ordering::Relaxed);
        let reject = |why: &str| {
            bump(&counters.rejected);
            let reason = format!("rejected {} of {}: {why}", p.parameter, p.target);
            debug!(module = %m.id(), %reason, "request rejected");
            m.stats
                .last_violation
                .store(Some(std::sync::Arc::new(reason)));
        };
        if !declared {
            reject("parameter not declared in the module's outputs");
            continue;
        }
        if !m.plane.scope.covers(&p.target) {
            reject("target outside the control plane's resources");
            continue;
        }
        if i >= m.limits.max_requests_per_round as usize {
            reject("over the module's quota of requests per round");
            continue;
        }
        if !a.limiter.admit(m.uid, &m.limits, a.now_ms) {
            reject("over the module's request rate");
            continue;
        }
        let current = a
            .settings
            .get(&(p.target.clone(), p.parameter.clone()))
            .map(|d| d.value);
        let value = match a.constraints.check(&p.parameter, p.value, current) {
            Verdict::Accept(v) => v,
            Verdict::Clip { value, reason } => {
                bump(&counters.clipped);
                let reason = format!("clipped {} of {}: {reason}", p.parameter, p.target);
                debug!(module = %m.id(), %reason, "request clipped");
                m.stats
                    .last_violation
                    .store(Some(std::sync::Arc::new(reason)));
                value
            }
            Verdict::Reject(reason) => {
                reject(&reason);
                continue;
            }
        };
        out.push(Request {
            slot,
            target: p.target,
            parameter: p.parameter,
            value,
        });
    }
}
