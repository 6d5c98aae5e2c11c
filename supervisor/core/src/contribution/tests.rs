use super::*;
use proptest::prelude::*;

type C = Contribution<&'static str, &'static str>;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn windows_are_attributed_by_influence_of_the_decision_in_force() {
    let mut c = C::new();
    c.record_decision(&"web", 1, &[("a", 0.75), ("b", 0.25)], 0)
        .unwrap();
    c.record_window(&"web", 1.0, 1_000).unwrap();
    c.record_window(&"web", 0.0, 2_000).unwrap(); // missed: no credit
    close(c.contribution(&"a"), 0.75);
    close(c.contribution(&"b"), 0.25);
    assert_eq!(c.windows(&"a"), 2);

    // Precedence winner in round 2.
    c.record_decision(&"web", 2, &[("b", 1.0)], 3_000).unwrap();
    c.record_window(&"web", 1.0, 4_000).unwrap();
    c.record_window(&"web", 0.5, 5_000).unwrap(); // graded
    close(c.contribution(&"b"), 1.75);
    assert_eq!(c.reward_shares(), vec![("a", 0.3), ("b", 0.7)]);
    let all = c.contributions();
    assert_eq!(all, vec![("a", 0.75, 0.3), ("b", 1.75, 0.7)]);
    assert_eq!(c.in_force(&"web").map(|d| d.round), Some(2));
    assert_eq!(c.stats().attributed_windows, 4);
}

#[test]
fn influences_are_cleaned_merged_and_normalised() {
    let mut c = C::new();
    let infl = [
        ("a", 2.0),
        ("b", 1.0),
        ("a", 1.0),
        ("c", f64::NAN),
        ("d", -1.0),
        ("e", f64::INFINITY),
        ("f", 0.0),
    ];
    c.record_decision(&"t", 7, &infl, 0).unwrap();
    assert_eq!(
        c.in_force(&"t").map(|d| d.influences.clone()),
        Some(vec![("a", 0.75), ("b", 0.25)])
    );
    assert_eq!(c.stats().ignored_influences, 3);
    c.record_window(&"t", 2.0, 0).unwrap();
    assert_eq!(c.contributions(), vec![("a", 1.5, 0.75), ("b", 0.5, 0.25)]);
}

#[test]
fn rounds_move_forward_and_same_round_replaces() {
    let mut c = C::new();
    c.record_decision(&"t", 5, &[("a", 1.0)], 0).unwrap();
    assert_eq!(
        c.record_decision(&"t", 4, &[("b", 1.0)], 10),
        Err(ContributionError::StaleRound {
            round: 4,
            in_force: 5
        })
    );
    c.record_decision(&"t", 5, &[("b", 1.0)], 20).unwrap();
    c.record_window(&"t", 1.0, 30).unwrap();
    assert_eq!(c.contributions(), vec![("b", 1.0, 1.0)]);
    assert_eq!(c.stats().stale_decisions, 1);
    assert_eq!(c.stats().decisions, 2);
}

#[test]
fn window_goes_to_the_decision_in_force_at_its_time() {
    let mut c = C::new();
    assert_eq!(
        c.record_window(&"t", 1.0, 0),
        Err(ContributionError::NoDecision)
    );
    c.record_decision(&"t", 1, &[("a", 1.0)], 1_000).unwrap();
    assert_eq!(
        c.record_window(&"t", 1.0, 999),
        Err(ContributionError::NoDecision)
    );
    c.record_decision(&"t", 2, &[("b", 1.0)], 2_000).unwrap();
    // Reported after round 2 was decided, but for a window ending at 1.5 s.
    c.record_window(&"t", 1.0, 1_500).unwrap();
    c.record_window(&"t", 1.0, 2_000).unwrap();
    assert_eq!(c.contributions(), vec![("a", 1.0, 0.5), ("b", 1.0, 0.5)]);
    assert_eq!(c.stats().windows_without_decision, 2);
    // Other targets are independent.
    assert_eq!(
        c.record_window(&"other", 1.0, 5_000),
        Err(ContributionError::NoDecision)
    );
}

