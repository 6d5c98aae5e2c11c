//! Judgement driven by hand: evidence in, report and state out.

use super::*;
use crate::module_key;

#[test]
fn ratings_move_reputation_and_are_numbered_in_the_state() {
    let mut j = Judgement::new(ReputationConfig::default(), &[], None);
    let key = module_key("vcp-acme", "m1");
    let before = j.report(0);
    assert!(before.reputation.is_empty());
    j.take(
        Evidence::Feedback {
            key: key.clone(),
            rating: 5.0,
            number: Some(7),
        },
        1_000,
    )
    .unwrap();
    assert!(j
        .take(
            Evidence::Feedback {
                key: key.clone(),
                rating: 9.0,
                number: None,
            },
            1_000,
        )
        .is_err());
    let r = j.report(1_000);
    let m = r
        .reputation
        .iter()
        .find(|m| m.module == "m1" && m.control_plane == "vcp-acme")
        .unwrap();
    assert!(m.components.feedback > j.prior(), "{m:?}");
    assert_eq!(j.state().feedback, 7);
}

#[test]
fn the_state_round_trips_and_restores_the_same_judgement() {
    let mut j = Judgement::new(ReputationConfig::default(), &[], None);
    let key = module_key("p", "m");
    for i in 0..5 {
        j.take(
            Evidence::Answered {
                key: key.clone(),
                on_time: i % 2 == 0,
            },
            i * 100,
        )
        .unwrap();
    }
    let decision = Decision {
        round: 3,
        target: vcp_common::module::Target::ServiceSet("web".into()),
        parameter: "instances".into(),
        value: 4.0,
        module: "m".into(),
        control_plane: "p".into(),
        contenders: 1,
        influences: vec![(key.clone(), 1.0)],
    };
    j.take(Evidence::Decisions(vec![Arc::new(decision)]), 600)
        .unwrap();
    assert_eq!(j.encode_state(), j.state().encode());
    let state = JudgeState::decode(&j.encode_state()).unwrap();
    assert_eq!(state, j.state());
    let back = Judgement::new(ReputationConfig::default(), &[], Some(state));
    assert_eq!(back.report(1_000), j.report(1_000));
}

#[test]
fn an_evaluation_without_readings_gives_no_verdict() {
    let mut j = Judgement::new(ReputationConfig::default(), &[], None);
    j.evaluate(&[], &View::default(), &SettingsMap::default(), 1_000);
    assert!(j.report(1_000).goals.is_empty());
}
