//! Mediators: pure functions that resolve competing configuration requests
//! for one `(target, parameter)` (or one pool), weighted by each module's
//! reputation.
//!
//! Hot path rules (DESIGN.md §4): no I/O, no locks, no clocks except through
//! an argument, no allocation per call. Callers pass preallocated output
//! slices (`influence`, allocations, placements) and scratch buffers that
//! keep their capacity between calls (they grow only the first time a
//! larger input is seen).
//!
//! | policy | file | result |
//! | --- | --- | --- |
//! | precedence | [`precedence`] | the best-reputation bid's value |
//! | reputation-weighted mean | [`weighted`] | `Σ wᵢ vᵢ / Σ w` |
//! | capacity (weighted max-min fairness) | [`capacity`] | an allocation per bid |
//! | condition-dependent | [`conditional`] | a winner or an inner policy, chosen by a [`Rule`] |
//! | optimisation (placement across hosts) | [`optimise`] | a placement vector |
//!
//! Shared conventions:
//! - a bid whose `value` or `weight` is not finite is **skipped**: it never
//!   wins, gets nothing and has influence 0 (so NaN never reaches a result);
//! - a negative weight counts as 0; weights are otherwise used as given
//!   (reputation is in `[0, 1]`);
//! - `influence[i]` is written for every `i < bids.len()` that the slice
//!   holds (callers pass `influence.len() == bids.len()`); it says how much
//!   bid `i` shaped the result, and sums to 1 whenever any bid counted (0
//!   everywhere otherwise);
//! - empty or all-invalid input gives `None` / nothing allocated; nothing
//!   here panics on any input.

pub mod capacity;
pub mod conditional;
pub mod optimise;
pub mod precedence;
pub mod weighted;

#[cfg(test)]
mod proptests;

pub use conditional::{Prefer, Rule};
/// The seeded generator for capacity exploration (re-exported so callers
/// need not name `rand`).
pub use rand::rngs::SmallRng;
pub use rand::SeedableRng;

use serde::Deserialize;

/// One competing request, as a mediator sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bid {
    /// The requested value (for [`capacity`]: the amount asked).
    pub value: f64,
    /// The module's reputation in `[0, 1]`.
    pub weight: f64,
    /// Whether the bid comes from the operator's default module.
    pub is_default: bool,
    /// The caller's id for the module, for deterministic tie-breaks.
    pub module: u32,
}

impl Bid {
    /// A bid from its four fields (tests).
    #[cfg(test)]
    pub(crate) fn test(value: f64, weight: f64, is_default: bool, module: u32) -> Bid {
        Bid {
            value,
            weight,
            is_default,
            module,
        }
    }

    /// The weight this bid counts with, or `None` if the bid is skipped
    /// (non-finite value or weight). Negative weights count as 0.
    pub fn effective_weight(&self) -> Option<f64> {
        (self.value.is_finite() && self.weight.is_finite()).then_some(self.weight.max(0.0))
    }
}

/// A mediation policy, as written in configuration (TOML), e.g.
///
/// ```toml
/// policy = "capacity"
/// capacity = 64.0
/// exploration = 0.05
/// ```
///
/// or, for a condition-dependent policy,
///
/// ```toml
/// policy = "conditional"
/// rule = "by_direction"
/// increase = "custom"
/// decrease = { policy = "weighted" }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum Policy {
    /// The best reputation wins; see [`precedence`].
    Precedence,
    /// The reputation-weighted mean; see [`weighted`].
    Weighted,
    /// Weighted max-min fair split of `capacity`; `exploration` is the
    /// per-call probability of the exploration boost (default 0). See
    /// [`capacity`].
    Capacity {
        capacity: f64,
        #[serde(default)]
        exploration: f64,
    },
    /// A rule picks the winner or the policy; see [`conditional`].
    Conditional(Rule),
    /// Placement across hosts; `lambda` weighs the spread term (default 1).
    /// See [`optimise`].
    Optimise {
        #[serde(default = "default_lambda")]
        lambda: f64,
    },
}

fn default_lambda() -> f64 {
    1.0
}

impl Policy {
    /// Whether [`mediate_value`] resolves this policy (single-target
    /// policies); `Capacity` and `Optimise` need their own entry points
    /// ([`capacity::allocate`], [`optimise::place`]).
    pub fn is_single_value(&self) -> bool {
        matches!(
            self,
            Policy::Precedence | Policy::Weighted | Policy::Conditional(_)
        )
    }
}

