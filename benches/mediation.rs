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

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use vcp_supervisor::mediate::capacity::allocate;
use vcp_supervisor::mediate::{mediate_value, precedence, Bid, Policy, SeedableRng, SmallRng};

const SIZES: [usize; 3] = [2, 8, 64];

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` competing bids: module 0 is the default one.
fn bids(n: usize) -> Vec<Bid> {
    let mut rng = Rng(n as u64);
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
// Whole rounds (`round/10000x4`) go here, in their own function added to the
// `criterion_group!` below.
// ---------------------------------------------------------------------------

criterion_group!(benches, mediators);
criterion_main!(benches);
