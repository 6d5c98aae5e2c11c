//! Batch codec throughput for a large host.
//!
//! The batches are SIMULATED (deterministic pseudo-random walks shaped like
//! what the agent's sensors derive from /proc and NVML): 64 cores plus the
//! total, 8 NICs, 8 GPUs, memory and status series, 10 samples 1 s apart per
//! batch. Both benchmarks run in the steady state: the encoder and decoder
//! have already seen earlier batches of the same connection, and every
//! iteration gets the next, different batch (generated and, for decode,
//! encoded outside the timed routine).
//!
//! `cargo bench --bench codec -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vcp_common::batch::{Batch, Column, SeriesId, SeriesTable};
use vcp_common::codec::{BatchDecoder, BatchEncoder, Limits, DEFAULT_LEVEL};
use vcp_common::metric::{self, Metric};

const CORES: usize = 64;
const NICS: usize = 8;
const GPUS: usize = 8;
const SAMPLES: usize = 10;

/// Seeded randomness for the SIMULATED inputs.
struct Rng(rand::rngs::SmallRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(rand::SeedableRng::seed_from_u64(seed))
    }
    fn unit(&mut self) -> f64 {
        rand::Rng::random(&mut self.0)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        rand::Rng::random_range(&mut self.0, lo..=hi)
    }
    /// A random walk step of `v` within `[lo, hi]`.
    fn walk(&mut self, v: f64, step: f64, lo: f64, hi: f64) -> f64 {
        (v + (self.unit() - 0.5) * 2.0 * step).clamp(lo, hi)
    }
}

/// What a sensor reports for one series at one instant.
enum Source {
    Const(f64),
    /// Per-core (or total, index `CORES`) busy ratio from jiffies.
    Cpu(usize),
    Load(usize),
    MemAvailable,
    MemUsed,
    /// NIC index, counter index (0 rx bytes, 1 tx bytes, 2 rx pkts, 3 tx pkts).
    NicRate(usize, usize),
    NicUtil(usize),
    GpuUtil(usize),
    GpuMemUtil(usize),
    GpuMemUsed(usize),
    GpuPower(usize),
    GpuTemp(usize),
    GpuClock(usize),
    Uptime,
    SinceAck,
    AgentCpu,
    AgentRss,
    Spooled,
}

struct LargeHost {
    rng: Rng,
    table: SeriesTable,
    series: Vec<(SeriesId, Source)>,
    now_ms: i64,
    uptime_cs: i64,
    core_load: Vec<f64>,
    load: [f64; 3],
    mem_total: i64,
    mem_avail: i64,
    nic_bps: Vec<[f64; 2]>,
    gpu: Vec<[f64; 6]>, // util, mem util, mem used, power W, temp, clock
    agent_cpu_cs: i64,
    rss: i64,
    // Values of the current sample.
    cpu_now: Vec<f64>,
    nic_now: Vec<[f64; 4]>,
    secs: f64,
}

