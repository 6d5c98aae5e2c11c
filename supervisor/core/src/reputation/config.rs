//! [`ReputationConfig`]: prior, weights and half-lives of the four
//! reputation components (TOML section, every field optional).

use serde::Deserialize;

use super::ReputationError;

/// One hour in milliseconds.
const HOUR_MS: u64 = 3_600_000;

/// Tuning of the reputation score. Every field is optional; see the module
/// docs of [`crate::reputation`] for how each one enters the formula.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReputationConfig {
    /// `p`: the value every component starts from, in [0, 1] (default 0.5).
    pub prior: f64,
    /// `m`: how many pseudo-observations the prior is worth, ≥ 0 (default 2).
    pub prior_weight: f64,
    /// Weight of customer feedback in the score (default 0.2).
    pub feedback_weight: f64,
    /// Weight of goal achievement (default 0.4).
    pub goal_weight: f64,
    /// Weight of deadline compliance (default 0.2).
    pub deadline_weight: f64,
    /// Weight of efficiency (default 0.2).
    pub efficiency_weight: f64,
    /// Half-life of feedback evidence (default 24 h).
    pub feedback_half_life_ms: u64,
    /// Half-life of goal evidence (default 1 h).
    pub goal_half_life_ms: u64,
    /// Half-life of deadline evidence (default 10 min).
    pub deadline_half_life_ms: u64,
    /// Half-life of efficiency evidence (default 1 h).
    pub efficiency_half_life_ms: u64,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        ReputationConfig {
            prior: 0.5,
            prior_weight: 2.0,
            feedback_weight: 0.2,
            goal_weight: 0.4,
            deadline_weight: 0.2,
            efficiency_weight: 0.2,
            feedback_half_life_ms: 24 * HOUR_MS,
            goal_half_life_ms: HOUR_MS,
            deadline_half_life_ms: 10 * 60_000,
            efficiency_half_life_ms: HOUR_MS,
        }
    }
}

impl ReputationConfig {
    /// Checks every field; the configuration loader calls this to report a
    /// clear error. ([`super::Reputation::new`] never fails: it replaces
    /// each invalid field by its default, see [`Self::sanitized`].)
    pub fn validate(&self) -> Result<(), ReputationError> {
        let invalid = |field: &'static str, reason: &'static str| {
            Err(ReputationError::InvalidConfig { field, reason })
        };
        if !(0.0..=1.0).contains(&self.prior) {
            return invalid("prior", "must be a number in [0, 1]");
        }
        if !valid_weight(self.prior_weight) {
            return invalid("prior_weight", "must be a finite number >= 0");
        }
        for (field, w) in self.weights_named() {
            if !valid_weight(w) {
                return invalid(field, "must be a finite number >= 0");
            }
        }
        let total: f64 = self.weights_named().iter().map(|(_, w)| w).sum();
        if total <= 0.0 || !total.is_finite() {
            return invalid("*_weight", "at least one component weight must be > 0");
        }
        Ok(())
    }

    /// A copy in which every invalid field is replaced by its default (all
    /// four weights are reset together if they are unusable as a set).
    pub fn sanitized(&self) -> ReputationConfig {
        let d = ReputationConfig::default();
        let mut c = self.clone();
        if !(0.0..=1.0).contains(&c.prior) {
            c.prior = d.prior;
        }
        if !valid_weight(c.prior_weight) {
            c.prior_weight = d.prior_weight;
        }
        for (w, dw) in [
            (&mut c.feedback_weight, d.feedback_weight),
            (&mut c.goal_weight, d.goal_weight),
            (&mut c.deadline_weight, d.deadline_weight),
            (&mut c.efficiency_weight, d.efficiency_weight),
        ] {
            if !valid_weight(*w) {
                *w = dw;
            }
        }
        let total: f64 = c.weights_named().iter().map(|(_, w)| w).sum();
        if total <= 0.0 || !total.is_finite() {
            c.feedback_weight = d.feedback_weight;
            c.goal_weight = d.goal_weight;
            c.deadline_weight = d.deadline_weight;
            c.efficiency_weight = d.efficiency_weight;
        }
        c
    }

    fn weights_named(&self) -> [(&'static str, f64); 4] {
        [
            ("feedback_weight", self.feedback_weight),
            ("goal_weight", self.goal_weight),
            ("deadline_weight", self.deadline_weight),
            ("efficiency_weight", self.efficiency_weight),
        ]
    }
}

fn valid_weight(w: f64) -> bool {
    w.is_finite() && w >= 0.0
}
