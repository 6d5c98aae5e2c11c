//! The module session driven by hand.

use std::time::{Duration, Instant};

use super::*;
use crate::frame::{encode_frame, Response, PROTOCOL_VERSION};
use crate::module::{Kind, SensorSelector, Target};
use crate::view::SensorView;

const ID: &str = "acme-predictive";

fn spec(id: &str) -> ModuleSpec {
    ModuleSpec {
        id: id.into(),
        kind: Kind::Autoscaling,
        vendor: "v".into(),
        version: "1".into(),
        inputs: vec![SensorSelector::metric("*")],
        outputs: vec!["instances".into()],
        goals: vec![],
        deadline_ms: 50,
        custom_sensors: vec![],
    }
}

fn bytes(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        encode_frame(f, &mut out);
    }
    out
}

fn events(s: &mut ModuleSession) -> Vec<ModuleEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn closed(evs: &[ModuleEvent]) -> Option<&Close> {
    evs.iter().find_map(|e| match e {
        ModuleEvent::Closed(c) => Some(c),
        _ => None,
    })
}

fn respond(round: u64, n: usize) -> Frame {
    Frame::Respond(Response {
        round,
        proposals: (0..n)
            .map(|_| Proposal {
                target: Target::ServiceSet("acme-shop".into()),
                parameter: "instances".into(),
                value: 3.0,
            })
            .collect(),
    })
}

fn solicitation(round: u64) -> Solicitation {
    Solicitation {
        round,
        kind: Kind::Autoscaling,
        budget_ms: 50,
        view: SensorView::default(),
    }
}

fn serving(now: Instant) -> ModuleSession {
    let mut s = ModuleSession::new(ID, ModuleSessionLimits::default(), now);
    s.handle_input(&bytes(&[Frame::Register(spec(ID))]), now);
    assert!(matches!(events(&mut s)[..], [ModuleEvent::Register(_)]));
    s.accept(Registered {
        protocol: PROTOCOL_VERSION,
        control_plane: "vcp-acme".into(),
        customer: "acme".into(),
    });
    assert!(s.is_idle());
    s.take_transmit();
    s
}

#[test]
fn one_answer_per_solicitation() {
    let t = Instant::now();
    let mut s = serving(t);
    assert!(s.solicit(&solicitation(1)));
    assert!(
        !s.solicit(&solicitation(2)),
        "busy until round 1 is answered"
    );
    assert_eq!(s.pending(), Some(1));
    s.handle_input(&bytes(&[respond(1, 2)]), t);
    let ev = events(&mut s);
    assert!(
        matches!(&ev[..], [ModuleEvent::Response { round: 1, proposals, .. }] if proposals.len() == 2)
    );
    assert!(s.is_idle());
}

#[test]
fn unsolicited_duplicate_and_foreign_round_answers_are_protocol_errors() {
    let t = Instant::now();
    // No round pending.
    let mut s = serving(t);
    s.handle_input(&bytes(&[respond(7, 20_000)]), t);
    let ev = events(&mut s);
    assert!(!ev.iter().any(|e| matches!(e, ModuleEvent::Response { .. })));
    let c = closed(&ev).unwrap();
    assert_eq!(c.code, close::PROTOCOL);
    assert!(c.reason.contains("unsolicited response"), "{}", c.reason);

    // The same round twice.
    let mut s = serving(t);
    s.solicit(&solicitation(1));
    s.handle_input(&bytes(&[respond(1, 1), respond(1, 1)]), t);
    let ev = events(&mut s);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, ModuleEvent::Response { .. }))
            .count(),
        1
    );
    assert!(closed(&ev).is_some());

    // Another round than the pending one.
    let mut s = serving(t);
    s.solicit(&solicitation(4));
    s.handle_input(&bytes(&[respond(3, 1)]), t);
    let ev = events(&mut s);
    assert!(closed(&ev)
        .unwrap()
        .reason
        .contains("round 3 while round 4"));
}

#[test]
fn registration_checks_the_certificate_and_the_spec() {
    let t = Instant::now();
    let mut s = ModuleSession::new(ID, ModuleSessionLimits::default(), t);
    s.handle_input(&bytes(&[Frame::Register(spec("globex-predictive"))]), t);
    assert_eq!(closed(&events(&mut s)).unwrap().code, close::AUTH);

    let mut s = ModuleSession::new(ID, ModuleSessionLimits::default(), t);
    let mut bad = spec(ID);
    bad.outputs = (0..65).map(|i| format!("p{i}")).collect();
    s.handle_input(&bytes(&[Frame::Register(bad)]), t);
    assert!(closed(&events(&mut s)).unwrap().reason.contains("bad spec"));

    let mut s = ModuleSession::new(ID, ModuleSessionLimits::default(), t);
    let mut long = spec(ID);
    long.outputs = vec!["x".repeat(100_000)];
    s.handle_input(&bytes(&[Frame::Register(long)]), t);
    let reason = closed(&events(&mut s)).unwrap().reason.clone();
    assert!(reason.contains("a name of 100000 bytes"), "{reason}");

    let mut s = ModuleSession::new(ID, ModuleSessionLimits::default(), t);
    s.handle_input(&bytes(&[respond(1, 1)]), t);
    assert!(closed(&events(&mut s))
        .unwrap()
        .reason
        .contains("expected Register"));

    let mut s = ModuleSession::new(ID, ModuleSessionLimits::default(), t);
    s.handle_input(&bytes(&[Frame::Register(spec(ID))]), t);
    events(&mut s);
    s.refuse(close::AUTH, "module \"acme-predictive\" is not used".into());
    assert!(closed(&events(&mut s)).is_some());
    assert!(!s.solicit(&solicitation(1)));
}

#[test]
fn no_register_by_the_deadline_closes() {
    let t = Instant::now();
    let mut s = ModuleSession::new(ID, ModuleSessionLimits::default(), t);
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(
        deadline,
        t + ModuleSessionLimits::default().register_timeout
    );
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!s.is_closed());
    s.handle_timeout(deadline);
    assert!(closed(&events(&mut s))
        .unwrap()
        .reason
        .contains("no Register"));
}

#[test]
fn a_frame_flood_is_cut_off() {
    let t = Instant::now();
    let limits = ModuleSessionLimits {
        frames_per_second: 5.0,
        frames_burst: 5.0,
        ..ModuleSessionLimits::default()
    };
    let mut s = ModuleSession::new(ID, limits, t);
    s.handle_input(&bytes(&[Frame::Register(spec(ID))]), t);
    s.accept(Registered {
        protocol: PROTOCOL_VERSION,
        control_plane: "p".into(),
        customer: "c".into(),
    });
    let mut answered = 0;
    for round in 1..=10 {
        if !s.solicit(&solicitation(round)) {
            break;
        }
        s.handle_input(&bytes(&[respond(round, 1)]), t);
        answered += 1;
    }
    let ev = events(&mut s);
    assert_eq!(answered, 5);
    assert_eq!(closed(&ev).unwrap().code, close::LIMIT);
}
