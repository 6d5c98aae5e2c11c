use super::*;
use proptest::prelude::*;

type Key = (String, String);

fn key(cp: &str, m: &str) -> Key {
    (cp.to_string(), m.to_string())
}

fn rep() -> Reputation<Key> {
    Reputation::new(ReputationConfig::default())
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

const TEN_MIN: i64 = 600_000;
const HOUR: i64 = 3_600_000;

#[test]
fn new_module_is_at_the_prior() {
    let r = rep();
    let k = key("cp", "new");
    assert_eq!(r.score(&k, 0), 0.5);
    let c = r.components(&k, 0);
    assert_eq!(
        (c.feedback, c.goal, c.deadline, c.efficiency),
        (0.5, 0.5, 0.5, 0.5)
    );
    assert_eq!(c.evidence, Evidence::default());
}

#[test]
fn missing_every_deadline_scores_below_meeting_them() {
    let mut r = rep();
    let (late, prompt) = (key("cp", "late"), key("cp", "prompt"));
    for _ in 0..4 {
        r.answered(&late, false, 0);
        r.answered(&prompt, true, 0);
    }
    // (0.5·2 + 0) / (2 + 4) and (0.5·2 + 4) / (2 + 4); deadline is the
    // only component with evidence, so it is the score.
    close(r.score(&late, 0), 1.0 / 6.0);
    close(r.score(&prompt, 0), 5.0 / 6.0);
    let c = r.components(&late, 0);
    close(c.deadline, 1.0 / 6.0);
    assert_eq!(c.evidence.deadline, 4.0);
    assert_eq!((c.feedback, c.goal, c.efficiency), (0.5, 0.5, 0.5));
}

#[test]
fn decay_lets_an_old_bad_record_fade() {
    let mut r = rep();
    let k = key("cp", "m");
    for _ in 0..6 {
        r.answered(&k, false, 0);
    }
    close(r.score(&k, 0), 1.0 / 8.0);
    // One half-life (10 min): W = 3 → 1 / 5.
    close(r.score(&k, TEN_MIN), 0.2);
    // Ten half-lives: W = 6/1024 → 1 / (2 + 6/1024), nearly the prior.
    close(r.score(&k, 10 * TEN_MIN), 1.0 / (2.0 + 6.0 / 1024.0));
    // And it recovers: 4 on-time answers then.
    for _ in 0..4 {
        r.answered(&k, true, 10 * TEN_MIN);
    }
    close(r.score(&k, 10 * TEN_MIN), 5.0 / (6.0 + 6.0 / 1024.0));
    // A fresh bad record is worse than an old one.
    let fresh = key("cp", "fresh");
    for _ in 0..6 {
        r.answered(&fresh, false, 10 * TEN_MIN);
    }
    assert!(r.score(&fresh, 10 * TEN_MIN) < r.score(&k, 10 * TEN_MIN));
}

#[test]
fn incremental_decay_between_observations() {
    let mut r = rep();
    let k = key("cp", "m");
    r.answered(&k, false, 0);
    r.answered(&k, true, TEN_MIN);
    // S = 0·½ + 1 = 1, W = ½ + 1 = 1.5 → (1 + 1) / (2 + 1.5) = 4/7.
    close(r.score(&k, TEN_MIN), 4.0 / 7.0);
    // Out of order: a miss from time 0 arriving now weighs ½.
    r.answered(&k, false, 0);
    close(r.score(&k, TEN_MIN), 2.0 / 4.0);
    // Reading before the latest observation does not amplify.
    close(r.score(&k, 0), 2.0 / 4.0);
}

#[test]
fn weighted_combination_over_components_with_evidence() {
    let mut r = rep();
    let k = key("cp", "m");
    r.feedback(&k, 5.0, 0).unwrap(); // v = (1 + 1) / 3 = 2/3
    r.goal_window(&k, false, 0); // v = 1/3
                                 // (0.2·2/3 + 0.4·1/3) / (0.2 + 0.4)
    close(r.score(&k, 0), 4.0 / 9.0);

    let k = key("cp", "all");
    r.feedback(&k, 3.0, 0).unwrap(); // x = 0.5 → v = 0.5
    r.goal_window(&k, true, 0); // 2/3
    r.answered(&k, true, 0); // 2/3
    r.efficiency(&k, 1.0, 200.0, 100.0, 0).unwrap(); // x = 0.5 → 0.5
    let c = r.components(&k, 0);
    close(c.feedback, 0.5);
    close(c.goal, 2.0 / 3.0);
    close(c.deadline, 2.0 / 3.0);
    close(c.efficiency, 0.5);
    close(
        c.score,
        0.2 * 0.5 + 0.4 * 2.0 / 3.0 + 0.2 * 2.0 / 3.0 + 0.2 * 0.5,
    );
    close(c.score, 0.6);
}

#[test]
fn feedback_half_life_is_a_day() {
    let mut r = rep();
    let k = key("cp", "m");
    r.feedback(&k, 1.0, 0).unwrap();
    r.feedback(&k, 1.0, 0).unwrap();
    // W = 2 → 1/4; a day later W = 1 → 1/3.
    close(r.score(&k, 0), 0.25);
    close(r.score(&k, 24 * HOUR), 1.0 / 3.0);
}

#[test]
fn ratings_outside_one_to_five_are_errors() {
    let mut r = rep();
    let k = key("cp", "m");
    for bad in [0.0, 0.99, 5.01, 6.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            r.feedback(&k, bad, 0),
            Err(ReputationError::RatingOutOfRange(_))
        ));
    }
    assert_eq!(r.ignored(), 7);
    let c = r.components(&k, 0);
    assert_eq!(c.ignored, 7);
    assert_eq!(c.evidence.feedback, 0.0);
    assert_eq!(c.score, 0.5);
    r.feedback(&k, 1.0, 0).unwrap();
    r.feedback(&k, 5.0, 0).unwrap();
    close(r.components(&k, 0).feedback, (1.0 + 0.0 + 1.0) / 4.0);
}

