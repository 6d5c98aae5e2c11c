//! Properties of the mediators over random (and hostile) bids.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::capacity::allocate;
use super::conditional::{direction, mediate, moves_with, Direction};
use super::optimise::{place, Problem, Proposal, Scratch, Search};
use super::{
    mediate_value, precedence, weighted, Bid, Policy, Prefer, Rule, SeedableRng, SmallRng,
};

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -50.0..200.0f64,
        2 => (0u32..20).prop_map(f64::from),
        1 => Just(0.0),
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-f64::INFINITY)],
    ]
}

fn weight() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..=1.0f64,
        2 => Just(0.0),
        1 => Just(1.0),
        1 => prop_oneof![Just(f64::NAN), Just(-0.5), Just(f64::INFINITY)],
    ]
}

fn bid() -> impl Strategy<Value = Bid> {
    (value(), weight(), any::<bool>(), 0u32..8).prop_map(|(value, weight, is_default, module)| {
        Bid {
            value,
            weight,
            is_default,
            module,
        }
    })
}

/// Finite bids with weights in [0, 1] (for the monotonicity property).
fn clean_bid() -> impl Strategy<Value = Bid> {
    let w = prop_oneof![3 => 0.0..=1.0f64, 1 => Just(0.0)];
    (0.0..100.0f64, w, any::<bool>(), 0u32..8).prop_map(|(value, weight, is_default, module)| Bid {
        value,
        weight,
        is_default,
        module,
    })
}

fn current() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        (-50.0..200.0f64).prop_map(Some),
        Just(Some(f64::NAN))
    ]
}

/// Σ influence is 1 ± 1e-9 when any bid counted, else every entry is 0.
fn normalised(inf: &[f64]) -> bool {
    let sum: f64 = inf.iter().sum();
    inf.iter().all(|x| x.is_finite() && *x >= 0.0)
        && ((sum - 1.0).abs() <= 1e-9 || inf.iter().all(|x| *x == 0.0))
}

