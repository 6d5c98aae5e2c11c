//! CPU sensor: reads `/proc/stat` (per-core tick counters) and `/proc/loadavg`.
//!
//! Utilisation is the busy share of the ticks elapsed between two samples,
//! for the host (`cpu`) and each online core (`cpu/N`). It must never report
//! a utilisation without a previous sample to compare with, nor a value
//! computed from counters that went backwards (CPU hotplug, wrap): that core
//! is skipped for that sample instead.
//!
//! `/proc/stat` is parsed by hand: `procfs_core::KernelStats` drops the `N`
//! of `cpuN`, so a core going offline would shift every later core.
//! `/proc/loadavg` is parsed with `procfs_core::LoadAverage`.

use std::collections::BTreeMap;
use std::time::Instant;

use procfs_core::{FromRead, LoadAverage};
use vcp_common::metric::{CPU_CORES, CPU_LOAD1, CPU_LOAD15, CPU_LOAD5, CPU_UTILIZATION};

use super::{parse_err, parse_u64, Emit, Roots, Sensor, SensorError, TextFile};

/// Tick counters of one `cpu` line, folded into what utilisation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    /// user + nice + system + irq + softirq + steal (guest time is already
    /// inside user and nice).
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
}

/// One parsed `/proc/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatSample {
    /// The aggregate `cpu` line.
    pub total: Ticks,
    /// `cpuN` lines by core number (only online cores are listed).
    pub cores: BTreeMap<u32, Ticks>,
}

fn parse_ticks(fields: &[&str]) -> Result<Ticks, SensorError> {
    const WHAT: &str = "/proc/stat cpu line";
    if fields.len() < 4 {
        return Err(parse_err(
            WHAT,
            format!("{} fields, need at least 4", fields.len()),
        ));
    }
    let mut v = [0u64; 8]; // user nice system idle iowait irq softirq steal
    for (slot, field) in v.iter_mut().zip(fields) {
        *slot = parse_u64(WHAT, field)?;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v;
    let sum = |xs: &[u64]| {
        xs.iter()
            .try_fold(0u64, |a, &x| a.checked_add(x))
            .ok_or_else(|| parse_err(WHAT, "tick sum overflows u64"))
    };
    Ok(Ticks {
        busy: sum(&[user, nice, system, irq, softirq, steal])?,
        idle: sum(&[idle, iowait])?,
    })
}

/// Parses `/proc/stat` text.
pub fn parse_stat(text: &str) -> Result<StatSample, SensorError> {
    let mut total = None;
    let mut cores = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(label) = fields.next() else { continue };
        let Some(n) = label.strip_prefix("cpu") else {
            continue;
        };
        let fields: Vec<&str> = fields.collect();
        if n.is_empty() {
            total = Some(parse_ticks(&fields)?);
        } else {
            let core = n
                .parse::<u32>()
                .map_err(|e| parse_err("/proc/stat cpu label", format!("{label:?}: {e}")))?;
            if cores.insert(core, parse_ticks(&fields)?).is_some() {
                return Err(parse_err("/proc/stat", format!("duplicate {label}")));
            }
        }
    }
    let total = total.ok_or_else(|| parse_err("/proc/stat", "no aggregate `cpu` line"))?;
    Ok(StatSample { total, cores })
}

/// Busy share of the ticks between `prev` and `cur`, or `None` when a
/// counter went backwards or no tick elapsed.
pub fn utilization(prev: Ticks, cur: Ticks) -> Option<f64> {
    let busy = cur.busy.checked_sub(prev.busy)?;
    let idle = cur.idle.checked_sub(prev.idle)?;
    let total = busy.checked_add(idle)?;
    (total > 0).then(|| busy as f64 / total as f64)
}

/// Parses `/proc/loadavg` text into (load1, load5, load15).
pub fn parse_loadavg(text: &str) -> Result<(f64, f64, f64), SensorError> {
    let l = LoadAverage::from_read(text.as_bytes())
        .map_err(|e| parse_err("/proc/loadavg", e.to_string()))?;
    let loads = (f64::from(l.one), f64::from(l.five), f64::from(l.fifteen));
    if [loads.0, loads.1, loads.2]
        .iter()
        .any(|x| !x.is_finite() || *x < 0.0)
    {
        return Err(parse_err("/proc/loadavg", format!("implausible {text:?}")));
    }
    Ok(loads)
}

