//! Precedence: the bid of the module with the best reputation wins.
//!
//! Order, best first: higher weight; then the default module; then the
//! lowest `module` id; then the lowest index (only if the caller passed two
//! bids with the same module id). Skipped bids (non-finite value or weight)
//! never win. Influence: 1 for the winner, 0 for the others.

use std::cmp::Ordering;

use super::{clear, Bid};

/// Returns the index of the winning bid and writes its influence, or
/// `None` (zero influence) if no bid counts.
pub fn precedence(bids: &[Bid], influence: &mut [f64]) -> Option<usize> {
    clear(influence, bids.len());
    let w = winner(bids)?;
    if let Some(x) = influence.get_mut(w) {
        *x = 1.0;
    }
    Some(w)
}

/// The winner among all bids, without influence.
pub fn winner(bids: &[Bid]) -> Option<usize> {
    winner_where(bids, |_| true)
}

/// The precedence winner among the bids that pass `keep` (used by the
/// conditional rules). O(n), no allocation.
pub fn winner_where(bids: &[Bid], keep: impl Fn(&Bid) -> bool) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, b) in bids.iter().enumerate() {
        let Some(w) = b.effective_weight() else {
            continue;
        };
        if !keep(b) {
            continue;
        }
        match best {
            Some((j, bw)) if !beats((b, w), (&bids[j], bw)) => {}
            _ => best = Some((i, w)),
        }
    }
    best.map(|(i, _)| i)
}

/// Whether `a` strictly beats `b` (earlier index wins full ties, so a later
/// bid must be strictly better).
fn beats((a, aw): (&Bid, f64), (b, bw): (&Bid, f64)) -> bool {
    match aw.total_cmp(&bw) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => match (a.is_default, b.is_default) {
            (true, false) => true,
            (false, true) => false,
            _ => a.module < b.module,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(value: f64, weight: f64, is_default: bool, module: u32) -> Bid {
        Bid::test(value, weight, is_default, module)
    }

    #[test]
    fn best_reputation_wins() {
        let bids = [
            bid(1.0, 0.4, true, 0),
            bid(2.0, 0.9, false, 7),
            bid(3.0, 0.8, false, 3),
        ];
        let mut inf = [9.0; 3];
        assert_eq!(precedence(&bids, &mut inf), Some(1));
        assert_eq!(inf, [0.0, 1.0, 0.0]);
    }

    #[test]
    fn ties_go_to_default_then_lowest_id() {
        let bids = [
            bid(1.0, 0.5, false, 1),
            bid(2.0, 0.5, true, 9),
            bid(3.0, 0.5, true, 4),
        ];
        assert_eq!(winner(&bids), Some(2));
        let bids = [bid(1.0, 0.5, false, 5), bid(2.0, 0.5, false, 2)];
        assert_eq!(winner(&bids), Some(1));
        // Same module id twice: the first one.
        let bids = [bid(1.0, 0.5, false, 2), bid(2.0, 0.5, false, 2)];
        assert_eq!(winner(&bids), Some(0));
    }

    #[test]
    fn bad_input() {
        let mut inf = [];
        assert_eq!(precedence(&[], &mut inf), None);
        let bids = [
            bid(f64::NAN, 1.0, false, 0),
            bid(1.0, f64::INFINITY, false, 1),
            bid(2.0, -3.0, false, 2),
            bid(3.0, 0.0, false, 3),
        ];
        // Negative weight counts as 0: tie with bid 3, lower id wins.
        let mut inf = [0.0; 4];
        assert_eq!(precedence(&bids, &mut inf), Some(2));
        assert_eq!(inf, [0.0, 0.0, 1.0, 0.0]);
        // A short influence slice is fine.
        let mut short = [0.0; 1];
        assert_eq!(precedence(&bids, &mut short), Some(2));
        let nan = [bid(f64::NAN, 0.5, true, 0)];
        assert_eq!(precedence(&nan, &mut [0.0]), None);
    }
}
