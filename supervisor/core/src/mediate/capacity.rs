//! Capacity allocation: a finite capacity split among competing asks
//! (possibly for different targets and customers) by **weighted max-min
//! fairness** with reputation as the weights (water-filling).
//!
//! A bid's `value` is its ask. Participants: bids that are not skipped
//! (finite value and weight) and ask more than 0; the others get 0.
//!
//! 1. Positive-weight participants are filled to a common level `λ`: bid
//!    `i` gets `min(askᵢ, λ·wᵢ)`, with `λ` as high as the capacity allows.
//!    So nobody gets more than asked, the sum never exceeds the capacity
//!    (up to float rounding), and what a satisfied bid leaves is shared by
//!    the unsatisfied ones in proportion to weight. A large ask from a
//!    low-reputation module gets little (`λ·wᵢ`).
//! 2. Zero-weight participants get nothing unless capacity is left once
//!    every positive-weight bid is satisfied; that rest is split among them
//!    by max-min fairness with **equal** weights (again never above an
//!    ask).
//!
//! Exploration, `Some((rng, ε))`: exactly one `f64` is drawn from `rng` per
//! call (whatever `ε`, so a seeded stream stays in step); if it is `< ε`,
//! this call explores: every participant's weight is raised to at least the
//! floor = the **upper median** of the participants' weights (the weight at
//! index `⌊k/2⌋` of the `k` weights sorted ascending), so low-reputation
//! (including zero-weight) modules get a share large enough to measure
//! their performance. Bids at or above the floor keep their weight.
//!
//! Influence: `allocᵢ / Σ alloc` (0 everywhere if nothing is allocated).
//! Cost: O(n log n), no allocation once `scratch` has grown to `n`.

use rand::Rng;

use super::{clear, Bid, SmallRng};

/// What a call did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Σ allocations (≤ the capacity).
    pub allocated: f64,
    /// Whether this call applied the exploration boost.
    pub explored: bool,
}

/// Splits `capacity` among `bids` into `alloc` (one entry per bid; bids
/// beyond `alloc.len()` get nothing) and writes `influence`. A non-positive
/// or NaN capacity allocates nothing; `+∞` satisfies every ask.
/// `scratch` is reused (cleared, capacity kept).
pub fn allocate(
    bids: &[Bid],
    capacity: f64,
    exploration: Option<(&mut SmallRng, f64)>,
    scratch: &mut Vec<usize>,
    alloc: &mut [f64],
    influence: &mut [f64],
) -> Split {
    let n = bids.len().min(alloc.len());
    clear(alloc, bids.len());
    clear(influence, bids.len());
    let ask = |i: usize| bids[i].value;
    let takes_part = |i: usize| bids[i].effective_weight().is_some() && bids[i].value > 0.0;
    let base = |i: usize| bids[i].effective_weight().unwrap_or(0.0);

    let explored = match exploration {
        Some((rng, eps)) => rng.random::<f64>() < eps,
        None => false,
    };
    let mut floor = 0.0;
    if explored {
        scratch.clear();
        scratch.extend((0..n).filter(|&i| takes_part(i)));
        scratch.sort_unstable_by(|&a, &b| base(a).total_cmp(&base(b)).then(a.cmp(&b)));
        if let Some(&m) = scratch.get(scratch.len() / 2) {
            floor = base(m);
        }
    }
    let weight = |i: usize| base(i).max(floor);

    scratch.clear();
    scratch.extend((0..n).filter(|&i| takes_part(i) && weight(i) > 0.0));
    let mut used = water_fill(scratch, capacity, ask, weight, alloc);
    let left = capacity - used;
    if left > 0.0 {
        scratch.clear();
        scratch.extend((0..n).filter(|&i| takes_part(i) && weight(i) <= 0.0));
        used += water_fill(scratch, left, ask, |_| 1.0, alloc);
    }

    if used > 0.0 {
        for (x, a) in influence.iter_mut().zip(alloc.iter()).take(n) {
            *x = a / used;
        }
    }
    Split {
        allocated: used,
        explored,
    }
}

/// Weighted max-min fair split of `capacity` among the items in `order`
/// (which it reorders): item `i` gets `min(ask(i), λ·weight(i))` in
/// `out[i]`. Preconditions (callers in this module guarantee them): every
/// index is `< out.len()`, `ask(i)` is finite and `≥ 0`, `weight(i) > 0`
/// and finite. Returns the amount given. `out` entries of the items double
/// as scratch (sort keys, then the weights' suffix sums) before they get
/// their share.
pub(crate) fn water_fill(
    order: &mut [usize],
    capacity: f64,
    ask: impl Fn(usize) -> f64,
    weight: impl Fn(usize) -> f64,
    out: &mut [f64],
) -> f64 {
    if order.is_empty() || capacity.is_nan() || capacity <= 0.0 {
        return 0.0;
    }
    // Items in the order they saturate: ascending ask / weight (the keys
    // are computed once, into `out`).
    for &i in order.iter() {
        out[i] = ask(i) / weight(i);
    }
    order.sort_unstable_by(|&a, &b| out[a].total_cmp(&out[b]).then(a.cmp(&b)));
    let mut acc = 0.0;
    for &i in order.iter().rev() {
        acc += weight(i);
        out[i] = acc;
    }
    let mut rem = capacity;
    let mut used = 0.0;
    for (k, &i) in order.iter().enumerate() {
        let (a, w, suffix) = (ask(i), weight(i), out[i]);
        if a <= rem * (w / suffix) {
            out[i] = a;
            rem = (rem - a).max(0.0);
            used += a;
            continue;
        }
        // Nobody from here on is satisfied: share `rem` by weight. The last
        // one takes the exact rest so rounding cannot exceed the capacity.
        let level = rem / suffix;
        let last = order.len() - 1;
        let mut given = 0.0;
        for (j, &i) in order.iter().enumerate().skip(k) {
            let share = if j == last {
                rem - given
            } else {
                level * weight(i)
            };
            let x = share.min(ask(i)).max(0.0);
            out[i] = x;
            given += x;
        }
        return used + given;
    }
    used
}

