//! Rounds of admission and mediation through [`RoundCore`], against a
//! straightforward reference: requests kept with their texts, grouped in a
//! `BTreeMap` by (parameter in order of first mediation, target hash,
//! target), members by (slot, index).

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vcp_common::module::{param, Kind, ModuleSpec, Proposal, Target};
use vcp_common::view::Member;

use super::reference::Reference;
use super::RoundCore;
use crate::constraints::Constraints;
use crate::constraints::{ModuleLimits, OnViolation, ParamConstraint};
use crate::instance::Instance;
use crate::mediation::{Mediator, PolicyTable};
use crate::plane::Instances;
use crate::plane::{ControlPlane, Scope, ServiceSetDef};
use crate::reputation::ReputationSnapshot;
use crate::settings::{Decision, SettingsMap};

const SETS: usize = 6;
const HOSTS: usize = 3;
/// Parameters modules answer with; the last is declared by nobody.
const PARAMS: [&str; 4] = [
    param::INSTANCES,
    param::LB_WEIGHT,
    param::CPU_SHARE,
    "bogus",
];

fn scope(sets: u8, hosts: u8) -> Arc<Scope> {
    let defs = (0..SETS)
        .filter(|s| sets & (1 << s) != 0)
        .map(|s| ServiceSetDef {
            id: format!("s{s}"),
            customer: "c".into(),
            members: (0..HOSTS)
                .filter(|h| hosts & (1 << h) != 0)
                .map(|h| Member {
                    host: format!("h{h}"),
                    resource: None,
                })
                .collect(),
            instances: Instances {
                min: 1,
                max: 64,
                initial: 2,
            },
            goals: vec![],
            instance: None,
        })
        .collect();
    Arc::new(Scope::new(defs, false))
}

fn plane(id: &str, scope: Arc<Scope>) -> Arc<ControlPlane> {
    Arc::new(ControlPlane {
        id: id.into(),
        customer: "c".into(),
        scope,
        modules: std::array::from_fn(|_| vec![]),
        provisioned: false,
    })
}

fn module(
    m: usize,
    plane: Arc<ControlPlane>,
    outputs: &[&str],
    quota: u32,
    shadow: bool,
) -> Arc<Instance> {
    let spec = ModuleSpec {
        id: format!("m{m}"),
        kind: Kind::Autoscaling,
        vendor: "test".into(),
        version: "0".into(),
        inputs: vec![],
        outputs: outputs.iter().map(|p| p.to_string()).collect(),
        goals: vec![],
        deadline_ms: 50,
        custom_sensors: vec![],
    };
    let limits = ModuleLimits {
        rate_per_second: 1e9,
        max_requests_per_round: quota,
    };
    let mut i = Instance::new(spec, plane, m == 0, false, limits, None);
    i.shadow = shadow;
    Arc::new(i)
}

fn target(t: u8) -> Target {
    let (set, host) = (
        t as usize % (SETS + 2),
        t as usize / (SETS + 2) % (HOSTS + 1),
    );
    match t % 3 {
        0 => Target::ServiceSet(format!("s{set}")),
        _ => Target::Member {
            service_set: format!("s{set}"),
            host: format!("h{host}"),
        },
    }
}

fn constraints() -> Constraints {
    Constraints::new(&[ParamConstraint {
        parameter: param::INSTANCES.into(),
        min: Some(1.0),
        max: Some(32.0),
        max_step: Some(4.0),
        on_violation: OnViolation::Clip,
    }])
}

fn core() -> RoundCore {
    let mediator = Mediator::new(
        Kind::Autoscaling,
        Arc::new(PolicyTable::new(vec![])),
        Arc::default(),
        1,
    );
    RoundCore::new(constraints(), mediator)
}