/// Resolves competing requests for one `(target, parameter)` under a
/// single-target policy and returns the value to put in force.
///
/// - `integer`: the parameter takes integer values; the result is rounded
///   (half away from zero).
/// - `current`: the value in force, if any (used by [`Rule`]s; ignored by
///   the others). A non-finite `current` counts as `None`.
/// - `influence`: per-bid share of the result (see the module docs).
///
/// Returns `None` (and zero influence) when no bid counts, and for
/// `Capacity` / `Optimise`, which do not produce one value: use
/// [`capacity::allocate`] and [`optimise::place`] for those.
pub fn mediate_value(
    policy: &Policy,
    bids: &[Bid],
    integer: bool,
    current: Option<f64>,
    influence: &mut [f64],
) -> Option<f64> {
    match policy {
        Policy::Precedence => {
            let i = precedence::precedence(bids, influence)?;
            bids.get(i).map(|b| round_if(b.value, integer))
        }
        Policy::Weighted => weighted::weighted(bids, integer, influence),
        Policy::Conditional(rule) => conditional::mediate(rule, bids, integer, current, influence),
        Policy::Capacity { .. } | Policy::Optimise { .. } => {
            clear(influence, bids.len());
            None
        }
    }
}

/// Rounds `v` when the parameter is an integer one.
pub(crate) fn round_if(v: f64, integer: bool) -> f64 {
    if integer {
        v.round()
    } else {
        v
    }
}

/// Zeroes the first `n` entries of `influence` (those it holds).
pub(crate) fn clear(influence: &mut [f64], n: usize) {
    for x in influence.iter_mut().take(n) {
        *x = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(value: f64, weight: f64, is_default: bool, module: u32) -> Bid {
        Bid::test(value, weight, is_default, module)
    }

    #[test]
    fn dispatch() {
        let bids = [bid(10.0, 0.5, true, 1), bid(20.0, 0.9, false, 2)];
        let mut inf = [0.0; 2];
        assert_eq!(
            mediate_value(&Policy::Precedence, &bids, false, None, &mut inf),
            Some(20.0)
        );
        assert_eq!(inf, [0.0, 1.0]);
        let v = mediate_value(&Policy::Weighted, &bids, true, None, &mut inf);
        assert_eq!(v, Some(16.0)); // (5 + 18) / 1.4 = 16.43
        let cap = Policy::Capacity {
            capacity: 1.0,
            exploration: 0.0,
        };
        assert_eq!(mediate_value(&cap, &bids, false, None, &mut inf), None);
        assert_eq!(inf, [0.0, 0.0]);
        assert_eq!(
            mediate_value(&Policy::Weighted, &[], false, None, &mut []),
            None
        );
    }

    #[test]
    fn policies_from_toml() {
        let p: Policy = toml::from_str("policy = \"capacity\"\ncapacity = 64.0").unwrap();
        assert_eq!(
            p,
            Policy::Capacity {
                capacity: 64.0,
                exploration: 0.0
            }
        );
        let p: Policy = toml::from_str("policy = \"optimise\"").unwrap();
        assert_eq!(p, Policy::Optimise { lambda: 1.0 });
        let p: Policy = toml::from_str(
            "policy = \"conditional\"\nrule = \"by_direction\"\n\
             increase = \"custom\"\ndecrease = { policy = \"weighted\" }",
        )
        .unwrap();
        assert_eq!(
            p,
            Policy::Conditional(Rule::ByDirection {
                increase: Prefer::Custom,
                decrease: Prefer::Policy(Box::new(Policy::Weighted)),
            })
        );
        let p: Policy = toml::from_str(
            "policy = \"conditional\"\nrule = \"threshold\"\nabove = 8.0\n\
             then = { policy = \"precedence\" }\notherwise = { policy = \"weighted\" }",
        )
        .unwrap();
        assert_eq!(
            p,
            Policy::Conditional(Rule::Threshold {
                above: 8.0,
                then: Box::new(Policy::Precedence),
                otherwise: Box::new(Policy::Weighted),
            })
        );
        assert!(toml::from_str::<Policy>("policy = \"nope\"").is_err());
    }
}