fn split(bids: &[Bid], capacity: f64, explore: Option<(u64, f64)>) -> (Vec<f64>, Vec<f64>) {
    let mut alloc = vec![0.0; bids.len()];
    let mut inf = vec![0.0; bids.len()];
    let mut rng = explore.map(|(seed, eps)| (SmallRng::seed_from_u64(seed), eps));
    let exploration = rng.as_mut().map(|(r, eps)| (r, *eps));
    allocate(
        bids,
        capacity,
        exploration,
        &mut Vec::new(),
        &mut alloc,
        &mut inf,
    );
    (alloc, inf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn capacity_is_never_exceeded(
        bids in prop::collection::vec(bid(), 0..12),
        capacity in prop_oneof![0.0..500.0f64, Just(f64::NAN), Just(-1.0)],
        explore in proptest::option::of((any::<u64>(), 0.0..=1.0f64)),
    ) {
        let (alloc, inf) = split(&bids, capacity, explore);
        let total: f64 = alloc.iter().sum();
        let cap = if capacity > 0.0 { capacity } else { 0.0 };
        prop_assert!(total <= cap * (1.0 + 1e-12) + 1e-12, "{total} > {cap}");
        for (a, b) in alloc.iter().zip(&bids) {
            prop_assert!(a.is_finite() && *a >= 0.0);
            let ask = if b.effective_weight().is_some() { b.value.max(0.0) } else { 0.0 };
            prop_assert!(*a <= ask * (1.0 + 1e-12), "{a} > ask {ask}");
        }
        prop_assert!(normalised(&inf));
    }

    #[test]
    fn capacity_is_work_conserving(
        bids in prop::collection::vec(clean_bid(), 1..12),
        capacity in 0.0..500.0f64,
    ) {
        // Everything is given away unless every ask is met.
        let (alloc, _) = split(&bids, capacity, None);
        let total: f64 = alloc.iter().sum();
        let asks: f64 = bids.iter().map(|b| b.value).sum();
        prop_assert!((total - capacity.min(asks)).abs() <= 1e-9 * (1.0 + capacity));
    }

    #[test]
    fn capacity_is_monotone_in_reputation(
        bids in prop::collection::vec(clean_bid(), 1..12),
        capacity in 0.0..500.0f64,
        pick in any::<prop::sample::Index>(),
        raise in 0.0..=1.0f64,
    ) {
        let j = pick.index(bids.len());
        let (before, _) = split(&bids, capacity, None);
        let mut raised = bids.clone();
        raised[j].weight += (1.0 - raised[j].weight) * raise;
        let (after, _) = split(&raised, capacity, None);
        prop_assert!(after[j] >= before[j] - 1e-9 * (1.0 + capacity),
            "{} < {}", after[j], before[j]);
    }

    #[test]
    fn capacity_is_deterministic_per_seed(
        bids in prop::collection::vec(bid(), 0..12),
        capacity in 0.0..500.0f64,
        seed in any::<u64>(),
        eps in 0.0..=1.0f64,
    ) {
        let a = split(&bids, capacity, Some((seed, eps)));
        let b = split(&bids, capacity, Some((seed, eps)));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn single_value_policies_are_finite_and_normalised(
        bids in prop::collection::vec(bid(), 0..12),
        integer in any::<bool>(),
        current in current(),
    ) {
        let rules = [
            Policy::Precedence,
            Policy::Weighted,
            Policy::Conditional(Rule::ByDirection { increase: Prefer::Custom, decrease: Prefer::Default }),
            Policy::Conditional(Rule::ByDirection {
                increase: Prefer::Default,
                decrease: Prefer::Policy(Box::new(Policy::Weighted)),
            }),
            Policy::Conditional(Rule::Threshold {
                above: 10.0,
                then: Box::new(Policy::Weighted),
                otherwise: Box::new(Policy::Precedence),
            }),
        ];
        let counted = bids.iter().any(|b| b.effective_weight().is_some());
        for p in &rules {
            let mut inf = vec![0.5; bids.len()];
            let v = mediate_value(p, &bids, integer, current, &mut inf);
            prop_assert_eq!(v.is_some(), counted);
            if let Some(v) = v {
                prop_assert!(v.is_finite());
                prop_assert!(!integer || v.fract() == 0.0);
                prop_assert!((inf.iter().sum::<f64>() - 1.0).abs() <= 1e-9);
            }
            prop_assert!(normalised(&inf));
        }
        // The weighted mean stays within the counted values.
        if let Some(m) = weighted::mean(&bids) {
            let ok = bids.iter().filter(|b| b.effective_weight().is_some());
            let lo = ok.clone().map(|b| b.value).fold(f64::INFINITY, f64::min);
            let hi = ok.map(|b| b.value).fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(lo <= m && m <= hi);
        }
    }

    #[test]
    fn precedence_picks_the_best_reputation(bids in prop::collection::vec(bid(), 0..12)) {
        if let Some(w) = precedence::winner(&bids) {
            let ww = bids[w].effective_weight().unwrap_or(-1.0);
            for b in &bids {
                if let Some(x) = b.effective_weight() {
                    prop_assert!(x <= ww);
                    if x == ww && b.is_default {
                        prop_assert!(bids[w].is_default);
                    }
                }
            }
        }
    }

    #[test]
    fn by_direction_rule_is_respected(
        bids in prop::collection::vec(bid(), 0..12),
        current in current(),
        increase_custom in any::<bool>(),
        decrease_custom in any::<bool>(),
    ) {
        let pref = |c: bool| if c { Prefer::Custom } else { Prefer::Default };
        let rule = Rule::ByDirection { increase: pref(increase_custom), decrease: pref(decrease_custom) };
        let mut inf = vec![0.0; bids.len()];
        let v = mediate(&rule, &bids, false, current, &mut inf);
        let Some(d) = direction(&bids, current) else {
            prop_assert!(v.is_none());
            return Ok(());
        };
        let current = current.filter(|c| c.is_finite());
        let want_default = !match d {
            Direction::Increase => increase_custom,
            Direction::Decrease => decrease_custom,
        };
        let w = inf.iter().position(|x| *x == 1.0).unwrap();
        prop_assert_eq!(v, Some(bids[w].value));
        let candidates: Vec<&Bid> = bids.iter()
            .filter(|b| b.effective_weight().is_some() && b.is_default == want_default)
            .collect();
        if !candidates.is_empty() {
            prop_assert_eq!(bids[w].is_default, want_default);
            let moving: Vec<&&Bid> = candidates.iter().filter(|b| moves_with(b.value, d, current)).collect();
            if !moving.is_empty() {
                prop_assert!(moves_with(bids[w].value, d, current));
                let best = moving.iter().filter_map(|b| b.effective_weight()).fold(0.0, f64::max);
                prop_assert_eq!(bids[w].effective_weight(), Some(best));
            }
        }
    }

    #[test]
    fn threshold_rule_is_respected(
        bids in prop::collection::vec(bid(), 0..12),
        current in current(),
        above in -50.0..200.0f64,
    ) {
        let rule = Rule::Threshold {
            above,
            then: Box::new(Policy::Precedence),
            otherwise: Box::new(Policy::Weighted),
        };
        let mut inf = vec![0.0; bids.len()];
        let v = mediate(&rule, &bids, false, current, &mut inf);
        let reference = current.filter(|c| c.is_finite()).or_else(|| weighted::mean(&bids));
        let mut want = vec![0.0; bids.len()];
        let expected = match reference {
            Some(r) if r > above => mediate_value(&Policy::Precedence, &bids, false, current, &mut want),
            Some(_) => mediate_value(&Policy::Weighted, &bids, false, current, &mut want),
            None => None,
        };
        prop_assert_eq!(v, expected);
        prop_assert_eq!(inf, want);
    }

    #[test]
    fn placement_is_feasible_and_deterministic(
        caps in prop::collection::vec(0u32..6, 0..7),
        fill in 0.0..=1.0f64,
        proposals in prop::collection::vec(
            (prop::collection::vec(0u32..8, 0..8), weight()), 0..5),
        lambda in prop_oneof![0.0..5.0f64, Just(f64::NAN)],
        seed in any::<u64>(),
        max_iterations in 0u64..200,
    ) {
        let total: u32 = caps.iter().sum();
        let instances = (f64::from(total) * fill).floor() as u32;
        let proposals: Vec<Proposal> = proposals
            .iter()
            .map(|(c, w)| Proposal { counts: c, weight: *w })
            .collect();
        let problem = Problem { instances, capacities: &caps, proposals: &proposals, lambda };
        let t0 = Instant::now();
        let clock = move || t0;
        let search = Search {
            deadline: t0 + Duration::from_secs(1),
            now: &clock,
            max_iterations,
            restarts: 2,
            seed,
        };
        let mut runs = Vec::new();
        for _ in 0..2 {
            let mut out = vec![0; caps.len()];
            let mut inf = vec![0.0; proposals.len()];
            let r = place(&problem, &search, &mut Scratch::default(), &mut out, &mut inf).unwrap();
            prop_assert_eq!(out.iter().sum::<u32>(), instances);
            prop_assert!(out.iter().zip(&caps).all(|(x, c)| x <= c));
            prop_assert!(r.objective.is_finite());
            prop_assert!(normalised(&inf));
            runs.push((out, inf, r));
        }
        prop_assert_eq!(&runs[0], &runs[1]);
    }
}
