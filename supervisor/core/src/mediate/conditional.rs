//! Condition-dependent mediation: a [`Rule`] picks the winner or the policy.
//!
//! **`Rule::ByDirection { increase, decrease }`** — e.g. "the custom module
//! when requests increase a service set, the default one when they
//! decrease it" is `increase = "custom"`, `decrease = "default"`.
//!
//! - The round's direction compares the reputation-weighted mean `m` of the
//!   bids ([`weighted::mean`]) with the value in force `current`: it
//!   *increases* iff `current` is `None` (nothing in force: every request
//!   raises it from nothing) or `m > current`; otherwise (`m ≤ current`,
//!   holding included) it *decreases*.
//! - A bid *moves with* the round if it increases (`value > current`, or no
//!   `current`) in an increasing round, or does not increase
//!   (`value ≤ current`) in a decreasing one.
//! - `Prefer::Custom` / `Prefer::Default`: the preferred class is the
//!   custom (`!is_default`) / default bids. The winner is the
//!   [`precedence`] winner among the preferred class's bids that move with
//!   the round; if there are none, among the preferred class's bids; if
//!   there are none, among all bids. Influence: 1 for the winner.
//! - `Prefer::Policy(p)`: the inner policy over all bids, as
//!   [`mediate_value`] does it (its influence).
//!
//! **`Rule::Threshold { above, then, otherwise }`** — the reference value is
//! `current` if it is in force (and finite), else the weighted mean of the
//! bids; if it is strictly above `above`, `then` decides, else `otherwise`
//! (a NaN `above` always picks `otherwise`).
//!
//! Inner policies are single-value ones; `capacity` / `optimise` inside a
//! rule give `None`.

use serde::Deserialize;

use super::precedence::winner_where;
use super::{clear, mediate_value, round_if, weighted, Bid, Policy};

/// A condition that picks the winner or the policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum Rule {
    /// Who decides depends on whether the round increases or decreases the
    /// value in force.
    ByDirection { increase: Prefer, decrease: Prefer },
    /// `then` decides when the value in force is above `above`.
    Threshold {
        above: f64,
        then: Box<Policy>,
        otherwise: Box<Policy>,
    },
}

