use std::time::{Duration, Instant};

use super::*;

fn search<'a>(now: &'a dyn Fn() -> Instant, deadline: Instant) -> Search<'a> {
    Search {
        deadline,
        now,
        max_iterations: 10_000,
        restarts: 3,
        seed: 42,
    }
}

fn run(
    instances: u32,
    capacities: &[u32],
    proposals: &[Proposal],
    lambda: f64,
) -> (Vec<u32>, Vec<f64>, Result<Placed, PlaceError>) {
    let t0 = Instant::now();
    let clock = move || t0;
    let problem = Problem {
        instances,
        capacities,
        proposals,
        lambda,
    };
    let mut out = vec![0; capacities.len()];
    let mut inf = vec![0.0; proposals.len()];
    let r = place(
        &problem,
        &search(&clock, t0 + Duration::from_secs(1)),
        &mut Scratch::default(),
        &mut out,
        &mut inf,
    );
    (out, inf, r)
}

fn prop(counts: &[u32], weight: f64) -> Proposal<'_> {
    Proposal { counts, weight }
}

#[test]
fn agreement_is_kept() {
    let p = [prop(&[1, 2, 0, 3], 0.4), prop(&[1, 2, 0, 3], 0.9)];
    let (x, inf, r) = run(6, &[3, 3, 3, 3], &p, 0.0);
    assert_eq!(x, [1, 2, 0, 3]);
    assert_eq!(r.unwrap().objective, 0.0);
    assert!((inf[0] - 0.4 / 1.3).abs() < 1e-12);
}

#[test]
fn spread_term_spreads() {
    let p = [prop(&[4, 0, 0, 0], 1.0)];
    // λ = 1: a move costs 2 in L1 and saves 1/4: keep the proposal.
    let (x, _, r) = run(4, &[4; 4], &p, 1.0);
    assert_eq!(x, [4, 0, 0, 0]);
    assert_eq!(r.unwrap().objective, 1.0);
    // λ = 10: 6 + 10·1/4 = 8.5 beats 0 + 10·4/4 = 10.
    let (x, _, r) = run(4, &[4; 4], &p, 10.0);
    assert_eq!(x, [1, 1, 1, 1]);
    assert_eq!(r.unwrap().objective, 8.5);
}

#[test]
fn reputable_proposal_wins() {
    let p = [prop(&[3, 1], 0.9), prop(&[1, 3], 0.1)];
    let (x, inf, r) = run(4, &[4, 4], &p, 0.0);
    assert_eq!(x, [3, 1]);
    assert!((r.unwrap().objective - 0.4).abs() < 1e-12);
    // 0.9 / 1 and 0.1 / (1 + 4), normalised.
    assert!((inf[0] - 0.9 / 0.92).abs() < 1e-12);
    assert!((inf[1] - 0.02 / 0.92).abs() < 1e-12);
}

#[test]
fn capacities_are_respected() {
    let p = [prop(&[5, 0, 0], 1.0)];
    let (x, _, r) = run(5, &[2, 2, 2], &p, 1.0);
    assert_eq!(x, [2, 2, 1]);
    assert!((r.unwrap().objective - 6.4).abs() < 1e-12);
    // Short and long proposals: missing entries are 0, extra ignored.
    let p = [prop(&[2], 1.0), prop(&[0, 0, 2, 9], 1.0)];
    let (x, _, _) = run(4, &[2, 2, 2], &p, 0.0);
    assert_eq!(x.iter().sum::<u32>(), 4);
}

#[test]
fn no_proposals_spread_evenly() {
    let (x, inf, r) = run(6, &[4, 4, 4], &[], 1.0);
    assert_eq!(x, [2, 2, 2]);
    assert!(inf.is_empty());
    assert_eq!(r.unwrap().objective, 2.0 / 6.0);
    let p = [prop(&[1, 1], f64::NAN), prop(&[2, 0], -1.0)];
    let (x, _, _) = run(0, &[1, 1], &p, 1.0);
    assert_eq!(x, [0, 0]);
}

#[test]
fn errors() {
    let (_, _, r) = run(10, &[2, 2], &[], 1.0);
    assert_eq!(
        r,
        Err(PlaceError::Infeasible {
            instances: 10,
            capacity: 4
        })
    );
    let t0 = Instant::now();
    let clock = move || t0;
    let problem = Problem {
        instances: 1,
        capacities: &[1, 1],
        proposals: &[],
        lambda: 1.0,
    };
    let r = place(
        &problem,
        &search(&clock, t0),
        &mut Scratch::default(),
        &mut [0; 3],
        &mut [],
    );
    assert_eq!(r, Err(PlaceError::Shape { out: 3, hosts: 2 }));
    let (x, _, r) = run(0, &[], &[], 1.0);
    assert!(x.is_empty());
    assert_eq!(r.unwrap().objective, 0.0);
}

#[test]
fn budget_stops_the_search() {
    let p = [prop(&[4, 0, 0, 0], 1.0)];
    let problem = Problem {
        instances: 4,
        capacities: &[4; 4],
        proposals: &p,
        lambda: 10.0,
    };
    let t0 = Instant::now();
    let clock = move || t0;
    let mut out = [0; 4];
    // Deadline already reached: the greedy start, unimproved.
    let r = place(
        &problem,
        &search(&clock, t0),
        &mut Scratch::default(),
        &mut out,
        &mut [0.0],
    )
    .unwrap();
    assert!(r.out_of_time);
    assert_eq!((out, r.iterations), ([4, 0, 0, 0], 0));
    // One iteration: one move.
    let s = Search {
        max_iterations: 1,
        ..search(&clock, t0 + Duration::from_secs(1))
    };
    let r = place(&problem, &s, &mut Scratch::default(), &mut out, &mut [0.0]).unwrap();
    assert!(!r.out_of_time);
    assert_eq!((out, r.iterations), ([3, 1, 0, 0], 1));
    // A clock that moves past the deadline after its first reading.
    let calls = std::cell::Cell::new(0u32);
    let moving = || {
        calls.set(calls.get() + 1);
        if calls.get() > 1 {
            t0 + Duration::from_secs(2)
        } else {
            t0
        }
    };
    let s = Search {
        restarts: 1000,
        ..search(&moving, t0 + Duration::from_secs(1))
    };
    let r = place(&problem, &s, &mut Scratch::default(), &mut out, &mut [0.0]).unwrap();
    assert!(r.out_of_time);
    assert_eq!(r.iterations, CHECK_EVERY);
    assert_eq!(out, [1, 1, 1, 1]);
}