#[test]
fn efficiency_formula_and_bad_evidence() {
    let mut r = rep();
    let x = |share, cost, base| {
        let mut r = rep();
        let k = key("cp", "e");
        r.efficiency(&k, share, cost, base, 0).unwrap();
        // v = (1 + x) / 3  ⇒  x = 3v − 1
        3.0 * r.components(&k, 0).efficiency - 1.0
    };
    close(x(0.8, 50.0, 100.0), 1.0); // 1.6, clamped
    close(x(0.9, 150.0, 100.0), 0.6);
    close(x(1.0, 0.0, 0.0), 0.0); // no baseline, no credit
    close(x(1.0, 0.0, 10.0), 1.0); // free: ε floor, clamped
    close(x(2.0, 100.0, 100.0), 1.0); // share clamped to 1
    close(x(-1.0, 100.0, 100.0), 0.0);

    let k = key("cp", "m");
    for (share, cost, base) in [
        (f64::NAN, 1.0, 1.0),
        (1.0, f64::INFINITY, 1.0),
        (1.0, 1.0, f64::NAN),
        (1.0, -1.0, 1.0),
        (1.0, 1.0, -0.5),
    ] {
        assert!(matches!(
            r.efficiency(&k, share, cost, base, 0),
            Err(ReputationError::InvalidEvidence { .. })
        ));
    }
    assert_eq!(r.components(&k, 0).ignored, 5);
    assert_eq!(r.score(&k, 0), 0.5);
}

#[test]
fn snapshot_reads_scores_and_defaults_to_the_prior() {
    let mut r = rep();
    let (a, b) = (key("cp", "a"), key("cp", "b"));
    r.answered(&a, false, 0);
    r.goal_window(&b, true, 0);
    let snap = r.snapshot(TEN_MIN);
    assert_eq!(snap.at_ms(), TEN_MIN);
    assert_eq!(snap.len(), 2);
    assert_eq!(snap.get(&a), r.score(&a, TEN_MIN));
    close(snap.get(&a), 1.0 / 2.5);
    close(
        snap.get(&b),
        (1.0 + 2f64.powf(-1.0 / 6.0)) / (2.0 + 2f64.powf(-1.0 / 6.0)),
    );
    assert_eq!(snap.get(&key("cp", "unknown")), 0.5);
    assert!(!snap.contains(&key("cp", "unknown")));
    assert_eq!(snap.sorted().first().map(|e| e.0.clone()), Some(a.clone()));

    let slot = shared(ReputationSnapshot::default());
    assert_eq!(slot.load().get(&a), 0.5);
    r.publish(&slot, TEN_MIN);
    close(slot.load().get(&a), 0.4);

    let prior = Reputation::<Key>::new(ReputationConfig {
        prior: 0.3,
        ..ReputationConfig::default()
    });
    assert_eq!(prior.snapshot(0).get(&a), 0.3);
    assert!(r.remove(&a));
    assert_eq!(r.snapshot(0).get(&a), 0.5);
}

#[test]
fn zero_half_life_keeps_only_the_latest_millisecond() {
    let mut r = Reputation::new(ReputationConfig {
        deadline_half_life_ms: 0,
        ..ReputationConfig::default()
    });
    let k = key("cp", "m");
    r.answered(&k, false, 0);
    r.answered(&k, true, 1);
    r.answered(&k, true, 1);
    close(r.score(&k, 1), 3.0 / 4.0);
    close(r.score(&k, 2), 0.5); // evidence gone: back to the prior
}

