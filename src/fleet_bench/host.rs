//! SIMULATED hosts: the series a host of each profile has, with values
//! that move like a real server's. Each starts from one real reading of
//! this machine (so names, units and magnitudes are real) and then drifts:
//! a slow wave of its own period and phase per host and series, plus
//! noise, utilisations kept within [0, 1]. The sampler, encoder and uplink
//! they go through are the agent's own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vcp_agent::sensors::{self, Collected, Emit, Sensor, SensorError};
use vcp_agent::uplink_status::UplinkStatus;
use vcp_common::metric::{self, Metric, Unit};

/// What a SIMULATED host looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// This machine's own series (~90 here).
    Small,
    /// 64 cores, 8 NICs, 8 GPUs and 24 services (~400 series).
    Large,
}

/// One series of a profile and the value it starts from.
#[derive(Debug, Clone)]
pub struct Series {
    pub resource: Arc<str>,
    pub metric: &'static Metric,
    pub base: f64,
}

/// Reads this machine once (twice, for the rates) with the agent's own
/// sensors.
pub fn this_machine() -> Vec<Series> {
    let roots = sensors::Roots::default();
    let status = Arc::new(UplinkStatus::default());
    let mut sensors = sensors::standard(&roots, status, &Default::default());
    let mut out = Collected::default();
    for pass in 0..2 {
        out.0.clear();
        for s in &mut sensors {
            let _ = s.sample(Instant::now(), &mut out);
        }
        if pass == 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    out.0
        .into_iter()
        .filter_map(|(resource, name, base)| {
            let metric = metric::ALL.iter().find(|m| m.name == name)?;
            Some(Series {
                resource: resource.into(),
                metric,
                base,
            })
        })
        .collect()
}

/// The series of a host of `profile`, from this machine's `real` ones.
pub fn profile(profile: Profile, real: &[Series]) -> Vec<Series> {
    match profile {
        Profile::Small => real.to_vec(),
        Profile::Large => large(real),
    }
}

fn base_of(real: &[Series], m: &Metric, default: f64) -> f64 {
    real.iter()
        .find(|s| s.metric.name == m.name)
        .map_or(default, |s| s.base)
}

fn large(real: &[Series]) -> Vec<Series> {
    let mut out: Vec<Series> = real
        .iter()
        .filter(|s| !s.resource.contains('/'))
        .cloned()
        .collect();
    let mut add = |resource: String, metric: &'static Metric, base: f64| {
        out.push(Series {
            resource: resource.into(),
            metric,
            base,
        })
    };
    let util = base_of(real, &metric::CPU_UTILIZATION, 0.3);
    for core in 0..64 {
        add(format!("cpu/{core}"), &metric::CPU_UTILIZATION, util);
    }
    let nic = [
        (&metric::NIC_RX_BYTES, 4.0e7),
        (&metric::NIC_TX_BYTES, 3.0e7),
        (&metric::NIC_RX_PACKETS, 3.0e4),
        (&metric::NIC_TX_PACKETS, 2.5e4),
        (&metric::NIC_RX_ERRORS, 0.0),
        (&metric::NIC_TX_ERRORS, 0.0),
        (&metric::NIC_RX_DROPS, 0.5),
        (&metric::NIC_TX_DROPS, 0.2),
        (&metric::NIC_SPEED, 2.5e10),
        (&metric::NIC_UTILIZATION, 0.05),
    ];
    for n in 0..8 {
        for (m, base) in nic {
            add(format!("nic/ens{n}"), m, base);
        }
    }
    let gpu = [
        (&metric::GPU_UTILIZATION, 0.6),
        (&metric::GPU_MEMORY_UTILIZATION, 0.4),
        (&metric::GPU_MEMORY_USED, 3.2e10),
        (&metric::GPU_MEMORY_TOTAL, 8.0e10),
        (&metric::GPU_POWER, 450.0),
        (&metric::GPU_TEMPERATURE, 62.0),
        (&metric::GPU_SM_CLOCK, 1700.0),
    ];
    for g in 0..8 {
        for (m, base) in gpu {
            add(format!("gpu/{g}"), m, base);
        }
    }
    let service = [
        (&metric::CGROUP_CPU_USAGE, 2.0),
        (&metric::CGROUP_MEMORY_CURRENT, 4.0e9),
        (&metric::CGROUP_IO_READ, 2.0e6),
        (&metric::CGROUP_IO_WRITE, 1.0e6),
        (&metric::CGROUP_CPU_PRESSURE, 0.02),
        (&metric::CGROUP_MEMORY_PRESSURE, 0.01),
        (&metric::CGROUP_IO_PRESSURE, 0.03),
        (&metric::CGROUP_PROCESSES, 40.0),
    ];
    for s in 0..24 {
        for (m, base) in service {
            add(format!("cgroup/svc{s}"), m, base);
        }
    }
    out
}

/// A SIMULATED host's only sensor.
pub struct SimulatedHost {
    series: Arc<Vec<Series>>,
    /// Per series: period (s) and phase of its wave.
    waves: Vec<(f64, f64)>,
    rng: SmallRng,
    start: Instant,
}

impl SimulatedHost {
    pub fn new(series: Arc<Vec<Series>>, seed: u64) -> SimulatedHost {
        let mut rng = SmallRng::seed_from_u64(seed);
        let waves = series
            .iter()
            .map(|_| {
                (
                    rng.random_range(60.0..600.0),
                    rng.random_range(0.0..std::f64::consts::TAU),
                )
            })
            .collect();
        SimulatedHost {
            series,
            waves,
            rng,
            start: Instant::now(),
        }
    }
}

/// Values that do not move on a real host (sizes, counts, speeds).
fn steady(m: &Metric) -> bool {
    [
        metric::CPU_CORES.name,
        metric::MEMORY_TOTAL.name,
        metric::MEMORY_SWAP_TOTAL.name,
        metric::NIC_SPEED.name,
        metric::GPU_MEMORY_TOTAL.name,
        metric::GPU_PRESENT.name,
        metric::STATUS_UP.name,
    ]
    .contains(&m.name)
}

impl Sensor for SimulatedHost {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn sample(&mut self, now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let t = now.saturating_duration_since(self.start).as_secs_f64();
        for (s, &(period, phase)) in self.series.iter().zip(&self.waves) {
            let value = if steady(s.metric) {
                s.base
            } else {
                let wave = 0.2 * (std::f64::consts::TAU * t / period + phase).sin();
                let noise = self.rng.random_range(-0.05..0.05);
                let v = (s.base.max(1e-3) * (1.0 + wave + noise)).max(0.0);
                if s.metric.unit == Unit::Ratio {
                    v.min(1.0)
                } else {
                    v
                }
            };
            out.emit(&s.resource, s.metric, value);
        }
        Ok(())
    }
}
