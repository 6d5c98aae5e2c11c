//! A simulated small host, as the agent's sensors see it, for realistic
//! test batches.

use std::collections::HashMap;

use super::{batch, col};
use crate::batch::{Batch, SeriesId, SeriesTable};
use crate::metric::{self, Metric};

/// The simulated host's series: id, metric, resource.
pub(super) type HostSeries = Vec<(SeriesId, &'static Metric, String)>;

/// A batch of one sample's `values`: `shape(id)` gives the start and length
/// of each series' column, every value of which is the sampled one.
pub(super) fn sample_batch(
    seq: u64,
    timestamps: Vec<i64>,
    series: &HostSeries,
    values: &HashMap<String, f64>,
    shape: impl Fn(SeriesId) -> (u32, usize),
) -> Batch {
    let columns = series
        .iter()
        .map(|(id, m, res)| {
            let (start, len) = shape(*id);
            col(*id, start, vec![values[&format!("{res} {}", m.name)]; len])
        })
        .collect();
    batch(seq, timestamps, columns)
}

/// splitmix64: deterministic test randomness.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A NIC's kernel counters (as in /proc/net/dev) and its mean load.
struct Nic {
    name: &'static str,
    speed_bits: Option<f64>,
    rx_bps: f64,
    tx_bps: f64,
    pkt_size: f64,
    counters: [u64; 8], // rx bytes, tx bytes, rx pkts, tx pkts, rx errs, tx errs, rx drop, tx drop
}

/// Simulates what the agent's sensors derive from /proc on a small
/// 8-core host sampled once a second: rates from counter differences
/// over the measured interval, CPU ratios from jiffies.
pub(super) struct SmallHost {
    rng: Rng,
    now_ms: i64,
    uptime_cs: i64,
    cpu_load: Vec<f64>,
    load: [f64; 3],
    mem_avail: i64,
    agent_cpu_cs: i64,
    rss: i64,
    nics: Vec<Nic>,
}

impl SmallHost {
    pub(super) fn new() -> Self {
        let nic = |name, speed_bits, rx_bps, tx_bps, pkt_size| Nic {
            name,
            speed_bits,
            rx_bps,
            tx_bps,
            pkt_size,
            counters: [0; 8],
        };
        SmallHost {
            rng: Rng(7),
            now_ms: 1_732_612_345_000,
            uptime_cs: 123_456_789,
            cpu_load: vec![0.12, 0.08, 0.05, 0.30, 0.02, 0.04, 0.10, 0.01],
            load: [0.52, 0.61, 0.58],
            mem_avail: 11_534_336_000,
            agent_cpu_cs: 4_321,
            rss: 14_221_312,
            nics: vec![
                nic("eth0", Some(1e9), 180_000.0, 45_000.0, 900.0),
                nic("eth1", Some(1e9), 60.0, 0.0, 60.0),
                nic("lo", None, 2_500.0, 2_500.0, 120.0),
                nic("docker0", None, 0.0, 0.0, 100.0),
            ],
        }
    }

    pub(super) fn series(t: &mut SeriesTable) -> HostSeries {
        let mut v = Vec::new();
        let mut add = |res: String, m: &'static Metric| {
            v.push((t.intern(&res, m.name, m.exp), m, res));
        };
        add("cpu".into(), &metric::CPU_UTILIZATION);
        for c in 0..8 {
            add(format!("cpu/{c}"), &metric::CPU_UTILIZATION);
        }
        for m in [
            &metric::CPU_CORES,
            &metric::CPU_LOAD1,
            &metric::CPU_LOAD5,
            &metric::CPU_LOAD15,
        ] {
            add("cpu".into(), m);
        }
        for m in [
            &metric::MEMORY_TOTAL,
            &metric::MEMORY_AVAILABLE,
            &metric::MEMORY_USED,
            &metric::MEMORY_SWAP_TOTAL,
            &metric::MEMORY_SWAP_USED,
        ] {
            add("memory".into(), m);
        }
        for (nic, speed) in [
            ("eth0", true),
            ("eth1", true),
            ("lo", false),
            ("docker0", false),
        ] {
            for m in [
                &metric::NIC_RX_BYTES,
                &metric::NIC_TX_BYTES,
                &metric::NIC_RX_PACKETS,
                &metric::NIC_TX_PACKETS,
                &metric::NIC_RX_ERRORS,
                &metric::NIC_TX_ERRORS,
                &metric::NIC_RX_DROPS,
                &metric::NIC_TX_DROPS,
            ] {
                add(format!("nic/{nic}"), m);
            }
            if speed {
                add(format!("nic/{nic}"), &metric::NIC_SPEED);
                add(format!("nic/{nic}"), &metric::NIC_UTILIZATION);
            }
        }
        add("gpu".into(), &metric::GPU_PRESENT);
        for m in [
            &metric::STATUS_UP,
            &metric::STATUS_UPTIME,
            &metric::STATUS_SINCE_ACK,
            &metric::STATUS_AGENT_CPU,
            &metric::STATUS_AGENT_RSS,
            &metric::STATUS_DROPPED,
            &metric::STATUS_SPOOLED,
        ] {
            add("host".into(), m);
        }
        v
    }

    /// One sample a little over a second after the previous one.
    pub(super) fn sample(&mut self) -> (i64, HashMap<String, f64>) {
        let r = &mut self.rng;
        let dt_ms = 1000 + r.range(-2, 6);
        self.now_ms += dt_ms;
        self.uptime_cs += dt_ms / 10;
        let secs = dt_ms as f64 / 1000.0;
        let mut v = HashMap::new();
        // CPU: per-core jiffies at USER_HZ=100 over the interval.
        let (mut busy_all, mut total_all) = (0i64, 0i64);
        for (c, load) in self.cpu_load.iter().enumerate() {
            let total = dt_ms / 10 + r.range(-1, 1);
            let noise = (r.unit() - 0.5) * 0.1;
            let busy = ((load + noise).clamp(0.0, 1.0) * total as f64).round() as i64;
            busy_all += busy;
            total_all += total;
            v.insert(
                format!("cpu/{c} cpu.utilization"),
                busy as f64 / total as f64,
            );
        }
        v.insert(
            "cpu cpu.utilization".into(),
            busy_all as f64 / total_all as f64,
        );
        v.insert("cpu cpu.cores".into(), 8.0);
        // /proc/loadavg changes every 5 s.
        if self.now_ms / 1000 % 5 == 0 {
            let run = busy_all as f64 / total_all as f64 * 8.0 + r.unit();
            for (i, tau) in [1.0f64, 5.0, 15.0].iter().enumerate() {
                let e = (-5.0 / (60.0 * tau)).exp();
                self.load[i] = self.load[i] * e + run * (1.0 - e);
            }
        }
        for (i, n) in ["load1", "load5", "load15"].iter().enumerate() {
            v.insert(
                format!("cpu cpu.{n}"),
                (self.load[i] * 100.0).round() / 100.0,
            );
        }
        // Memory: page-granular churn.
        let total = 16_647_340_032i64;
        if r.chance(0.8) {
            self.mem_avail += 4096 * r.range(-300, 300);
        }
        v.insert("memory memory.total".into(), total as f64);
        v.insert("memory memory.available".into(), self.mem_avail as f64);
        v.insert("memory memory.used".into(), (total - self.mem_avail) as f64);
        v.insert("memory memory.swap.total".into(), 2_147_479_552.0);
        v.insert("memory memory.swap.used".into(), 0.0);
        // NICs: counters advance, rates are differences over the interval.
        for n in &mut self.nics {
            let rx = (n.rx_bps * secs * (0.6 + 0.8 * r.unit())) as u64;
            let tx = (n.tx_bps * secs * (0.6 + 0.8 * r.unit())) as u64;
            let d = [
                rx,
                tx,
                (rx as f64 / n.pkt_size).ceil() as u64,
                (tx as f64 / n.pkt_size).ceil() as u64,
                0,
                0,
                u64::from(n.rx_bps > 100_000.0 && r.chance(0.01)),
                0,
            ];
            let names = [
                "rx.bytes_per_second",
                "tx.bytes_per_second",
                "rx.packets_per_second",
                "tx.packets_per_second",
                "rx.errors_per_second",
                "tx.errors_per_second",
                "rx.drops_per_second",
                "tx.drops_per_second",
            ];
            for i in 0..8 {
                n.counters[i] += d[i];
                v.insert(
                    format!("nic/{} nic.{}", n.name, names[i]),
                    d[i] as f64 / secs,
                );
            }
            if let Some(speed) = n.speed_bits {
                v.insert(format!("nic/{} nic.speed", n.name), speed);
                let util = (rx.max(tx) as f64 / secs) * 8.0 / speed;
                v.insert(format!("nic/{} nic.utilization", n.name), util);
            }
        }
        v.insert("gpu gpu.present".into(), 0.0);
        // The agent itself.
        if r.chance(0.3) {
            self.agent_cpu_cs += 1;
        }
        if r.chance(0.05) {
            self.rss += 4096 * r.range(-4, 8);
        }
        v.insert("host status.up".into(), 1.0);
        v.insert("host status.uptime".into(), self.uptime_cs as f64 / 100.0);
        v.insert(
            "host status.since_ack".into(),
            r.range(20, 980) as f64 / 1000.0,
        );
        v.insert(
            "host status.agent.cpu_seconds".into(),
            self.agent_cpu_cs as f64 / 100.0,
        );
        v.insert("host status.agent.rss".into(), self.rss as f64);
        v.insert("host status.spool.dropped_readings".into(), 0.0);
        v.insert("host status.spool.batches".into(), r.range(0, 1) as f64);
        (self.now_ms, v)
    }
}
