//! Module contribution: each module's measured share of goal achievement,
//! which drives rewards and settlement. A pure core: no I/O, no clock (time
//! comes in as unix ms), no threads; fed by the supervisor's writer task.
//!
//! # Keys
//!
//! [`Contribution<K, T>`] is generic over the module key `K` (the supervisor
//! uses the module instance, `(control_plane_id, module_id)`, as for
//! reputation) and the target key `T` (what a mediated outcome is about and
//! what goals are evaluated for, e.g. a service set or a
//! `(target, parameter)`), both `Clone + Eq + Hash + Ord`.
//!
//! # Attribution
//!
//! - [`Contribution::record_decision`] records, for one target and round,
//!   each module's influence on the mediated outcome (1 for a precedence
//!   winner, the combination weights for a weighted mediation). Influences
//!   are cleaned — NaN, infinite and negative values are dropped and counted,
//!   duplicates of a module are added — and normalised to sum to 1. The
//!   decision stays in force for that target until the next one; a decision
//!   with no positive influence (e.g. no module requested anything) is in
//!   force too, and credits nobody.
//! - [`Contribution::record_window`] attributes an evaluation window's
//!   outcome (1.0 goal met, 0.0 missed, or any finite graded value, negative
//!   for harm) to the decision in force **at the window's time** `now_ms`:
//!   the most recent decision for the target whose time is ≤ `now_ms`
//!   (the last [`DECISION_HISTORY`] decisions per target are kept, so a
//!   window reported slightly after a newer decision still goes to the one
//!   that was in force). Each module gets `outcome × influence` added to its
//!   cumulative contribution. This is the simplest correct rule; decisions
//!   replaced during the window are not pro-rated.
//! - [`Contribution::reward_shares`]: cumulative contributions normalised to
//!   sum to 1 over the modules whose contribution is positive.
//! - [`split_amount`] turns shares into integer micro-units that sum
//!   exactly to the amount being settled.
//!
//! Rounds only move forward per target: a decision for an older round than
//! the one in force is rejected ([`ContributionError::StaleRound`]); one for
//! the same round replaces it (re-mediation). Nothing panics; rejected input
//! is counted in [`ContributionStats`].

mod split;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

use serde::Serialize;

pub use split::split_amount;

/// Decisions kept per target for attributing windows reported late.
pub const DECISION_HISTORY: usize = 4;

/// Rejected input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContributionError {
    #[error("decision for round {round} is older than round {in_force} in force")]
    StaleRound { round: u64, in_force: u64 },
    #[error("window outcome {0} is not a finite number")]
    NonFiniteOutcome(f64),
    #[error("no decision was in force for the target at the window's time")]
    NoDecision,
}

/// A mediated outcome's attribution: normalised influences, in module order.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Decision<K> {
    pub round: u64,
    pub at_ms: i64,
    /// `(module, influence)`, influences > 0 summing to 1; empty if no
    /// module influenced the outcome.
    pub influences: Vec<(K, f64)>,
}

/// Counters, for `/metrics` and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ContributionStats {
    pub decisions: u64,
    pub stale_decisions: u64,
    /// Influence values dropped (NaN, infinite, negative).
    pub ignored_influences: u64,
    /// Windows credited to at least one module.
    pub attributed_windows: u64,
    /// Windows whose decision in force had no influence.
    pub unattributed_windows: u64,
    /// Windows with no decision in force at their time.
    pub windows_without_decision: u64,
    /// Windows with a NaN or infinite outcome.
    pub ignored_outcomes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
struct Tally {
    contribution: f64,
    windows: u64,
}

/// The contribution table (writer side). See the module docs. It is its
/// own state: it serializes whole, to keep across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord, T: Serialize + Ord",
    deserialize = "K: serde::Deserialize<'de> + Ord, T: serde::Deserialize<'de> + Ord"
))]
pub struct Contribution<K, T> {
    decisions: BTreeMap<T, VecDeque<Decision<K>>>,
    tallies: BTreeMap<K, Tally>,
    stats: ContributionStats,
}

impl<K, T> Default for Contribution<K, T> {
    fn default() -> Self {
        Contribution {
            decisions: BTreeMap::new(),
            tallies: BTreeMap::new(),
            stats: ContributionStats::default(),
        }
    }
}