#[cfg(test)]
mod tests {
    use super::super::SeedableRng;
    use super::*;

    fn ask(value: f64, weight: f64) -> Bid {
        Bid {
            value,
            weight,
            is_default: false,
            module: 0,
        }
    }

    fn run(bids: &[Bid], capacity: f64) -> (Vec<f64>, Vec<f64>, Split) {
        let mut alloc = vec![0.0; bids.len()];
        let mut inf = vec![0.0; bids.len()];
        let s = allocate(bids, capacity, None, &mut Vec::new(), &mut alloc, &mut inf);
        (alloc, inf, s)
    }

    #[test]
    fn proportional_when_nobody_is_satisfied() {
        let (a, inf, s) = run(&[ask(100.0, 0.75), ask(100.0, 0.25)], 10.0);
        assert_eq!(a, [7.5, 2.5]);
        assert_eq!(inf, [0.75, 0.25]);
        assert_eq!(s.allocated, 10.0);
        assert!(!s.explored);
    }

    #[test]
    fn leftovers_are_redistributed_by_weight() {
        // Level 10/1.0 → bid 0 (ask 1 ≤ 5) satisfied; 9 left for weights
        // 0.25 and 0.25 → 4.5 each, bid 2 asks only 2 → 7 for bid 1.
        let (a, _, s) = run(&[ask(1.0, 0.5), ask(100.0, 0.25), ask(2.0, 0.25)], 10.0);
        assert_eq!(a, [1.0, 7.0, 2.0]);
        assert_eq!(s.allocated, 10.0);
    }

    #[test]
    fn large_ask_from_low_reputation_gets_little() {
        let (a, _, _) = run(&[ask(1000.0, 0.05), ask(50.0, 0.95)], 20.0);
        assert_eq!(a, [1.0, 19.0]);
    }

    #[test]
    fn zero_weights_share_only_the_rest_equally() {
        let bids = [ask(3.0, 0.5), ask(10.0, 0.0), ask(1.0, 0.0)];
        let (a, _, _) = run(&bids, 2.0);
        assert_eq!(a, [2.0, 0.0, 0.0]);
        let (a, inf, s) = run(&bids, 6.0);
        // 3 left: equal max-min → 1 (its ask) and 2.
        assert_eq!(a, [3.0, 2.0, 1.0]);
        assert_eq!(s.allocated, 6.0);
        assert_eq!(inf, [0.5, 2.0 / 6.0, 1.0 / 6.0]);
    }

    #[test]
    fn bad_input_gets_nothing() {
        let bids = [
            ask(f64::NAN, 1.0),
            ask(5.0, f64::NAN),
            ask(-4.0, 1.0),
            ask(f64::INFINITY, 1.0),
            ask(2.0, 1.0),
        ];
        let (a, _, _) = run(&bids, 100.0);
        assert_eq!(a, [0.0, 0.0, 0.0, 0.0, 2.0]);
        for c in [f64::NAN, -1.0, 0.0] {
            let (a, inf, s) = run(&bids, c);
            assert_eq!(a, [0.0; 5]);
            assert_eq!(inf, [0.0; 5]);
            assert_eq!(s.allocated, 0.0);
        }
        let (a, _, _) = run(&[ask(3.0, 0.1), ask(4.0, 0.0)], f64::INFINITY);
        assert_eq!(a, [3.0, 4.0]);
        let (a, _, _) = run(&[], 1.0);
        assert!(a.is_empty());
        // Short output slices: bids beyond them get nothing.
        let mut alloc = [0.0; 1];
        let s = allocate(&bids[3..], 10.0, None, &mut Vec::new(), &mut alloc, &mut []);
        assert_eq!((alloc, s.allocated), ([0.0], 0.0));
    }

    #[test]
    fn exploration_raises_low_weights_to_the_median() {
        let bids = [ask(100.0, 0.0), ask(100.0, 0.2), ask(100.0, 0.6)];
        let mut alloc = [0.0; 3];
        let mut scratch = Vec::new();
        let mut rng = SmallRng::seed_from_u64(7);
        // ε = 1: always explores; floor = 0.2 (index 1 of [0, 0.2, 0.6]).
        let s = allocate(
            &bids,
            10.0,
            Some((&mut rng, 1.0)),
            &mut scratch,
            &mut alloc,
            &mut [0.0; 3],
        );
        assert!(s.explored);
        assert_eq!(alloc, [2.0, 2.0, 6.0]);
        // ε = 0: never explores, but still draws one number.
        let s = allocate(
            &bids,
            10.0,
            Some((&mut rng, 0.0)),
            &mut scratch,
            &mut alloc,
            &mut [0.0; 3],
        );
        assert!(!s.explored);
        assert_eq!(alloc, [0.0, 2.5, 7.5]);
    }
}