/// Who decides in a branch. In TOML: `"custom"`, `"default"`, or an inner
/// policy table such as `{ policy = "weighted" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "PreferRepr")]
pub enum Prefer {
    Custom,
    Default,
    Policy(Box<Policy>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PreferRepr {
    Name(PreferName),
    Policy(Box<Policy>),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum PreferName {
    Custom,
    Default,
}

impl From<PreferRepr> for Prefer {
    fn from(r: PreferRepr) -> Prefer {
        match r {
            PreferRepr::Name(PreferName::Custom) => Prefer::Custom,
            PreferRepr::Name(PreferName::Default) => Prefer::Default,
            PreferRepr::Policy(p) => Prefer::Policy(p),
        }
    }
}

/// The direction of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Increase,
    Decrease,
}

/// The round's direction (see the module docs); `None` if no bid counts.
pub fn direction(bids: &[Bid], current: Option<f64>) -> Option<Direction> {
    let m = weighted::mean(bids)?;
    Some(match finite(current) {
        Some(c) if m <= c => Direction::Decrease,
        _ => Direction::Increase,
    })
}

/// Whether a bid's value moves with a round going in direction `d`.
pub fn moves_with(value: f64, d: Direction, current: Option<f64>) -> bool {
    match (d, finite(current)) {
        (Direction::Increase, None) => true,
        (Direction::Increase, Some(c)) => value > c,
        (Direction::Decrease, Some(c)) => value <= c,
        (Direction::Decrease, None) => false,
    }
}

/// Resolves `bids` under `rule`; see the module docs. `None` (zero
/// influence) if no bid counts.
pub fn mediate(
    rule: &Rule,
    bids: &[Bid],
    integer: bool,
    current: Option<f64>,
    influence: &mut [f64],
) -> Option<f64> {
    let current = finite(current);
    match rule {
        Rule::ByDirection { increase, decrease } => {
            let Some(d) = direction(bids, current) else {
                clear(influence, bids.len());
                return None;
            };
            let prefer = match d {
                Direction::Increase => increase,
                Direction::Decrease => decrease,
            };
            let class = match prefer {
                Prefer::Custom => false,
                Prefer::Default => true,
                Prefer::Policy(p) => return mediate_value(p, bids, integer, current, influence),
            };
            clear(influence, bids.len());
            let w = winner_where(bids, |b| {
                b.is_default == class && moves_with(b.value, d, current)
            })
            .or_else(|| winner_where(bids, |b| b.is_default == class))
            .or_else(|| winner_where(bids, |_| true))?;
            if let Some(x) = influence.get_mut(w) {
                *x = 1.0;
            }
            bids.get(w).map(|b| round_if(b.value, integer))
        }
        Rule::Threshold {
            above,
            then,
            otherwise,
        } => {
            let Some(reference) = current.or_else(|| weighted::mean(bids)) else {
                clear(influence, bids.len());
                return None;
            };
            let p = if reference > *above { then } else { otherwise };
            mediate_value(p, bids, integer, current, influence)
        }
    }
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(value: f64, weight: f64, is_default: bool, module: u32) -> Bid {
        Bid::test(value, weight, is_default, module)
    }

    fn custom_up_default_down() -> Rule {
        Rule::ByDirection {
            increase: Prefer::Custom,
            decrease: Prefer::Default,
        }
    }

    #[test]
    fn custom_decides_increases_default_decreases() {
        let rule = custom_up_default_down();
        let mut inf = [0.0; 2];
        // Custom scales up to 10, default holds 5: mean 8.2 > 5 → custom.
        let bids = [bid(5.0, 0.5, true, 0), bid(10.0, 0.9, false, 1)];
        assert_eq!(mediate(&rule, &bids, true, Some(5.0), &mut inf), Some(10.0));
        assert_eq!(inf, [0.0, 1.0]);
        // Custom scales down to 3, default holds: mean < 5 → default.
        let bids = [bid(5.0, 0.5, true, 0), bid(3.0, 0.9, false, 1)];
        assert_eq!(mediate(&rule, &bids, true, Some(5.0), &mut inf), Some(5.0));
        assert_eq!(inf, [1.0, 0.0]);
        // Nothing in force: an increase.
        assert_eq!(mediate(&rule, &bids, true, None, &mut inf), Some(3.0));
        assert_eq!(direction(&bids, None), Some(Direction::Increase));
        // A NaN current counts as nothing in force.
        assert_eq!(
            mediate(&rule, &bids, true, Some(f64::NAN), &mut inf),
            Some(3.0)
        );
    }

    #[test]
    fn prefers_bids_moving_with_the_round() {
        let rule = custom_up_default_down();
        // Two custom bids, mean 6.6 > 5: the one increasing wins although
        // the other has the better reputation.
        let bids = [
            bid(4.0, 0.9, false, 1),
            bid(12.0, 0.6, false, 2),
            bid(5.0, 0.1, true, 0),
        ];
        let mut inf = [0.0; 3];
        assert_eq!(
            mediate(&rule, &bids, false, Some(5.0), &mut inf),
            Some(12.0)
        );
        // No custom bid at all in an increasing round: the default's.
        let bids = [bid(9.0, 0.2, true, 0)];
        assert_eq!(
            mediate(&rule, &bids, false, Some(5.0), &mut [0.0]),
            Some(9.0)
        );
    }

    #[test]
    fn inner_policy_and_threshold() {
        let rule = Rule::ByDirection {
            increase: Prefer::Policy(Box::new(Policy::Weighted)),
            decrease: Prefer::Default,
        };
        let bids = [bid(10.0, 0.5, true, 0), bid(20.0, 0.5, false, 1)];
        let mut inf = [0.0; 2];
        assert_eq!(
            mediate(&rule, &bids, false, Some(0.0), &mut inf),
            Some(15.0)
        );
        assert_eq!(inf, [0.5, 0.5]);
        let rule = Rule::Threshold {
            above: 12.0,
            then: Box::new(Policy::Precedence),
            otherwise: Box::new(Policy::Weighted),
        };
        // Current 13 > 12: precedence (tie → default).
        assert_eq!(
            mediate(&rule, &bids, false, Some(13.0), &mut inf),
            Some(10.0)
        );
        assert_eq!(
            mediate(&rule, &bids, false, Some(12.0), &mut inf),
            Some(15.0)
        );
        // No current: the weighted mean 15 > 12.
        assert_eq!(mediate(&rule, &bids, false, None, &mut inf), Some(10.0));
        assert_eq!(mediate(&rule, &[], false, None, &mut []), None);
        let nan = [bid(f64::NAN, 1.0, true, 0)];
        let mut inf = [5.0];
        assert_eq!(
            mediate(&custom_up_default_down(), &nan, false, Some(1.0), &mut inf),
            None
        );
        assert_eq!(inf, [0.0]);
    }
}
