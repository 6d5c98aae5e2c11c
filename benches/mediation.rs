//! Mediation on the hot path: n competing requests for one target (or one
//! capacity pool), resolved into preallocated outputs.
//!
//! The bids are SIMULATED (deterministic pseudo-random values, reputations
//! in [0, 1], one default module). Every iteration mediates the same bids;
//! outputs and scratch buffers are allocated once, outside the timed
//! routine, so the numbers are the mediators' own cost.
//!
//! - `mediate/precedence/{n}` — the best reputation wins.
//! - `mediate/weighted/{n}` — reputation-weighted mean, integer parameter.
//! - `mediate/capacity/{n}` — weighted max-min split of half the total
//!   asked, with exploration ε = 0.1 (seeded), so some iterations pay for
//!   the median.
//!
//! `cargo bench --bench mediation -- --quick`

use std::hint::black_box;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use vcp_common::module::{param, Kind, ModuleSpec, Proposal, Target};
use vcp_common::view::Member;
use vcp_core::constraints::Constraints;
use vcp_core::constraints::{ModuleLimits, OnViolation, ParamConstraint};
use vcp_core::instance::Instance;
use vcp_core::mediate::capacity::allocate;
use vcp_core::mediate::{mediate_value, precedence, Bid, Policy, SeedableRng, SmallRng};
use vcp_core::mediation::{Mediator, PolicyTable};
use vcp_core::plane::Instances;
use vcp_core::plane::{ControlPlane, Scope, ServiceSetDef};
use vcp_core::reputation::ReputationSnapshot;
use vcp_core::round::RoundCore;
use vcp_core::settings::SettingsMap;

const SIZES: [usize; 3] = [2, 8, 64];

/// Seeded randomness for the SIMULATED inputs.
struct Rng(rand::rngs::SmallRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(rand::SeedableRng::seed_from_u64(seed))
    }
    fn unit(&mut self) -> f64 {
        rand::Rng::random(&mut self.0)
    }
}

/// `n` competing bids: module 0 is the default one.
fn bids(n: usize) -> Vec<Bid> {
    let mut rng = Rng::seeded(n as u64);
    (0..n)
        .map(|i| Bid {
            value: (1.0 + rng.unit() * 99.0).round(),
            weight: rng.unit(),
            is_default: i == 0,
            module: i as u32,
        })
        .collect()
}

fn mediators(c: &mut Criterion) {
    let mut group = c.benchmark_group("mediate/precedence");
    for n in SIZES {
        let bids = bids(n);
        let mut influence = vec![0.0; n];
        group.bench_with_input(BenchmarkId::from_parameter(n), &bids, |b, bids| {
            b.iter(|| precedence::precedence(black_box(bids), &mut influence))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("mediate/weighted");
    for n in SIZES {
        let bids = bids(n);
        let mut influence = vec![0.0; n];
        group.bench_with_input(BenchmarkId::from_parameter(n), &bids, |b, bids| {
            b.iter(|| {
                mediate_value(
                    &Policy::Weighted,
                    black_box(bids),
                    true,
                    None,
                    &mut influence,
                )
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("mediate/capacity");
    for n in SIZES {
        let bids = bids(n);
        let capacity = bids.iter().map(|b| b.value).sum::<f64>() / 2.0;
        let mut alloc = vec![0.0; n];
        let mut influence = vec![0.0; n];
        let mut scratch = Vec::with_capacity(n);
        let mut rng = SmallRng::seed_from_u64(1);
        group.bench_with_input(BenchmarkId::from_parameter(n), &bids, |b, bids| {
            b.iter(|| {
                allocate(
                    black_box(bids),
                    black_box(capacity),
                    Some((&mut rng, 0.1)),
                    &mut scratch,
                    &mut alloc,
                    &mut influence,
                )
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// A whole round's own work (`round/10000x4`): 10,000 targets with 4 modules
// each — admission (scope, declared outputs, quota, rate, constraints) and
// mediation of 40,000 requests into 10,000 decisions, as the solicitor runs
// it after collecting answers.
// ---------------------------------------------------------------------------

fn round(c: &mut Criterion) {
    const TARGETS: usize = 10_000;
    const MODULES: usize = 4;
    let sets = (0..TARGETS)
        .map(|i| ServiceSetDef {
            id: format!("set-{i}"),
            customer: "operator".into(),
            members: vec![Member {
                host: format!("host-{}", i % 500),
                resource: None,
            }],
            instances: Instances {
                min: 1,
                max: 64,
                initial: 2,
            },
            goals: vec![],
            instance: None,
        })
        .collect();
    let plane = Arc::new(ControlPlane {
        id: "default".into(),
        customer: "operator".into(),
        scope: Arc::new(Scope::new(sets, true)),
        modules: std::array::from_fn(|_| vec![]),
        provisioned: false,
    });
    let limits = ModuleLimits {
        rate_per_second: 1e9,
        max_requests_per_round: 1_000_000,
    };
    let modules: Vec<Arc<Instance>> = (0..MODULES)
        .map(|m| {
            let spec = ModuleSpec {
                id: format!("module-{m}"),
                kind: Kind::Autoscaling,
                vendor: "bench".into(),
                version: "0".into(),
                inputs: vec![],
                outputs: vec![param::INSTANCES.into()],
                goals: vec![],
                deadline_ms: 50,
                custom_sensors: vec![],
            };
            Arc::new(Instance::new(
                spec,
                plane.clone(),
                m == 0,
                false,
                limits,
                None,
            ))
        })
        .collect();
    let answers: Vec<Vec<Proposal>> = (0..MODULES)
        .map(|m| {
            (0..TARGETS)
                .map(|i| Proposal {
                    target: Target::ServiceSet(format!("set-{i}")),
                    parameter: param::INSTANCES.into(),
                    value: ((i + m) % 16 + 1) as f64,
                })
                .collect()
        })
        .collect();
    let constraints = Constraints::new(&[ParamConstraint {
        parameter: param::INSTANCES.into(),
        min: Some(1.0),
        max: Some(64.0),
        max_step: Some(4.0),
        on_violation: OnViolation::Clip,
    }]);
    let mediator = Mediator::new(
        Kind::Autoscaling,
        Arc::new(PolicyTable::new(vec![])),
        Arc::default(),
        1,
    );
    let mut core = RoundCore::new(constraints, mediator);
    let reputation = ReputationSnapshot::empty(0.5, 0);
    let settings = SettingsMap::default();
    let mut group = c.benchmark_group("round");
    group.throughput(Throughput::Elements((TARGETS * MODULES) as u64));
    group.bench_function("10000x4", |b| {
        b.iter_batched(
            || answers.clone(),
            |answers| {
                core.begin();
                for (slot, proposals) in answers.into_iter().enumerate() {
                    core.admit(slot, &modules[slot], proposals, &settings, 0);
                }
                let deadline = Instant::now() + Duration::from_millis(50);
                let (decisions, _) = core.decide(1, &modules, &reputation, &settings, deadline);
                assert_eq!(decisions.len(), TARGETS);
                decisions
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, mediators, round);
criterion_main!(benches);
