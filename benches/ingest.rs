//! Ingest's work per batch and a round's view building, on SIMULATED hosts
//! (`vcp::fleet_bench::host`: this machine's series, or a large host's
//! ~400) sampled by the agent's own `Sampler` once a second and encoded by
//! the real encoder, as `vcp bench-fleet` sends them.
//!
//! - `ingest/decode_apply/{small,large}` — one batch decoded (steady state:
//!   the connection's decoder has seen its earlier batches) and applied to
//!   the host's snapshot in the view, what the supervisor's ingest does per
//!   batch. Every iteration takes the next batch.
//! - `ingest/project/{fresh,kept,rebatched}/10000` — the view a round
//!   builds for one module reading `cpu.*` of every one of 10,000 small
//!   hosts: from nothing (`module_view::build`), and as a solicitor builds
//!   it round after round, keeping what did not change (`build_with`),
//!   with no batch since the last round and with one from every host.
//!
//! `cargo bench --bench ingest -- --quick`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vcp::fleet_bench::host::{self, Profile, SimulatedHost};
use vcp_agent::sampler::Sampler;
use vcp_common::batch::SeriesTable;
use vcp_common::codec::{BatchDecoder, BatchEncoder, Limits, DEFAULT_LEVEL, DEFAULT_MAX_SERIES};
use vcp_common::module::SensorSelector;
use vcp_core::module_view::Projection;
use vcp_core::plane::Scope;
use vcp_core::settings::SettingsMap;
use vcp_core::view::{Carry, HostSnapshot, View};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;

/// `n` encoded batches of one SIMULATED host, one sample each, a second
/// apart, with the readings they hold.
fn encoded(profile: Profile, seed: u64, n: usize) -> (Vec<Vec<u8>>, u64) {
    let series = Arc::new(host::profile(profile, &host::this_machine()));
    let sensor = SimulatedHost::new(series, seed);
    let mut sampler = Sampler::new(vec![Box::new(sensor)], DEFAULT_MAX_SERIES);
    let mut table = SeriesTable::new();
    let mut encoder = BatchEncoder::new(DEFAULT_LEVEL).expect("encoder");
    let start = Instant::now();
    let mut readings = 0;
    let batches = (0..n)
        .map(|i| {
            sampler.sample(start + Duration::from_secs(i as u64), T0 + i as i64 * 1000);
            let mut s = sampler.close().expect("a sampled window");
            s.batch.seq = i as u64 + 1;
            for d in &s.new_series {
                table.intern(&d.resource, &d.metric, d.exp);
            }
            readings = s.batch.readings() as u64;
            let mut out = Vec::new();
            encoder.encode(&s.batch, &table, &mut out).expect("encode");
            out
        })
        .collect();
    (batches, readings)
}

fn decode_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest/decode_apply");
    for (name, profile) in [("small", Profile::Small), ("large", Profile::Large)] {
        let (batches, readings) = encoded(profile, 7, 2_000);
        group.throughput(Throughput::Elements(readings));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    // A connection: its first two batches (the dictionary)
                    // untimed, then as many as are left to time.
                    let view = View::default();
                    let cell = view.host("sim-1");
                    let mut decoder = BatchDecoder::new(Limits::default()).expect("decoder");
                    let mut carry = Carry::default();
                    let mut apply = |payload: &[u8]| {
                        let d = decoder.decode(payload).expect("decode");
                        cell.store(
                            cell.load()
                                .with_batch(1, &d.new_series, &d.batch, &mut carry),
                        );
                    };
                    batches[..2].iter().for_each(|p| apply(p));
                    let take = ((iters - done) as usize).min(batches.len() - 2);
                    let start = Instant::now();
                    batches[2..2 + take].iter().for_each(|p| apply(p));
                    total += start.elapsed();
                    black_box(&view);
                    done += take as u64;
                }
                total
            })
        });
    }
    group.finish();
}

fn project(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest/project");
    group.sample_size(20);
    const HOSTS: usize = 10_000;
    let (batches, _) = encoded(Profile::Small, 3, 2);
    let view = View::default();
    for h in 0..HOSTS {
        let cell = view.host(&format!("sim-{h}"));
        let mut decoder = BatchDecoder::new(Limits::default()).expect("decoder");
        let mut carry = Carry::default();
        for payload in &batches {
            let d = decoder.decode(payload).expect("decode");
            cell.store(
                cell.load()
                    .with_batch(1, &d.new_series, &d.batch, &mut carry),
            );
        }
    }
    let scope = Scope::new(Vec::new(), true);
    let inputs = [SensorSelector::metric("cpu.*")];
    let settings = SettingsMap::default();
    group.throughput(Throughput::Elements(HOSTS as u64));
    group.bench_function(format!("fresh/{HOSTS}"), |b| {
        b.iter(|| {
            black_box(vcp_core::module_view::build(
                &view, &scope, &inputs, &settings, T0,
            ))
        })
    });
    // As a solicitor builds it round after round: what did not change
    // since the last round (hosts, dictionaries, the readings of a host
    // with no batch since) is kept. With no batch since the last round
    // (nine of ten traffic rounds: they come ten times a second), and
    // with a batch from every host since (the 1 Hz kinds).
    let mut kept = Projection::default();
    group.bench_function(format!("kept/{HOSTS}"), |b| {
        b.iter(|| {
            black_box(vcp_core::module_view::build_with(
                &mut kept, &view, &scope, &inputs, &settings, T0,
            ))
        })
    });
    let cells: Vec<_> = view.hosts().values().cloned().collect();
    group.bench_function(format!("rebatched/{HOSTS}"), |b| {
        b.iter_batched(
            || {
                for cell in &cells {
                    cell.store(HostSnapshot::clone(&cell.load()));
                }
            },
            |()| {
                black_box(vcp_core::module_view::build_with(
                    &mut kept, &view, &scope, &inputs, &settings, T0,
                ))
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, decode_apply, project);
criterion_main!(benches);