impl LargeHost {
    fn new() -> Self {
        let mut table = SeriesTable::new();
        let mut series = Vec::new();
        let mut add = |res: &str, m: &Metric, src: Source| {
            series.push((table.intern(res, m.name, m.exp), src));
        };
        add("cpu", &metric::CPU_UTILIZATION, Source::Cpu(CORES));
        for c in 0..CORES {
            add(
                &format!("cpu/{c}"),
                &metric::CPU_UTILIZATION,
                Source::Cpu(c),
            );
        }
        add("cpu", &metric::CPU_CORES, Source::Const(CORES as f64));
        add("cpu", &metric::CPU_LOAD1, Source::Load(0));
        add("cpu", &metric::CPU_LOAD5, Source::Load(1));
        add("cpu", &metric::CPU_LOAD15, Source::Load(2));
        add(
            "memory",
            &metric::MEMORY_TOTAL,
            Source::Const(540_965_543_936.0),
        );
        add("memory", &metric::MEMORY_AVAILABLE, Source::MemAvailable);
        add("memory", &metric::MEMORY_USED, Source::MemUsed);
        add(
            "memory",
            &metric::MEMORY_SWAP_TOTAL,
            Source::Const(8_589_930_496.0),
        );
        add("memory", &metric::MEMORY_SWAP_USED, Source::Const(0.0));
        for n in 0..NICS {
            let res = format!("nic/ens{n}f0");
            add(&res, &metric::NIC_RX_BYTES, Source::NicRate(n, 0));
            add(&res, &metric::NIC_TX_BYTES, Source::NicRate(n, 1));
            add(&res, &metric::NIC_RX_PACKETS, Source::NicRate(n, 2));
            add(&res, &metric::NIC_TX_PACKETS, Source::NicRate(n, 3));
            for m in [
                &metric::NIC_RX_ERRORS,
                &metric::NIC_TX_ERRORS,
                &metric::NIC_RX_DROPS,
                &metric::NIC_TX_DROPS,
            ] {
                add(&res, m, Source::Const(0.0));
            }
            add(&res, &metric::NIC_SPEED, Source::Const(25e9));
            add(&res, &metric::NIC_UTILIZATION, Source::NicUtil(n));
        }
        add("gpu", &metric::GPU_PRESENT, Source::Const(1.0));
        for g in 0..GPUS {
            let res = format!("gpu/{g}");
            add(&res, &metric::GPU_UTILIZATION, Source::GpuUtil(g));
            add(&res, &metric::GPU_MEMORY_UTILIZATION, Source::GpuMemUtil(g));
            add(&res, &metric::GPU_MEMORY_USED, Source::GpuMemUsed(g));
            add(
                &res,
                &metric::GPU_MEMORY_TOTAL,
                Source::Const(85_899_345_920.0),
            );
            add(&res, &metric::GPU_POWER, Source::GpuPower(g));
            add(&res, &metric::GPU_TEMPERATURE, Source::GpuTemp(g));
            add(&res, &metric::GPU_SM_CLOCK, Source::GpuClock(g));
        }
        add("host", &metric::STATUS_UP, Source::Const(1.0));
        add("host", &metric::STATUS_UPTIME, Source::Uptime);
        add("host", &metric::STATUS_SINCE_ACK, Source::SinceAck);
        add("host", &metric::STATUS_AGENT_CPU, Source::AgentCpu);
        add("host", &metric::STATUS_AGENT_RSS, Source::AgentRss);
        add("host", &metric::STATUS_DROPPED, Source::Const(0.0));
        add("host", &metric::STATUS_SPOOLED, Source::Spooled);

        let mut rng = Rng::seeded(0x5eed);
        let core_load = (0..CORES).map(|_| 0.2 + 0.7 * rng.unit()).collect();
        let nic_bps = (0..NICS)
            .map(|n| {
                if n < 4 {
                    [3e8 * rng.unit(), 2e8 * rng.unit()]
                } else {
                    [1e5 * rng.unit(), 5e4 * rng.unit()]
                }
            })
            .collect();
        let gpu = (0..GPUS)
            .map(|_| [0.7, 0.4, 6e10, 350.0, 65.0, 1755.0])
            .collect();
        LargeHost {
            rng,
            table,
            series,
            now_ms: 1_732_612_345_000,
            uptime_cs: 987_654_321,
            core_load,
            load: [40.0, 38.0, 35.0],
            mem_total: 540_965_543_936,
            mem_avail: 210_000_000_000,
            nic_bps,
            gpu,
            agent_cpu_cs: 81_234,
            rss: 23_400_000,
            cpu_now: vec![0.0; CORES + 1],
            nic_now: vec![[0.0; 4]; NICS],
            secs: 1.0,
        }
    }