#[test]
fn history_is_bounded() {
    let mut c = C::new();
    for round in 0..10u64 {
        let m = if round == 0 { "first" } else { "later" };
        c.record_decision(&"t", round, &[(m, 1.0)], round as i64 * 10)
            .unwrap();
    }
    // Round 0's decision has been dropped from the history.
    assert_eq!(
        c.record_window(&"t", 1.0, 5),
        Err(ContributionError::NoDecision)
    );
    c.record_window(&"t", 1.0, 65).unwrap();
    assert_eq!(c.contributions(), vec![("later", 1.0, 1.0)]);
}

#[test]
fn empty_decision_credits_nobody_and_bad_outcomes_are_ignored() {
    let mut c = C::new();
    c.record_decision(&"t", 1, &[("a", 1.0)], 0).unwrap();
    c.record_decision(&"t", 2, &[], 10).unwrap();
    c.record_window(&"t", 1.0, 20).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            c.record_window(&"t", bad, 20),
            Err(ContributionError::NonFiniteOutcome(_))
        ));
    }
    assert!(c.contributions().is_empty());
    assert!(c.reward_shares().is_empty());
    let s = c.stats();
    assert_eq!((s.unattributed_windows, s.ignored_outcomes), (1, 3));
}

#[test]
fn negative_contributions_get_no_reward() {
    let mut c = C::new();
    c.record_decision(&"t", 1, &[("a", 0.5), ("b", 0.5)], 0)
        .unwrap();
    c.record_window(&"t", -1.0, 0).unwrap();
    assert!(c.reward_shares().is_empty());
    c.record_decision(&"t", 2, &[("a", 1.0)], 1).unwrap();
    c.record_window(&"t", 2.0, 1).unwrap();
    assert_eq!(c.reward_shares(), vec![("a", 1.0)]);
    assert_eq!(c.contributions(), vec![("a", 1.5, 1.0), ("b", -0.5, 0.0)]);
    c.reset_contributions();
    assert!(c.contributions().is_empty());
    assert!(c.in_force(&"t").is_some());
    assert!(c.remove_target(&"t"));
    assert!(c.in_force(&"t").is_none());
}

#[test]
fn a_share_too_small_for_f64_is_no_share() {
    let mut c = C::new();
    c.record_decision(&"t", 1, &[("tiny", 1.0)], 0).unwrap();
    c.record_window(&"t", 5e-324, 0).unwrap();
    c.record_decision(&"t", 2, &[("big", 1.0)], 1).unwrap();
    c.record_window(&"t", 1e6, 1).unwrap();
    assert_eq!(c.reward_shares(), vec![("big", 1.0)]);
    assert_eq!(c.contributions()[1], ("tiny", 5e-324, 0.0));
}

#[test]
fn split_amount_exact_values() {
    let w3 = [("a", 1.0), ("b", 1.0), ("c", 1.0)];
    assert_eq!(
        split_amount(100, &w3),
        vec![("a", 34), ("b", 33), ("c", 33)]
    );
    assert_eq!(
        split_amount(-100, &w3),
        vec![("a", -34), ("b", -33), ("c", -33)]
    );
    assert_eq!(
        split_amount(10, &[("a", 0.5), ("b", 0.3), ("c", 0.2)]),
        vec![("a", 5), ("b", 3), ("c", 2)]
    );
    // 7 · (0.1, 0.2, 0.7) = 0.7, 1.4, 4.9 → 0, 1, 4 + 2 left: c (.9), a (.7).
    assert_eq!(
        split_amount(7, &[("a", 0.1), ("b", 0.2), ("c", 0.7)]),
        vec![("a", 1), ("b", 1), ("c", 5)]
    );
    assert_eq!(
        split_amount(1, &[("a", 1.0), ("b", 1.0)]),
        vec![("a", 1), ("b", 0)]
    );
    // Negative and NaN weights count as 0; all-zero splits equally.
    assert_eq!(
        split_amount(10, &[("a", -1.0), ("b", 1.0), ("c", f64::NAN)]),
        vec![("a", 0), ("b", 10), ("c", 0)]
    );
    assert_eq!(
        split_amount(10, &[("a", 0.0), ("b", -2.0), ("c", f64::INFINITY)]),
        vec![("a", 4), ("b", 3), ("c", 3)]
    );
    assert_eq!(split_amount::<&str>(10, &[]), vec![]);
    assert_eq!(split_amount(0, &w3), vec![("a", 0), ("b", 0), ("c", 0)]);
    assert_eq!(split_amount(i64::MAX, &[("a", 1.0)]), vec![("a", i64::MAX)]);
    assert_eq!(split_amount(i64::MIN, &[("a", 1.0)]), vec![("a", i64::MIN)]);
    let min2 = split_amount(i64::MIN, &[("a", 1.0), ("b", 1.0)]);
    assert_eq!(min2, vec![("a", i64::MIN / 2), ("b", i64::MIN / 2)]);
    // Shares from reward_shares settle exactly.
    let shares = [("a", 0.3), ("b", 0.7)];
    assert_eq!(
        split_amount(1_000_001, &shares),
        vec![("a", 300_000), ("b", 700_001)]
    );
}