/// Emits utilisation for the host and every core present in both samples.
pub fn emit_stat(prev: Option<&StatSample>, cur: &StatSample, out: &mut dyn Emit) {
    out.emit("cpu", &CPU_CORES, cur.cores.len() as f64);
    let Some(prev) = prev else { return };
    if let Some(u) = utilization(prev.total, cur.total) {
        out.emit("cpu", &CPU_UTILIZATION, u);
    }
    for (core, ticks) in &cur.cores {
        let Some(before) = prev.cores.get(core) else {
            continue; // core came online since the previous sample
        };
        match utilization(*before, *ticks) {
            Some(u) => out.emit(&format!("cpu/{core}"), &CPU_UTILIZATION, u),
            None => tracing::debug!(core, "cpu counters went backwards or stood still; skipped"),
        }
    }
}

/// The CPU sensor.
#[derive(Debug)]
pub struct CpuSensor {
    stat: TextFile,
    loadavg: TextFile,
    prev: Option<StatSample>,
}

impl CpuSensor {
    pub fn new(roots: Roots) -> Self {
        CpuSensor {
            stat: TextFile::new(roots.proc.join("stat")),
            loadavg: TextFile::new(roots.proc.join("loadavg")),
            prev: None,
        }
    }
}

impl Sensor for CpuSensor {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn sample(&mut self, _now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        // Ticks are their own clock: `now` is not needed.
        let stat = self.stat.read().and_then(parse_stat);
        let stat_result = match stat {
            Ok(cur) => {
                emit_stat(self.prev.as_ref(), &cur, out);
                self.prev = Some(cur);
                Ok(())
            }
            Err(e) => {
                self.prev = None;
                Err(e)
            }
        };
        let load = self
            .loadavg
            .read()
            .and_then(parse_loadavg)
            .map(|(one, five, fifteen)| {
                out.emit("cpu", &CPU_LOAD1, one);
                out.emit("cpu", &CPU_LOAD5, five);
                out.emit("cpu", &CPU_LOAD15, fifteen);
            });
        stat_result.and(load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;

    const STAT_1: &str = include_str!("fixtures/stat_1.txt");
    const STAT_2: &str = include_str!("fixtures/stat_2.txt");

    fn util(c: &Collected, r: &str) -> Option<f64> {
        c.get(r, &CPU_UTILIZATION)
    }

    #[test]
    fn parses_real_stat() {
        let s = parse_stat(STAT_1).unwrap();
        // cpu  11592 0 1917 255561 230 0 35 8 0 0
        assert_eq!(
            s.total,
            Ticks {
                busy: 11592 + 1917 + 35 + 8,
                idle: 255561 + 230
            }
        );
        assert_eq!(s.cores.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(
            s.cores[&1],
            Ticks {
                busy: 5815 + 1057 + 21 + 4,
                idle: 127677 + 104
            }
        );
    }

    #[test]
    fn guest_is_not_added_twice() {
        let s = parse_stat("cpu  100 10 20 500 5 1 2 3 40 4\ncpu0 100 10 20 500 5 1 2 3 40 4\n")
            .unwrap();
        assert_eq!(
            s.total,
            Ticks {
                busy: 100 + 10 + 20 + 1 + 2 + 3,
                idle: 505
            }
        );
    }

    #[test]
    fn old_kernels_with_four_fields() {
        let s = parse_stat("cpu  1 2 3 4\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(s.total, Ticks { busy: 6, idle: 4 });
    }

    #[test]
    fn real_deltas() {
        let (a, b) = (parse_stat(STAT_1).unwrap(), parse_stat(STAT_2).unwrap());
        let mut c = Collected::default();
        emit_stat(Some(&a), &b, &mut c);
        assert_eq!(c.get("cpu", &CPU_CORES), Some(2.0));
        let total = util(&c, "cpu").unwrap();
        assert!((total - 102.0 / 409.0).abs() < 1e-12, "{total}");
        // cpu0: busy +1, idle +204; cpu1: busy +102, idle +103
        assert!((util(&c, "cpu/0").unwrap() - 1.0 / 205.0).abs() < 1e-12);
        assert!((util(&c, "cpu/1").unwrap() - 102.0 / 205.0).abs() < 1e-12);
    }

    #[test]
    fn first_sample_emits_no_utilization() {
        let mut c = Collected::default();
        emit_stat(None, &parse_stat(STAT_1).unwrap(), &mut c);
        assert_eq!(c.get("cpu", &CPU_CORES), Some(2.0));
        assert!(c.0.iter().all(|(_, m, _)| *m != CPU_UTILIZATION.name));
    }

    #[test]
    fn backwards_zero_delta_hotplug() {
        let a = parse_stat(
            "cpu  300 0 30 3000 0 0 0 0 0 0\n\
             cpu0 100 0 10 1000 0 0 0 0 0 0\n\
             cpu1 100 0 10 1000 0 0 0 0 0 0\n\
             cpu2 100 0 10 1000 0 0 0 0 0 0\n",
        )
        .unwrap();
        // cpu0 went backwards, cpu1 stood still, cpu2 went offline, cpu3 came online.
        let b = parse_stat(
            "cpu  350 0 30 3100 0 0 0 0 0 0\n\
             cpu0 50 0 10 900 0 0 0 0 0 0\n\
             cpu1 100 0 10 1000 0 0 0 0 0 0\n\
             cpu3 7 0 0 70 0 0 0 0 0 0\n",
        )
        .unwrap();
        let mut c = Collected::default();
        emit_stat(Some(&a), &b, &mut c);
        assert_eq!(c.get("cpu", &CPU_CORES), Some(3.0));
        assert!((util(&c, "cpu").unwrap() - 50.0 / 150.0).abs() < 1e-12);
        for core in ["cpu/0", "cpu/1", "cpu/2", "cpu/3"] {
            assert_eq!(util(&c, core), None, "{core}");
        }
        assert_eq!(
            utilization(Ticks { busy: 5, idle: 5 }, Ticks { busy: 5, idle: 5 }),
            None
        );
        assert_eq!(
            utilization(Ticks { busy: 5, idle: 5 }, Ticks { busy: 9, idle: 4 }),
            None
        );
        assert_eq!(
            utilization(Ticks { busy: 5, idle: 5 }, Ticks { busy: 5, idle: 9 }),
            Some(0.0)
        );
        assert_eq!(
            utilization(Ticks { busy: 5, idle: 5 }, Ticks { busy: 9, idle: 5 }),
            Some(1.0)
        );
    }

    #[test]
    fn malformed_stat_is_an_error_not_a_panic() {
        for bad in [
            "",
            "intr 1 2 3\n",
            "cpu  1 2 3\n",
            "cpu  1 2 x 4\n",
            "cpu  1 2 3 4\ncpuX 1 2 3 4\n",
            "cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu0 1 2 3 4\n",
            "cpu  18446744073709551615 1 0 0\n",
            "cpu  -1 2 3 4\n",
        ] {
            assert!(parse_stat(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn loadavg() {
        let (one, five, fifteen) = parse_loadavg(include_str!("fixtures/loadavg.txt")).unwrap();
        assert!(
            (one - 0.12).abs() < 1e-6
                && (five - 0.27).abs() < 1e-6
                && (fifteen - 0.13).abs() < 1e-6
        );
        for bad in [
            "",
            "0.1 0.2",
            "a b c 1/2 3",
            "0.1 0.2 0.3 1/2",
            "NaN 1 1 1/2 3",
            "-1 1 1 1/2 3",
        ] {
            assert!(parse_loadavg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_files_are_io_errors() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: dir.path().to_owned(),
            sys: dir.path().to_owned(),
        };
        let mut s = CpuSensor::new(roots);
        let mut c = Collected::default();
        assert!(matches!(
            s.sample(Instant::now(), &mut c),
            Err(SensorError::Io { .. })
        ));
        assert!(c.0.is_empty());
        // loadavg present, stat missing: load still emitted, error still returned.
        std::fs::write(dir.path().join("loadavg"), "1.00 2.00 3.00 1/2 3\n").unwrap();
        assert!(s.sample(Instant::now(), &mut c).is_err());
        assert_eq!(c.get("cpu", &CPU_LOAD15), Some(3.0));
    }

    #[test]
    fn this_machine() {
        let mut s = CpuSensor::new(Roots::default());
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        assert!(util(&c, "cpu").is_none());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        let online = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        assert_eq!(c.get("cpu", &CPU_CORES), Some(online as f64));
        assert!(c.get("cpu", &CPU_LOAD1).unwrap() >= 0.0);
        assert!(util(&c, "cpu").is_some());
        for (r, m, v) in &c.0 {
            if *m == CPU_UTILIZATION.name {
                assert!((0.0..=1.0).contains(v), "{r} {v}");
            }
        }
    }
}
