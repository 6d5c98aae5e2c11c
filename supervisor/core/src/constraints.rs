//! Constraints on requests: per parameter, bounds and a largest step per
//! round from the value in force; per module, a request rate (token bucket)
//! and a quota per answer. A violating request is clipped or rejected as
//! configured, with the reason. Pure: time comes in as an argument.

use rustc_hash::FxHashMap as HashMap;

use vcp_common::module::param;

use serde::Deserialize;

use crate::ModuleKey;

/// What happens to a request that breaks a constraint.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnViolation {
    #[default]
    Clip,
    Reject,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamConstraint {
    pub parameter: String,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Largest change from the value in force, per round.
    #[serde(default)]
    pub max_step: Option<f64>,
    #[serde(default)]
    pub on_violation: OnViolation,
}

/// Per-module limits against floods.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModuleLimits {
    /// Sustained requests per second (token bucket, burst of one second).
    pub rate_per_second: f64,
    /// Requests accepted from one answer; the rest are rejected.
    pub max_requests_per_round: u32,
}

impl Default for ModuleLimits {
    fn default() -> Self {
        ModuleLimits {
            rate_per_second: 10_000.0,
            max_requests_per_round: 1_000,
        }
    }
}

/// The outcome of checking one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept(f64),
    Clip { value: f64, reason: String },
    Reject(String),
}

/// Parameter constraints from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    by_param: HashMap<String, ParamConstraint>,
}

impl Constraints {
    pub fn new(list: &[ParamConstraint]) -> Self {
        Constraints {
            by_param: list
                .iter()
                .map(|c| (c.parameter.clone(), c.clone()))
                .collect(),
        }
    }

    /// Checks `requested` for `parameter`; `current` gives the value in
    /// force and is only called when a step constraint needs it.
    pub fn check(
        &self,
        parameter: &str,
        requested: f64,
        current: impl FnOnce() -> Option<f64>,
    ) -> Verdict {
        self.rule(parameter).check(parameter, requested, current)
    }

    /// What applies to `parameter`, looked up once for a run of requests.
    pub fn rule(&self, parameter: &str) -> Rule<'_> {
        Rule {
            integer: param::is_integer(parameter),
            constraint: self.by_param.get(parameter),
        }
    }
}

/// The constraint of one parameter, resolved.
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    integer: bool,
    constraint: Option<&'a ParamConstraint>,
}

impl Rule<'_> {
    pub fn check(
        &self,
        parameter: &str,
        requested: f64,
        current: impl FnOnce() -> Option<f64>,
    ) -> Verdict {
        if !requested.is_finite() {
            return Verdict::Reject(format!("{parameter}: {requested} is not a finite number"));
        }
        let requested = if self.integer {
            requested.round()
        } else {
            requested
        };
        let Some(c) = self.constraint else {
            return Verdict::Accept(requested);
        };
        // Most requests pass: the reasons are only written for those that
        // do not.
        let below = c.min.filter(|m| requested < *m);
        let mut value = below.unwrap_or(requested);
        let above = c.max.filter(|m| value > *m);
        if let Some(max) = above {
            value = max;
        }
        let step = match (c.max_step, c.max_step.and_then(|_| current())) {
            (Some(step), Some(cur)) if (value - cur).abs() > step => Some((step, cur, value)),
            _ => None,
        };
        if let Some((step, cur, from)) = step {
            value = if from > cur { cur + step } else { cur - step };
        }
        if below.is_none() && above.is_none() && step.is_none() {
            return Verdict::Accept(value);
        }
        let mut reasons = Vec::new();
        if let Some(min) = below {
            reasons.push(format!("{parameter}: {requested} below the minimum {min}"));
        }
        if let Some(max) = above {
            reasons.push(format!("{parameter}: {requested} above the maximum {max}"));
        }
        if let Some((step, cur, from)) = step {
            reasons.push(format!(
                "{parameter}: step from {cur} to {from} exceeds {step} per round"
            ));
        }
        match c.on_violation {
            OnViolation::Clip => Verdict::Clip {
                value,
                reason: reasons.join("; "),
            },
            OnViolation::Reject => Verdict::Reject(reasons.join("; ")),
        }
    }
}

