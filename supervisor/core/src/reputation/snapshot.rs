//! [`ReputationSnapshot`]: the immutable reputation table the mediators read
//! on the hot path, published through [`SharedReputation`] (arc-swap).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// The atomically swapped slot the writer publishes snapshots into and the
/// mediators `load()` from, lock-free.
pub type SharedReputation<K> = ArcSwap<ReputationSnapshot<K>>;

/// An immutable map module instance → score in [0, 1], computed at one
/// instant. Built by [`super::Reputation::snapshot`]; never mutated after.
#[derive(Debug, Clone)]
pub struct ReputationSnapshot<K> {
    scores: HashMap<K, f64>,
    default_score: f64,
    at_ms: i64,
}

impl<K: Eq + Hash> ReputationSnapshot<K> {
    /// A snapshot with no module in it: every lookup returns
    /// `default_score` (clamped to [0, 1]; NaN becomes 0.5).
    pub fn empty(default_score: f64, at_ms: i64) -> Self {
        ReputationSnapshot {
            scores: HashMap::new(),
            default_score: unit_or(default_score, 0.5),
            at_ms,
        }
    }

    pub(super) fn from_parts(scores: HashMap<K, f64>, default_score: f64, at_ms: i64) -> Self {
        ReputationSnapshot {
            scores,
            default_score,
            at_ms,
        }
    }

    /// The score of `key`, or the prior-based default for a module with no
    /// record (a new module is neither trusted nor distrusted).
    pub fn get<Q>(&self, key: &Q) -> f64
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.scores.get(key).copied().unwrap_or(self.default_score)
    }

    /// Whether `key` has a record (as opposed to getting the default).
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.scores.contains_key(key)
    }

    /// The score of a module without a record (the prior).
    pub fn default_score(&self) -> f64 {
        self.default_score
    }

    /// When the scores were evaluated (unix ms).
    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// All recorded scores, in key order (for reports; not for the hot path).
    pub fn sorted(&self) -> Vec<(K, f64)>
    where
        K: Clone + Ord,
    {
        let mut v: Vec<(K, f64)> = self.scores.iter().map(|(k, s)| (k.clone(), *s)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl<K: Eq + Hash> Default for ReputationSnapshot<K> {
    /// An empty snapshot at time 0 whose default is the default prior (0.5).
    fn default() -> Self {
        ReputationSnapshot::empty(0.5, 0)
    }
}

/// A new shared slot holding `initial`.
pub fn shared<K>(initial: ReputationSnapshot<K>) -> SharedReputation<K> {
    ArcSwap::new(Arc::new(initial))
}

/// `x` clamped to [0, 1]; `fallback` if `x` is NaN.
pub(super) fn unit_or(x: f64, fallback: f64) -> f64 {
    if x.is_nan() {
        fallback
    } else {
        x.clamp(0.0, 1.0)
    }
}