fn weight() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..1e6f64,
        1 => any::<f64>(),
        1 => Just(0.0),
        1 => Just(-1.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(f64::MAX),
    ]
}

proptest! {
    // No regression files outside this module's sources.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn split_sums_exactly_and_is_deterministic(
        total in prop_oneof![any::<i64>(), -1_000_000i64..1_000_000, Just(i64::MIN), Just(i64::MAX)],
        weights in prop::collection::vec((0u32..1000, weight()), 0..20),
    ) {
        let parts = split_amount(total, &weights);
        prop_assert_eq!(parts.len(), weights.len());
        let keys: Vec<u32> = parts.iter().map(|p| p.0).collect();
        let in_keys: Vec<u32> = weights.iter().map(|w| w.0).collect();
        prop_assert_eq!(keys, in_keys);
        if !weights.is_empty() {
            let sum: i128 = parts.iter().map(|p| p.1 as i128).sum();
            prop_assert_eq!(sum, total as i128);
        }
        for (_, p) in &parts {
            if total >= 0 { prop_assert!(*p >= 0) } else { prop_assert!(*p <= 0) }
        }
        prop_assert_eq!(&parts, &split_amount(total, &weights));
    }

    #[test]
    fn split_is_proportional_within_one_unit(
        total in 0i64..1_000_000_000_000,
        weights in prop::collection::vec((any::<u8>(), 0.0..1e6f64), 1..20),
    ) {
        let sum: f64 = weights.iter().map(|w| w.1).sum();
        prop_assume!(sum > 0.0);
        for ((_, part), (_, w)) in split_amount(total, &weights).iter().zip(&weights) {
            let exact = total as f64 * w / sum;
            prop_assert!((*part as f64 - exact).abs() < 1.0 + 1e-3, "{part} vs {exact}");
        }
    }

    #[test]
    fn shares_are_a_distribution(
        ops in prop::collection::vec(
            (0u8..3, 0u64..6, prop::collection::vec((0u8..5, weight()), 0..4), weight(), -5i64..100),
            0..60),
    ) {
        let mut c: Contribution<u8, u8> = Contribution::new();
        for (target, round, infl, outcome, t) in &ops {
            let _ = c.record_decision(target, *round, infl, *t);
            let _ = c.record_window(target, *outcome - 0.5, *t);
        }
        let shares = c.reward_shares();
        if !shares.is_empty() {
            let s: f64 = shares.iter().map(|x| x.1).sum();
            prop_assert!((s - 1.0).abs() < 1e-9);
        }
        for (_, share) in &shares {
            prop_assert!(share.is_finite() && *share > 0.0 && *share <= 1.0);
        }
        for (_, cum, share) in c.contributions() {
            prop_assert!(cum.is_finite() && share.is_finite());
        }
        for target in 0u8..3 {
            if let Some(d) = c.in_force(&target) {
                let s: f64 = d.influences.iter().map(|x| x.1).sum();
                prop_assert!(d.influences.is_empty() || (s - 1.0).abs() < 1e-9);
            }
        }
    }
}