    /// Advances the simulated machine by about one second.
    fn step(&mut self) {
        let r = &mut self.rng;
        let dt_ms = 1000 + r.range(-2, 6);
        self.now_ms += dt_ms;
        self.uptime_cs += dt_ms / 10;
        self.secs = dt_ms as f64 / 1000.0;
        let (mut busy_all, mut total_all) = (0i64, 0i64);
        for c in 0..CORES {
            self.core_load[c] = r.walk(self.core_load[c], 0.03, 0.0, 1.0);
            let total = dt_ms / 10 + r.range(-1, 1);
            let busy = ((self.core_load[c] + (r.unit() - 0.5) * 0.1).clamp(0.0, 1.0) * total as f64)
                .round() as i64;
            busy_all += busy;
            total_all += total;
            self.cpu_now[c] = busy as f64 / total as f64;
        }
        self.cpu_now[CORES] = busy_all as f64 / total_all as f64;
        if self.now_ms / 1000 % 5 == 0 {
            let run = self.cpu_now[CORES] * CORES as f64;
            for (i, tau) in [1.0f64, 5.0, 15.0].iter().enumerate() {
                let e = (-5.0 / (60.0 * tau)).exp();
                self.load[i] = ((self.load[i] * e + run * (1.0 - e)) * 100.0).round() / 100.0;
            }
        }
        self.mem_avail += 4096 * r.range(-20_000, 20_000);
        for n in 0..NICS {
            for d in 0..2 {
                self.nic_bps[n][d] = r.walk(self.nic_bps[n][d], 1e6, 0.0, 3e9);
            }
            let rx = (self.nic_bps[n][0] * self.secs * (0.9 + 0.2 * r.unit())) as u64;
            let tx = (self.nic_bps[n][1] * self.secs * (0.9 + 0.2 * r.unit())) as u64;
            let counters = [rx, tx, rx.div_ceil(1400), tx.div_ceil(900)];
            for (i, c) in counters.iter().enumerate() {
                self.nic_now[n][i] = *c as f64 / self.secs;
            }
        }
        for g in &mut self.gpu {
            g[0] = (r.walk(g[0], 0.05, 0.0, 1.0) * 100.0).round() / 100.0;
            g[1] = (r.walk(g[1], 0.05, 0.0, 1.0) * 100.0).round() / 100.0;
            if r.unit() < 0.2 {
                g[2] = (g[2] + 2f64.powi(21) * r.range(-50, 50) as f64).clamp(0.0, 8.5e10);
            }
            g[3] = (r.walk(g[3], 20.0, 80.0, 700.0) * 1000.0).round() / 1000.0;
            g[4] = r.walk(g[4], 0.6, 30.0, 90.0).round();
            if r.unit() < 0.1 {
                g[5] = (g[5] + 15.0 * r.range(-3, 3) as f64).clamp(210.0, 1980.0);
            }
        }
        if r.unit() < 0.6 {
            self.agent_cpu_cs += r.range(1, 3);
        }
        if r.unit() < 0.05 {
            self.rss += 4096 * r.range(-4, 8);
        }
    }

    fn value(&mut self, src: &Source) -> f64 {
        match *src {
            Source::Const(v) => v,
            Source::Cpu(c) => self.cpu_now[c],
            Source::Load(i) => self.load[i],
            Source::MemAvailable => self.mem_avail as f64,
            Source::MemUsed => (self.mem_total - self.mem_avail) as f64,
            Source::NicRate(n, i) => self.nic_now[n][i],
            Source::NicUtil(n) => self.nic_now[n][0].max(self.nic_now[n][1]) * 8.0 / 25e9,
            Source::GpuUtil(g) => self.gpu[g][0],
            Source::GpuMemUtil(g) => self.gpu[g][1],
            Source::GpuMemUsed(g) => self.gpu[g][2],
            Source::GpuPower(g) => self.gpu[g][3],
            Source::GpuTemp(g) => self.gpu[g][4],
            Source::GpuClock(g) => self.gpu[g][5],
            Source::Uptime => self.uptime_cs as f64 / 100.0,
            Source::SinceAck => self.rng.range(20, 9_980) as f64 / 1000.0,
            Source::AgentCpu => self.agent_cpu_cs as f64 / 100.0,
            Source::AgentRss => self.rss as f64,
            Source::Spooled => self.rng.range(0, 1) as f64,
        }
    }