#[test]
fn config_from_toml_validation_and_sanitising() {
    let c: ReputationConfig = toml::from_str("").unwrap();
    assert_eq!(c, ReputationConfig::default());
    assert_eq!(c.feedback_half_life_ms, 86_400_000);
    assert_eq!(c.deadline_half_life_ms, 600_000);
    let c: ReputationConfig = toml::from_str("goal_weight = 1.0\nprior_weight = 5").unwrap();
    assert_eq!(
        (c.goal_weight, c.prior_weight, c.feedback_weight),
        (1.0, 5.0, 0.2)
    );
    assert!(toml::from_str::<ReputationConfig>("gaol_weight = 1.0").is_err());

    let bad = ReputationConfig {
        prior: 1.5,
        prior_weight: f64::NAN,
        goal_weight: -1.0,
        ..ReputationConfig::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(ReputationError::InvalidConfig { field: "prior", .. })
    ));
    let fixed = bad.sanitized();
    assert_eq!(fixed, ReputationConfig::default());
    assert!(fixed.validate().is_ok());
    let zero = ReputationConfig {
        feedback_weight: 0.0,
        goal_weight: 0.0,
        deadline_weight: 0.0,
        efficiency_weight: 0.0,
        ..ReputationConfig::default()
    };
    assert!(zero.validate().is_err());
    assert_eq!(zero.sanitized(), ReputationConfig::default());
}

#[test]
fn zero_weight_component_does_not_count() {
    let mut r = Reputation::new(ReputationConfig {
        feedback_weight: 0.0,
        ..ReputationConfig::default()
    });
    let k = key("cp", "m");
    r.feedback(&k, 1.0, 0).unwrap();
    assert_eq!(r.score(&k, 0), 0.5);
    r.goal_window(&k, true, 0);
    close(r.score(&k, 0), 2.0 / 3.0);
}

#[derive(Debug, Clone)]
enum Ev {
    Feedback(f64),
    Goal(bool),
    Answered(bool),
    Efficiency(f64, f64, f64),
}

fn odd_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -2.0..8.0f64,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
    ]
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        odd_f64().prop_map(Ev::Feedback),
        (1u8..=5).prop_map(|r| Ev::Feedback(r as f64)),
        any::<bool>().prop_map(Ev::Goal),
        any::<bool>().prop_map(Ev::Answered),
        (odd_f64(), odd_f64(), odd_f64()).prop_map(|(a, b, c)| Ev::Efficiency(a, b, c)),
    ]
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        0i64..100 * HOUR,
        Just(i64::MIN),
        Just(i64::MAX)
    ]
}

fn config() -> impl Strategy<Value = ReputationConfig> {
    (
        odd_f64(),
        odd_f64(),
        odd_f64(),
        odd_f64(),
        any::<u64>(),
        0u64..4,
    )
        .prop_map(
            |(prior, prior_weight, goal_weight, feedback_weight, hl, zero)| ReputationConfig {
                prior,
                prior_weight,
                goal_weight,
                feedback_weight,
                deadline_half_life_ms: if zero == 0 { 0 } else { hl },
                ..ReputationConfig::default()
            },
        )
}

proptest! {
    // No regression files outside this module's sources.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn components_and_score_stay_in_unit_interval(
        cfg in prop_oneof![Just(ReputationConfig::default()), config()],
        evs in prop::collection::vec((0usize..3, ev(), time()), 0..60),
        reads in prop::collection::vec(time(), 1..5),
    ) {
        let mut r: Reputation<usize> = Reputation::new(cfg);
        for (k, e, t) in &evs {
            let _ = match e {
                Ev::Feedback(x) => r.feedback(k, *x, *t),
                Ev::Goal(m) => { r.goal_window(k, *m, *t); Ok(()) }
                Ev::Answered(o) => { r.answered(k, *o, *t); Ok(()) }
                Ev::Efficiency(a, b, c) => r.efficiency(k, *a, *b, *c, *t),
            };
        }
        let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        for now in reads {
            for k in 0..4usize {
                let c = r.components(&k, now);
                for v in [c.feedback, c.goal, c.deadline, c.efficiency, c.score] {
                    prop_assert!(unit(v), "{c:?}");
                }
                prop_assert_eq!(c.score, r.score(&k, now));
                for w in [c.evidence.feedback, c.evidence.goal, c.evidence.deadline, c.evidence.efficiency] {
                    prop_assert!(w.is_finite() && w >= 0.0);
                }
            }
            let snap = r.snapshot(now);
            prop_assert!(unit(snap.default_score()));
            for (_, s) in snap.sorted() {
                prop_assert!(unit(s));
            }
        }
    }
}
