//! Module reputation: a score in [0, 1] per module instance, built from
//! customer feedback and measured goal achievement, deadline compliance and
//! efficiency. A pure core: no I/O, no clock (time comes in as unix ms), no
//! threads. The supervisor's single writer task feeds it evidence and
//! publishes [`ReputationSnapshot`]s through [`SharedReputation`] for the
//! mediators to read lock-free.
//!
//! # Key
//!
//! [`Reputation<K>`] is generic over the module-instance key
//! `K: Clone + Eq + Hash + Ord`. A module instance is one module serving one
//! control plane, so the supervisor uses `(control_plane_id, module_id)`
//! (e.g. `(String, String)`); the same module in two control planes has two
//! independent reputations.
//!
//! # Components
//!
//! Every observation `x` is mapped into [0, 1]:
//!
//! | component  | evidence | observation `x` | half-life |
//! | ---------- | -------- | --------------- | --------- |
//! | feedback   | [`Reputation::feedback`]: customer rating `r` ∈ [1, 5] | `(r − 1) / 4` | 24 h |
//! | goal       | [`Reputation::goal_window`]: goal met in an evaluation window | 1 if met, else 0 | 1 h |
//! | deadline   | [`Reputation::answered`]: answer to a solicitation on time | 1 if on time, else 0 | 10 min |
//! | efficiency | [`Reputation::efficiency`]: `(g, cost, baseline)` | `clamp(g · baseline / max(cost, ε), 0, 1)`, ε = 1e-9 | 1 h |
//!
//! For efficiency, `g` ∈ [0, 1] is the share of the goal achieved in the
//! window, `cost` the resources the module's configuration used and
//! `baseline` what the default module (or the service set at its maximum
//! instance count) would cost for the same window, in the same unit. A
//! module that meets its goal at or below the baseline cost scores 1; one
//! that spends twice the baseline for the same result scores 0.5; a zero
//! baseline credits nothing.
//!
//! # Formula
//!
//! For a component `c` with observations `x_i` at times `t_i` and half-life
//! `h_c`, evaluated at time `t`:
//!
//! ```text
//! S_c(t) = Σ_i x_i · 2^(−(t − t_i) / h_c)        (decayed sum)
//! W_c(t) = Σ_i       2^(−(t − t_i) / h_c)        (decayed count)
//! v_c(t) = (p · m + S_c(t)) / (m + W_c(t))       (component, Bayesian prior)
//!
//! score(t) = Σ_{c ∈ E} w_c · v_c(t) / Σ_{c ∈ E} w_c
//! ```
//!
//! where `p` = `prior` (default 0.5), `m` = `prior_weight` pseudo-observations
//! (default 2, never decayed), `w_c` the component weights (default feedback
//! 0.2, goal 0.4, deadline 0.2, efficiency 0.2), and `E` the components with
//! `w_c > 0` that have received at least one valid observation. With `E`
//! empty, score = `p`. A new module therefore starts at `p`, a first
//! observation moves a component only `1 / (m + 1)` of the way to it, and
//! as evidence fades (`W_c → 0`) the component returns to `p`: old evidence
//! fades and a module can recover.
//!
//! The sums are kept incrementally: on an observation at `t ≥ t_last`,
//! `(S, W) ← 2^(−(t − t_last)/h) · (S, W) + (x, 1)`. Reads decay to the read
//! time without storing. An observation older than `t_last` (out of order)
//! is added with weight `2^(−(t_last − t)/h)`; a read before `t_last` does
//! not decay (time never runs backwards). A half-life of 0 keeps only the
//! observations of the latest millisecond.
//!
//! # Bad input
//!
//! Nothing panics. A rating outside [1, 5] (or NaN), and efficiency evidence
//! that is not finite or has a negative cost, is rejected with an `Err`,
//! ignored, and counted ([`Reputation::ignored`], [`Components::ignored`]).
//! An invalid [`ReputationConfig`] field is replaced by its default in
//! [`Reputation::new`]; [`ReputationConfig::validate`] reports it.

mod config;
mod decay;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use config::ReputationConfig;
use decay::Decayed;
use snapshot::unit_or;
pub use snapshot::{shared, ReputationSnapshot, SharedReputation};

/// Denominator floor of the efficiency ratio.
pub const EFFICIENCY_EPSILON: f64 = 1e-9;