    /// The next batch: `SAMPLES` samples about a second apart.
    fn batch(&mut self, seq: u64) -> Batch {
        let mut timestamps = Vec::with_capacity(SAMPLES);
        let mut columns: Vec<Column> = self
            .series
            .iter()
            .map(|(id, _)| Column {
                series: *id,
                start: 0,
                values: Vec::with_capacity(SAMPLES),
            })
            .collect();
        let series = std::mem::take(&mut self.series);
        for _ in 0..SAMPLES {
            self.step();
            timestamps.push(self.now_ms);
            for (col, (_, src)) in columns.iter_mut().zip(&series) {
                col.values.push(self.value(src));
            }
        }
        self.series = series;
        Batch {
            seq,
            timestamps,
            columns,
        }
    }
}

fn bench_codec(c: &mut Criterion) {
    let mut host = LargeHost::new();
    let readings = host.batch(0).readings() as u64;

    // Bytes per reading in the steady state, printed once.
    {
        let mut host = LargeHost::new();
        let mut enc = BatchEncoder::new(DEFAULT_LEVEL).expect("encoder");
        let mut dec = BatchDecoder::new(Limits::default()).expect("decoder");
        let (mut bytes, mut n, mut raw) = (0usize, 0usize, 0usize);
        for seq in 1..=30 {
            let b = host.batch(seq);
            let mut out = Vec::new();
            enc.encode(&b, &host.table, &mut out).expect("encode");
            let d = dec.decode(&out).expect("decode");
            assert_eq!(d.batch.readings(), b.readings());
            if seq > 5 {
                bytes += out.len();
                n += b.readings();
                raw += enc.last_record_len();
            }
        }
        eprintln!(
            "codec: large host, {} series x {SAMPLES} samples = {readings} readings/batch: \
             {:.3} payload bytes per reading ({:.0} bytes per batch, {:.0} before zstd level {DEFAULT_LEVEL})",
            host.series.len(),
            bytes as f64 / n as f64,
            bytes as f64 / 25.0,
            raw as f64 / 25.0,
        );
    }

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(readings));

    {
        let mut enc = BatchEncoder::new(DEFAULT_LEVEL).expect("encoder");
        let mut seq = 1;
        let mut out = Vec::new();
        // Warm up the connection state.
        for _ in 0..3 {
            out.clear();
            enc.encode(&host.batch(seq), &host.table, &mut out)
                .expect("encode");
            seq += 1;
        }
        let table = host.table.clone();
        group.bench_function("encode", |b| {
            b.iter_batched(
                || {
                    seq += 1;
                    host.batch(seq)
                },
                |batch| {
                    out.clear();
                    enc.encode(&batch, &table, &mut out).expect("encode");
                    black_box(out.len())
                },
                BatchSize::SmallInput,
            )
        });
    }

    {
        let mut host = LargeHost::new();
        let mut enc = BatchEncoder::new(DEFAULT_LEVEL).expect("encoder");
        let mut dec = BatchDecoder::new(Limits::default()).expect("decoder");
        let mut seq = 0;
        let mut next_payload = move || {
            seq += 1;
            let mut out = Vec::new();
            enc.encode(&host.batch(seq), &host.table, &mut out)
                .expect("encode");
            out
        };
        for _ in 0..3 {
            dec.decode(&next_payload()).expect("decode");
        }
        group.bench_function("decode", |b| {
            b.iter_batched(
                &mut next_payload,
                |payload| black_box(dec.decode(&payload).expect("decode")),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