/// Per-module request rate: a token bucket holding one second of requests,
/// per (control plane, module) — so a module that reconnects finds its
/// bucket as it left it.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<ModuleKey, (f64, i64)>,
}

impl RateLimiter {
    /// Takes up to `wanted` tokens for module `key` at `now_ms`; returns
    /// how many it got (the rest of its requests are over its rate).
    pub fn take(
        &mut self,
        key: &ModuleKey,
        limits: &ModuleLimits,
        now_ms: i64,
        wanted: usize,
    ) -> usize {
        let rate = limits.rate_per_second.max(0.0);
        if !self.buckets.contains_key(key) {
            self.buckets.insert(key.clone(), (rate, now_ms));
        }
        let Some((tokens, at)) = self.buckets.get_mut(key) else {
            return 0;
        };
        let elapsed = (now_ms - *at).max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * rate).min(rate);
        *at = now_ms;
        let granted = (tokens.floor() as usize).min(wanted);
        *tokens -= granted as f64;
        granted
    }

    /// Takes one token; `false` when over rate.
    pub fn admit(&mut self, key: &ModuleKey, limits: &ModuleLimits, now_ms: i64) -> bool {
        self.take(key, limits, now_ms, 1) == 1
    }

    /// Forgets modules that are gone.
    pub fn retain(&mut self, live: impl Fn(&ModuleKey) -> bool) {
        self.buckets.retain(|key, _| live(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module_key;

    fn c(on_violation: OnViolation) -> Constraints {
        Constraints::new(&[ParamConstraint {
            parameter: "instances".into(),
            min: Some(1.0),
            max: Some(10.0),
            max_step: Some(2.0),
            on_violation,
        }])
    }

    #[test]
    fn bounds_and_steps_clip_or_reject() {
        let clip = c(OnViolation::Clip);
        assert_eq!(
            clip.check("instances", 4.4, || Some(3.0)),
            Verdict::Accept(4.0)
        );
        match clip.check("instances", 50.0, || Some(9.0)) {
            Verdict::Clip { value, reason } => {
                assert_eq!(value, 10.0);
                assert!(reason.contains("above the maximum 10"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        match clip.check("instances", 9.0, || Some(3.0)) {
            Verdict::Clip { value, reason } => {
                assert_eq!(value, 5.0);
                assert!(reason.contains("exceeds 2 per round"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        assert!(
            matches!(clip.check("instances", 0.0, || Some(1.0)), Verdict::Clip { value, .. } if value == 1.0)
        );
        let reject = c(OnViolation::Reject);
        assert!(
            matches!(reject.check("instances", 50.0, || None), Verdict::Reject(r) if r.contains("maximum"))
        );
        assert!(matches!(
            reject.check("instances", f64::NAN, || None),
            Verdict::Reject(_)
        ));
        assert_eq!(
            reject.check("lb.weight", 0.25, || None),
            Verdict::Accept(0.25)
        );
    }

    #[test]
    fn rate_limiter_refills_over_time() {
        let mut r = RateLimiter::default();
        let limits = ModuleLimits {
            rate_per_second: 2.0,
            max_requests_per_round: 10,
        };
        let (a, b) = (module_key("p", "a"), module_key("p", "b"));
        assert!(r.admit(&a, &limits, 0));
        assert!(r.admit(&a, &limits, 0));
        assert!(!r.admit(&a, &limits, 0));
        assert!(!r.admit(&a, &limits, 400));
        assert!(
            !r.admit(&module_key("p", "a"), &limits, 400),
            "a new session of the same module finds its bucket"
        );
        assert!(r.admit(&a, &limits, 600));
        assert!(r.admit(&b, &limits, 600), "buckets are per module");
        assert_eq!(
            r.take(&b, &limits, 1600, 5),
            2,
            "a bucket holds one second of requests"
        );
    }
}