/// Rejected evidence or configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReputationError {
    #[error("rating {0} is outside 1..=5")]
    RatingOutOfRange(f64),
    #[error("invalid {what}: {value}")]
    InvalidEvidence { what: &'static str, value: f64 },
    #[error("reputation config: {field} {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
}

/// The four components and the score of one module instance at one instant,
/// for reports. A component without evidence shows the prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Components {
    pub feedback: f64,
    pub goal: f64,
    pub deadline: f64,
    pub efficiency: f64,
    pub score: f64,
    /// Decayed observation count `W_c` behind each component.
    pub evidence: Evidence,
    /// Evidence rejected for this module instance (bad ratings, NaN…).
    pub ignored: u64,
}

/// Decayed observation counts per component (0 = no evidence left).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Evidence {
    pub feedback: f64,
    pub goal: f64,
    pub deadline: f64,
    pub efficiency: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Feedback = 0,
    Goal = 1,
    Deadline = 2,
    Efficiency = 3,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Record {
    parts: [Decayed; 4],
    ignored: u64,
}

/// What a reputation table knows, to keep across restarts (see
/// [`Reputation::state`] and [`Reputation::restore`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReputationState<K: Ord> {
    records: BTreeMap<K, Record>,
    ignored: u64,
}

/// The reputation table (writer side). See the module docs for the formula.
#[derive(Debug, Clone)]
pub struct Reputation<K> {
    config: ReputationConfig,
    records: BTreeMap<K, Record>,
    ignored: u64,
}

impl<K: Clone + Eq + Hash + Ord> Reputation<K> {
    /// A table with no module in it. Invalid configuration fields are
    /// replaced by their defaults (see [`ReputationConfig::sanitized`]).
    pub fn new(config: ReputationConfig) -> Self {
        Reputation {
            config: config.sanitized(),
            records: BTreeMap::new(),
            ignored: 0,
        }
    }

    /// The configuration in effect (after sanitising).
    pub fn config(&self) -> &ReputationConfig {
        &self.config
    }

    /// Everything observed so far.
    pub fn state(&self) -> ReputationState<K> {
        ReputationState {
            records: self.records.clone(),
            ignored: self.ignored,
        }
    }

    /// A table with `config` that knows what `state` knew.
    pub fn restore(config: ReputationConfig, state: ReputationState<K>) -> Self {
        Reputation {
            config: config.sanitized(),
            records: state.records,
            ignored: state.ignored,
        }
    }

    /// A customer rating `rating` ∈ [1, 5] (fractions allowed), observed as
    /// `(rating − 1) / 4`. Anything else (NaN included) is an error and is
    /// ignored and counted.
    pub fn feedback(&mut self, key: &K, rating: f64, now_ms: i64) -> Result<(), ReputationError> {
        if !(1.0..=5.0).contains(&rating) {
            self.reject(key);
            return Err(ReputationError::RatingOutOfRange(rating));
        }
        self.observe(key, Kind::Feedback, (rating - 1.0) / 4.0, now_ms);
        Ok(())
    }

    /// One evaluation window of the module's service set: goal met or not.
    pub fn goal_window(&mut self, key: &K, met: bool, now_ms: i64) {
        self.observe(key, Kind::Goal, if met { 1.0 } else { 0.0 }, now_ms);
    }

    /// One solicitation: answered before the deadline or not (late or no
    /// answer).
    pub fn answered(&mut self, key: &K, on_time: bool, now_ms: i64) {
        self.observe(key, Kind::Deadline, if on_time { 1.0 } else { 0.0 }, now_ms);
    }

    /// One window of efficiency evidence, observed as
    /// `clamp(goal_met_share · baseline_cost / max(resource_cost, ε), 0, 1)`.
    /// `goal_met_share` is clamped to [0, 1]. Non-finite values and negative
    /// costs are an error and are ignored and counted.
    pub fn efficiency(
        &mut self,
        key: &K,
        goal_met_share: f64,
        resource_cost: f64,
        baseline_cost: f64,
        now_ms: i64,
    ) -> Result<(), ReputationError> {
        let bad = [
            ("goal_met_share", goal_met_share, false),
            ("resource_cost", resource_cost, true),
            ("baseline_cost", baseline_cost, true),
        ]
        .into_iter()
        .find(|&(_, v, cost)| !v.is_finite() || (cost && v < 0.0));
        if let Some((what, value, _)) = bad {
            self.reject(key);
            return Err(ReputationError::InvalidEvidence { what, value });
        }
        let share = goal_met_share.clamp(0.0, 1.0);
        let x = unit_or(
            share * baseline_cost / resource_cost.max(EFFICIENCY_EPSILON),
            0.0,
        );
        self.observe(key, Kind::Efficiency, x, now_ms);
        Ok(())
    }