fn decide(
    core: &mut RoundCore,
    round: u64,
    modules: &[Arc<Instance>],
    answers: Vec<(usize, Vec<Proposal>)>,
    settings: &SettingsMap,
) -> (Vec<Decision>, Vec<Decision>) {
    core.begin();
    for (slot, proposals) in answers {
        core.admit(slot, &modules[slot], proposals, settings, 0);
    }
    let reputation = ReputationSnapshot::empty(0.5, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    core.decide(round, modules, &reputation, settings, deadline)
}

/// One module's part of a round: whether its plane keeps last round's
/// scope (else a new one: sets, hosts), and its answer (absent: none).
#[derive(Debug, Clone)]
struct Part {
    keep_scope: bool,
    sets: u8,
    hosts: u8,
    answer: Option<Vec<(u8, u8, f64)>>,
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -4.0..40.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        2 => (0u8..6).prop_map(f64::from),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    let proposal = (0u8..PARAMS.len() as u8, any::<u8>(), value());
    (
        prop::bool::weighted(0.7),
        any::<u8>(),
        any::<u8>(),
        prop::option::weighted(0.85, prop::collection::vec(proposal, 0..14)),
    )
        .prop_map(|(keep_scope, sets, hosts, answer)| Part {
            keep_scope,
            sets,
            hosts,
            answer,
        })
}

/// Per module: (plane, outputs, quota, shadow).
type Setup = (usize, u8, u32, bool);

fn setup() -> impl Strategy<Value = Vec<Setup>> {
    prop::collection::vec(
        (
            0usize..3,
            1u8..8,
            prop_oneof![Just(1000u32), 1u32..6],
            prop::bool::weighted(0.15),
        ),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rounds_decide_as_the_reference(
        setup in setup(),
        rounds in prop::collection::vec(
            (prop::collection::vec(part(), 6), any::<u64>(), any::<bool>()),
            1..7,
        ),
    ) {
        let mut core = core();
        let mut reference = Reference::new(constraints());
        let mut settings = SettingsMap::default();
        let mut planes: Vec<Option<Arc<ControlPlane>>> = vec![None; 3];
        for (round, (parts, shuffle, sparse)) in rounds.into_iter().enumerate() {
            let round = round as u64 + 1;
            // Planes (and their scopes) as the first part of each says.
            for (p, plane_slot) in planes.iter_mut().enumerate() {
                let part = &parts[p];
                if plane_slot.is_none() || !part.keep_scope {
                    *plane_slot = Some(plane(&format!("p{p}"), scope(part.sets, part.hosts)));
                }
            }
            let modules: Vec<Arc<Instance>> = setup
                .iter()
                .enumerate()
                .map(|(m, &(p, outputs, quota, shadow))| {
                    let outputs: Vec<&str> = (0..3)
                        .filter(|o| outputs & (1 << o) != 0)
                        .map(|o| PARAMS[o])
                        .collect();
                    module(m, planes[p].clone().unwrap(), &outputs, quota, shadow)
                })
                .collect();
            // Answers, in an arrival order of their own.
            let mut answers: Vec<(usize, Vec<Proposal>)> = parts
                .iter()
                .take(modules.len())
                .enumerate()
                .filter_map(|(slot, part)| {
                    let answer = part.answer.as_ref()?;
                    let proposals = answer
                        .iter()
                        .map(|&(p, t, value)| Proposal {
                            target: target(t),
                            parameter: PARAMS[p as usize].into(),
                            value,
                        })
                        .collect();
                    Some((slot, proposals))
                })
                .collect();
            if answers.len() > 1 {
                let n = answers.len();
                answers.rotate_left(shuffle as usize % n);
                if shuffle & (1 << 40) != 0 {
                    answers.swap(0, n - 1);
                }
            }
            let want = reference.round(round, &modules, &answers, &settings);
            core.mediator.force_sparse(sparse);
            let got = decide(&mut core, round, &modules, answers, &settings);
            prop_assert_eq!(&got.1, &want.1, "shadow decisions of round {}", round);
            prop_assert_eq!(&got.0, &want.0, "decisions of round {}", round);
            for d in got.0 {
                settings.insert(Arc::new(d));
            }
        }
    }
}

#[test]
fn parameters_are_decided_in_the_order_mediation_first_saw_them() {
    // A parameter whose requests were all rejected is not ranked: the
    // next round decides instances (admitted first) before lb.weight, as
    // before interning.
    let scope = scope(0b1, 0b1);
    let plane = plane("p", scope);
    let modules = vec![module(
        0,
        plane,
        &[param::LB_WEIGHT, param::INSTANCES],
        100,
        false,
    )];
    let settings = SettingsMap::default();
    let mut core = core();
    let ask = |p: &str, t: Target| Proposal {
        target: t,
        parameter: p.into(),
        value: 1.0,
    };
    let s0 = Target::ServiceSet("s0".into());
    let first = vec![
        ask(param::LB_WEIGHT, Target::ServiceSet("elsewhere".into())),
        ask(param::INSTANCES, s0.clone()),
    ];
    let (d, _) = decide(&mut core, 1, &modules, vec![(0, first)], &settings);
    assert_eq!(d.len(), 1);
    let second = vec![
        ask(param::LB_WEIGHT, s0.clone()),
        ask(param::INSTANCES, s0.clone()),
    ];
    let (d, _) = decide(&mut core, 2, &modules, vec![(0, second)], &settings);
    let order: Vec<&str> = d.iter().map(|d| &*d.parameter).collect();
    assert_eq!(order, [param::INSTANCES, param::LB_WEIGHT]);
}

#[test]
fn hints_are_kept_only_within_the_quota() {
    let modules = vec![module(
        0,
        plane("p", scope(0b111111, 0b111)),
        &[param::INSTANCES],
        4,
        false,
    )];
    let settings = SettingsMap::default();
    let mut core = core();
    let flood: Vec<Proposal> = (0..10_000)
        .map(|i| Proposal {
            target: Target::ServiceSet(format!("s{}", i % 9)),
            parameter: param::INSTANCES.into(),
            value: 2.0,
        })
        .collect();
    let (d, _) = decide(&mut core, 1, &modules, vec![(0, flood)], &settings);
    assert_eq!(d.len(), 4);
    assert!(core.mediator.interner.hint_len(0) <= 4);
}

#[test]
fn requests_past_the_quota_are_counted_for_the_vendor_and_never_examined() {
    let modules = vec![module(
        0,
        plane("p", scope(0b111, 0b1)),
        &[param::INSTANCES],
        3,
        false,
    )];
    let ask = |p: &str, set: &str, value: f64| Proposal {
        target: Target::ServiceSet(set.into()),
        parameter: p.into(),
        value,
    };
    let answer = vec![
        ask(param::INSTANCES, "s0", 2.0),
        ask(param::INSTANCES, "s1", 100.0), // clipped to 32... and the step
        ask("bogus", "s0", 1.0),            // undeclared: rejected
        ask(param::INSTANCES, "s2", 2.0),   // past the quota of 3
        ask(param::INSTANCES, "nowhere", 2.0),
        ask(param::INSTANCES, "s2", 2.0),
        ask("bogus", "s0", 1.0),
        ask("bogus", "s0", 1.0),
    ];
    let size = |p: &Proposal| p.wire_size() as u64;
    let (inst_over, bogus_all): (u64, u64) = (
        answer[3..6].iter().map(size).sum(),
        [&answer[2], &answer[6], &answer[7]]
            .iter()
            .map(|p| size(p))
            .sum(),
    );
    let clipped_bytes = size(&answer[1]);
    let mut core = core();
    let (d, _) = decide(
        &mut core,
        1,
        &modules,
        vec![(0, answer)],
        &SettingsMap::default(),
    );
    assert_eq!(d.len(), 2, "s0 and s1; nothing past the quota");
    let stats = modules[0].stats.params();
    let inst = stats
        .iter()
        .find(|p| p.parameter == param::INSTANCES)
        .unwrap();
    assert_eq!(
        (inst.requests, inst.rejected, inst.over_quota, inst.clipped),
        (5, 3, 3, 1)
    );
    assert_eq!(inst.fault_bytes, inst_over + clipped_bytes);
    let bogus = stats
        .iter()
        .find(|p| p.parameter == crate::stats::UNDECLARED)
        .unwrap();
    assert_eq!(
        (
            bogus.requests,
            bogus.rejected,
            bogus.over_quota,
            bogus.fault_bytes
        ),
        (3, 3, 2, bogus_all)
    );
    let usage = crate::pricing::ParamUsage::from(inst);
    assert_eq!(usage.requests - usage.faults(), 1, "one billable request");
}
