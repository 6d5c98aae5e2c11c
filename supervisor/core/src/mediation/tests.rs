use super::*;
use vcp_common::module::Target;

fn set(s: &str) -> Target {
    Target::ServiceSet(s.into())
}

fn mediator() -> Mediator {
    Mediator::new(
        Kind::Autoscaling,
        Arc::new(PolicyTable::new(vec![])),
        Arc::default(),
        1,
    )
}

/// Admits (slot, parameter, target) requests in the given order.
fn admit(m: &mut Mediator, reqs: &[(usize, &str, &str)]) -> Vec<Request> {
    reqs.iter()
        .map(|&(slot, p, t)| Request {
            slot,
            param: m.interner.param(p),
            target: m.interner.intern(set(t)),
            value: 1.0,
        })
        .collect()
}

/// A group as (parameter, target, [(slot, index)]).
type Group = (String, Target, Vec<(usize, u32)>);

fn groups(m: &mut Mediator, reqs: &[Request]) -> Vec<Group> {
    let mut interner = std::mem::take(&mut m.interner);
    m.group(reqs, &mut interner);
    let mut out = Vec::new();
    for &(ordinal, g0, g1) in &m.runs {
        for &(s, e) in &m.groups[g0..g1] {
            let members: Vec<(usize, u32)> = m.order[s as usize..e as usize]
                .iter()
                .map(|&i| (reqs[i as usize].slot, i))
                .collect();
            let t = interner.target(reqs[m.order[s as usize] as usize].target);
            out.push((interner.param_name(ordinal).to_string(), t.clone(), members));
        }
    }
    m.interner = interner;
    out
}

#[test]
fn groups_by_parameter_then_target_hash_then_slot() {
    let mut m = mediator();
    // Answers admitted out of slot order, targets interleaved, one
    // module asking twice for the same target.
    let reqs = admit(
        &mut m,
        &[
            (2, "instances", "b"),
            (2, "instances", "a"),
            (0, "instances", "a"),
            (0, "lb.weight", "a"),
            (0, "instances", "b"),
            (1, "instances", "a"),
            (1, "instances", "a"),
        ],
    );
    let got = groups(&mut m, &reqs);
    let mut want = vec![
        (
            "instances".to_string(),
            set("a"),
            vec![(0, 2), (1, 5), (1, 6), (2, 1)],
        ),
        ("instances".to_string(), set("b"), vec![(0, 4), (2, 0)]),
        ("lb.weight".to_string(), set("a"), vec![(0, 3)]),
    ];
    // Targets come in hash order within a parameter.
    if crate::admission::intern::target_hash(&set("b"))
        < crate::admission::intern::target_hash(&set("a"))
    {
        want.swap(0, 1);
    }
    assert_eq!(got, want);
}

#[test]
fn many_parameter_names_cost_neither_memory_nor_time() {
    // A module re-registering with new output names, round after
    // round: the names are forgotten, and grouping never allocates a
    // cell per (name, target).
    let mut m = mediator();
    for round in 0..40 {
        m.interner.begin();
        for i in 0..64 {
            m.interner.param(&format!("p{round}.{i}"));
        }
        let mut reqs = admit(&mut m, &[(0, "instances", "a")]);
        for t in 0..2000 {
            reqs[0].target = m.interner.intern(set(&format!("t{t}")));
        }
        let got = groups(&mut m, &reqs);
        assert_eq!(got.len(), 1);
        assert!(m.interner.params.len() <= 1024 + 65);
        assert!(m.at.len() <= 2 * m.interner.len(), "{}", m.at.len());
    }
}

#[test]
fn sorting_groups_as_the_counting_sort() {
    let mut m = mediator();
    let reqs = admit(
        &mut m,
        &[
            (2, "lb.weight", "b"),
            (2, "instances", "a"),
            (0, "instances", "c"),
            (0, "lb.weight", "a"),
            (1, "instances", "b"),
            (1, "instances", "a"),
            (0, "instances", "a"),
        ],
    );
    let dense = groups(&mut m, &reqs);
    m.force_sparse(true);
    assert_eq!(groups(&mut m, &reqs), dense);
    // Parameters in the order first seen: lb.weight, then instances.
    assert_eq!(dense[0].0, "lb.weight");
}

#[test]
fn colliding_hashes_still_group_by_target() {
    let mut m = mediator();
    let reqs = admit(
        &mut m,
        &[
            (0, "instances", "b"),
            (0, "instances", "a"),
            (1, "instances", "b"),
            (1, "instances", "a"),
            (2, "instances", "c"),
        ],
    );
    // a and b collide (and sort after c).
    for t in ["a", "b"] {
        let id = m.interner.find(&set(t)).unwrap();
        m.interner.force_order(id, u64::MAX);
    }
    let got = groups(&mut m, &reqs);
    let targets: Vec<_> = got.iter().map(|g| g.1.clone()).collect();
    assert_eq!(targets, [set("c"), set("a"), set("b")]);
    assert_eq!(got[1].2, [(0, 1), (1, 3)]);
    assert_eq!(got[2].2, [(0, 0), (1, 2)]);
}