impl<K, T> Contribution<K, T>
where
    K: Clone + Eq + Hash + Ord,
    T: Clone + Eq + Hash + Ord,
{
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the modules' influence on `target`'s mediated outcome in
    /// `round`; it is in force from `now_ms` until the next decision.
    pub fn record_decision(
        &mut self,
        target: &T,
        round: u64,
        influences: &[(K, f64)],
        now_ms: i64,
    ) -> Result<(), ContributionError> {
        let latest_round = self
            .decisions
            .get(target)
            .and_then(|h| h.back())
            .map(|d| d.round);
        if let Some(in_force) = latest_round {
            if round < in_force {
                self.stats.stale_decisions += 1;
                return Err(ContributionError::StaleRound { round, in_force });
            }
        }
        let decision = Decision {
            round,
            at_ms: now_ms,
            influences: self.normalise(influences),
        };
        self.stats.decisions += 1;
        let history = match self.decisions.get_mut(target) {
            Some(history) => history,
            None => self.decisions.entry(target.clone()).or_default(),
        };
        if latest_round == Some(round) {
            history.pop_back();
        }
        history.push_back(decision);
        while history.len() > DECISION_HISTORY {
            history.pop_front();
        }
        Ok(())
    }

    /// Attributes one evaluation window's `outcome` for `target` to the
    /// modules of the decision in force at `now_ms`, in proportion to their
    /// influence.
    pub fn record_window(
        &mut self,
        target: &T,
        outcome: f64,
        now_ms: i64,
    ) -> Result<(), ContributionError> {
        if !outcome.is_finite() {
            self.stats.ignored_outcomes += 1;
            return Err(ContributionError::NonFiniteOutcome(outcome));
        }
        let decision = self
            .decisions
            .get(target)
            .and_then(|h| h.iter().rev().find(|d| d.at_ms <= now_ms));
        let Some(decision) = decision else {
            self.stats.windows_without_decision += 1;
            return Err(ContributionError::NoDecision);
        };
        if decision.influences.is_empty() {
            self.stats.unattributed_windows += 1;
            return Ok(());
        }
        for (module, influence) in &decision.influences {
            let credit = outcome * influence;
            match self.tallies.get_mut(module) {
                Some(t) => {
                    t.contribution = (t.contribution + credit).clamp(f64::MIN, f64::MAX);
                    t.windows += 1;
                }
                None => {
                    self.tallies.insert(
                        module.clone(),
                        Tally {
                            contribution: credit,
                            windows: 1,
                        },
                    );
                }
            }
        }
        self.stats.attributed_windows += 1;
        Ok(())
    }

    /// Cumulative contributions normalised to sum to 1 over the modules
    /// with a positive contribution, in module order; empty if there are none.
    pub fn reward_shares(&self) -> Vec<(K, f64)> {
        let positive = || self.tallies.iter().filter(|(_, t)| t.contribution > 0.0);
        // Scale by the largest first so the sum cannot overflow.
        let max = positive().fold(0.0_f64, |m, (_, t)| m.max(t.contribution));
        if max <= 0.0 {
            return Vec::new();
        }
        let sum: f64 = positive().map(|(_, t)| t.contribution / max).sum();
        positive()
            .map(|(k, t)| (k.clone(), t.contribution / max / sum))
            // A share below f64's range is no share.
            .filter(|(_, s)| *s > 0.0)
            .collect()
    }

    /// Every module credited at least once: `(module, cumulative, share)`,
    /// in module order; the share is the reward share (0 if the cumulative
    /// contribution is not positive).
    pub fn contributions(&self) -> Vec<(K, f64, f64)> {
        let shares: BTreeMap<K, f64> = self.reward_shares().into_iter().collect();
        self.tallies
            .iter()
            .map(|(k, t)| {
                let share = shares.get(k).copied().unwrap_or(0.0);
                (k.clone(), t.contribution, share)
            })
            .collect()
    }

    /// Cumulative contribution of one module (0 if never credited).
    pub fn contribution(&self, module: &K) -> f64 {
        self.tallies.get(module).map_or(0.0, |t| t.contribution)
    }

    /// Windows credited to one module.
    pub fn windows(&self, module: &K) -> u64 {
        self.tallies.get(module).map_or(0, |t| t.windows)
    }

    /// The decision currently in force for `target` (the latest one).
    pub fn in_force(&self, target: &T) -> Option<&Decision<K>> {
        self.decisions.get(target).and_then(|h| h.back())
    }

    /// Forgets a target's decisions (e.g. its service set was removed).
    pub fn remove_target(&mut self, target: &T) -> bool {
        self.decisions.remove(target).is_some()
    }

    /// Starts a new settlement period: clears the cumulative contributions,
    /// keeps the decisions in force and the counters.
    pub fn reset_contributions(&mut self) {
        self.tallies.clear();
    }

    pub fn stats(&self) -> ContributionStats {
        self.stats
    }

    /// Drops invalid values (counted), merges duplicates, normalises to 1.
    fn normalise(&mut self, influences: &[(K, f64)]) -> Vec<(K, f64)> {
        let mut merged: BTreeMap<&K, f64> = BTreeMap::new();
        for (k, w) in influences {
            if !w.is_finite() || *w < 0.0 {
                self.stats.ignored_influences += 1;
            } else if *w > 0.0 {
                let e = merged.entry(k).or_insert(0.0);
                *e = (*e + w).min(f64::MAX);
            }
        }
        let max = merged.values().copied().fold(0.0_f64, f64::max);
        if max <= 0.0 {
            return Vec::new();
        }
        let sum: f64 = merged.values().map(|w| w / max).sum();
        merged
            .into_iter()
            .map(|(k, w)| (k.clone(), w / max / sum))
            .filter(|(_, w)| *w > 0.0)
            .collect()
    }
}