    /// The score of `key` at `now_ms`, in [0, 1]; the prior for an unknown key.
    pub fn score(&self, key: &K, now_ms: i64) -> f64 {
        match self.records.get(key) {
            Some(r) => self.evaluate(r, now_ms).score,
            None => self.config.prior,
        }
    }

    /// Components and score of `key` at `now_ms` (all at the prior for an
    /// unknown key).
    pub fn components(&self, key: &K, now_ms: i64) -> Components {
        match self.records.get(key) {
            Some(r) => self.evaluate(r, now_ms),
            None => self.evaluate(&Record::default(), now_ms),
        }
    }

    /// Every module instance's score at `now_ms`, as an immutable snapshot
    /// whose default (for keys without a record) is the prior.
    pub fn snapshot(&self, now_ms: i64) -> ReputationSnapshot<K> {
        let scores: HashMap<K, f64> = self
            .records
            .iter()
            .map(|(k, r)| (k.clone(), self.evaluate(r, now_ms).score))
            .collect();
        ReputationSnapshot::from_parts(scores, self.config.prior, now_ms)
    }

    /// Builds a snapshot at `now_ms` and swaps it into `slot`.
    pub fn publish(&self, slot: &SharedReputation<K>, now_ms: i64) {
        slot.store(Arc::new(self.snapshot(now_ms)));
    }

    /// Forgets a module instance (e.g. removed from its control plane).
    pub fn remove(&mut self, key: &K) -> bool {
        self.records.remove(key).is_some()
    }

    /// The module instances with a record, in key order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.records.keys()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Evidence rejected so far, all module instances together.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    fn with_record(&mut self, key: &K, f: impl FnOnce(&mut Record)) {
        if let Some(r) = self.records.get_mut(key) {
            f(r);
        } else {
            let mut r = Record::default();
            f(&mut r);
            self.records.insert(key.clone(), r);
        }
    }

    fn reject(&mut self, key: &K) {
        self.ignored = self.ignored.saturating_add(1);
        self.with_record(key, |r| r.ignored = r.ignored.saturating_add(1));
    }

    fn observe(&mut self, key: &K, kind: Kind, x: f64, now_ms: i64) {
        let half_life = self.half_life(kind);
        self.with_record(key, |r| {
            r.parts[kind as usize].observe(x, now_ms, half_life)
        });
    }

    fn half_life(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Feedback => self.config.feedback_half_life_ms,
            Kind::Goal => self.config.goal_half_life_ms,
            Kind::Deadline => self.config.deadline_half_life_ms,
            Kind::Efficiency => self.config.efficiency_half_life_ms,
        }
    }

    fn weight(&self, kind: Kind) -> f64 {
        match kind {
            Kind::Feedback => self.config.feedback_weight,
            Kind::Goal => self.config.goal_weight,
            Kind::Deadline => self.config.deadline_weight,
            Kind::Efficiency => self.config.efficiency_weight,
        }
    }

    fn evaluate(&self, r: &Record, now_ms: i64) -> Components {
        const KINDS: [Kind; 4] = [Kind::Feedback, Kind::Goal, Kind::Deadline, Kind::Efficiency];
        let (p, m) = (self.config.prior, self.config.prior_weight);
        let mut values = [p; 4];
        let mut weights = [0.0; 4];
        let (mut num, mut den) = (0.0, 0.0);
        for kind in KINDS {
            let i = kind as usize;
            let part = &r.parts[i];
            let (s, w) = part.at(now_ms, self.half_life(kind));
            let total = m + w;
            let v = if total > 0.0 && total.is_finite() {
                unit_or((p * m + s) / total, p)
            } else {
                p
            };
            values[i] = v;
            weights[i] = w;
            let wc = self.weight(kind);
            if part.observed() && wc > 0.0 {
                num += wc * v;
                den += wc;
            }
        }
        let score = if den > 0.0 { unit_or(num / den, p) } else { p };
        Components {
            feedback: values[0],
            goal: values[1],
            deadline: values[2],
            efficiency: values[3],
            score,
            evidence: Evidence {
                feedback: weights[0],
                goal: weights[1],
                deadline: weights[2],
                efficiency: weights[3],
            },
            ignored: r.ignored,
        }
    }
}
