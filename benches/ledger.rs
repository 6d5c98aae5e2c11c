//! The ledger's sustained write rate: charges per second through
//! `Ledger::record` (fire-and-forget) and the writer's group commits, on a
//! real file (WAL, synchronous=FULL) in a fresh temporary directory.
//!
//! - `ledger/record/50000` — N unique charges recorded in batches of
//!   [`BATCH`] (one batch per solicitation round, say), then `flush`; the
//!   time is from the first `record` to the `flush` resolving, so it
//!   includes every commit and fsync. The charges are built and the ledger
//!   opened outside the timed part.
//!
//! `cargo bench --bench ledger -- --quick`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vcp_store::ledger::{Charge, Ledger};

const N: usize = 50_000;
const BATCH: usize = 500;

fn charges(run: usize) -> Vec<Vec<Charge>> {
    let customers = ["customer:acme", "customer:globex", "customer:initech"];
    let modules = ["autoscaler", "predictive", "placement"];
    (0..N)
        .map(|i| Charge {
            key: format!("run{run}-round{}-{}", i / BATCH, i % BATCH),
            at_ms: 1_795_687_200_000 + (i / BATCH) as i64 * 1000,
            debit: customers[i % 3].into(),
            credit: format!("vendor:v{}", i % 5),
            amount: 1 + (i as i64 * 7919) % 1_000_000,
            module: modules[i % 3].into(),
            control_plane: "default".into(),
            kind: "solicitation".into(),
            description: "one answered solicitation".into(),
            quantity: 1.0,
            unit_price: 1 + (i as i64 * 7919) % 1_000_000,
        })
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(<[Charge]>::to_vec)
        .collect()
}

fn record(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("ledger/record");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(BenchmarkId::from_parameter(N), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for run in 0..iters as usize {
                let dir = tempfile::tempdir().expect("temp dir");
                let (ledger, _reader) = Ledger::open(dir.path()).expect("open ledger");
                let batches = charges(run);
                let start = Instant::now();
                for batch in batches {
                    ledger.record(batch).expect("record");
                }
                let committed = rt.block_on(ledger.flush()).expect("flush");
                total += start.elapsed();
                assert_eq!(committed, N as u64);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
