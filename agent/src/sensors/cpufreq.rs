//! CPU frequency and thermal throttling, per logical core (`cpu/N`).
//!
//! Frequency comes from cpufreq (`/sys/devices/system/cpu/cpuN/cpufreq/
//! scaling_cur_freq`, kHz) where the kernel has a cpufreq driver, else from
//! the `cpu MHz` lines of `/proc/cpuinfo` (x86; a virtual machine has no
//! cpufreq). Throttling is the cumulative count of thermal throttle events
//! of the core and of its package (`thermal_throttle/{core,package}_
//! throttle_count`), where the platform exposes them (Intel, bare metal);
//! the package count is reported once per package, on `cpu/package/P`.
//! Cores are found once, at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vcp_common::metric::{Metric, CPU_FREQUENCY, CPU_THROTTLE_CORE, CPU_THROTTLE_PACKAGE};

use super::{parse_err, parse_u64, Emit, Roots, Sensor, SensorError, TextFile};

/// Every metric this sensor emits.
pub const METRICS: [Metric; 3] = [CPU_FREQUENCY, CPU_THROTTLE_CORE, CPU_THROTTLE_PACKAGE];
/// Most cores followed.
pub const MAX_CORES: usize = 4096;

/// The `cpu MHz` of each `processor` of `/proc/cpuinfo`, by core number.
pub fn parse_cpuinfo_mhz(text: &str) -> Result<BTreeMap<u32, f64>, SensorError> {
    let mut out = BTreeMap::new();
    let mut core = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "processor" => {
                let n = parse_u64("cpuinfo", value.trim())?;
                core = Some(u32::try_from(n).map_err(|_| parse_err("cpuinfo", "core number"))?);
            }
            "cpu MHz" => {
                let mhz: f64 = value
                    .trim()
                    .parse()
                    .map_err(|e| parse_err("cpuinfo", format!("cpu MHz {value:?}: {e}")))?;
                if let Some(c) = core {
                    if mhz.is_finite() && mhz > 0.0 {
                        out.insert(c, mhz);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One core's files.
#[derive(Debug)]
struct Core {
    n: u32,
    resource: String,
    freq_khz: Option<TextFile>,
    throttles: Option<TextFile>,
}

/// The CPU frequency sensor.
#[derive(Debug)]
pub struct CpuFreqSensor {
    cores: Vec<Core>,
    /// Per package: one core's package throttle count file.
    packages: Vec<(String, TextFile)>,
    /// Where no core has cpufreq.
    cpuinfo: Option<TextFile>,
}

fn read_u64(file: &mut TextFile, what: &'static str) -> Result<u64, SensorError> {
    file.read().and_then(|t| parse_u64(what, t.trim()))
}

/// The logical cores under `dir` (`cpu0`, `cpu1`, …), in order.
fn cores_in(dir: &Path) -> Vec<u32> {
    let mut cores: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
        .collect();
    cores.sort_unstable();
    cores.truncate(MAX_CORES);
    cores
}

impl CpuFreqSensor {
    pub fn new(roots: &Roots) -> Self {
        let dir = roots.sys.join("devices/system/cpu");
        let mut cores = Vec::new();
        let mut packages: BTreeMap<u64, PathBuf> = BTreeMap::new();
        for n in cores_in(&dir) {
            let core = dir.join(format!("cpu{n}"));
            let file = |rel: &str| {
                let p = core.join(rel);
                p.exists().then(|| TextFile::new(p))
            };
            let package = std::fs::read_to_string(core.join("topology/physical_package_id"))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            let package_count = core.join("thermal_throttle/package_throttle_count");
            if let (Some(p), true) = (package, package_count.exists()) {
                packages.entry(p).or_insert(package_count);
            }
            cores.push(Core {
                n,
                resource: format!("cpu/{n}"),
                freq_khz: file("cpufreq/scaling_cur_freq"),
                throttles: file("thermal_throttle/core_throttle_count"),
            });
        }
        let cpufreq = cores.iter().any(|c| c.freq_khz.is_some());
        CpuFreqSensor {
            cores,
            packages: packages
                .into_iter()
                .map(|(p, path)| (format!("cpu/package/{p}"), TextFile::new(path)))
                .collect(),
            cpuinfo: (!cpufreq).then(|| TextFile::new(roots.proc.join("cpuinfo"))),
        }
    }
}

impl Sensor for CpuFreqSensor {
    fn name(&self) -> &'static str {
        "cpufreq"
    }

    fn sample(&mut self, _now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let mut result = Ok(());
        let from_cpuinfo = match &mut self.cpuinfo {
            Some(f) => match f.read().and_then(parse_cpuinfo_mhz) {
                Ok(m) => m,
                Err(e) => {
                    result = Err(e);
                    BTreeMap::new()
                }
            },
            None => BTreeMap::new(),
        };
        for core in &mut self.cores {
            let mhz = match &mut core.freq_khz {
                Some(f) => match read_u64(f, "scaling_cur_freq") {
                    Ok(khz) => Some(khz as f64 / 1000.0),
                    Err(e) => {
                        result = result.and(Err(e));
                        None
                    }
                },
                None => from_cpuinfo.get(&core.n).copied(),
            };
            if let Some(mhz) = mhz {
                out.emit(&core.resource, &CPU_FREQUENCY, mhz);
            }
            if let Some(f) = &mut core.throttles {
                match read_u64(f, "core_throttle_count") {
                    Ok(n) => out.emit(&core.resource, &CPU_THROTTLE_CORE, n as f64),
                    Err(e) => result = result.and(Err(e)),
                }
            }
        }
        for (resource, f) in &mut self.packages {
            match read_u64(f, "package_throttle_count") {
                Ok(n) => out.emit(resource, &CPU_THROTTLE_PACKAGE, n as f64),
                Err(e) => result = result.and(Err(e)),
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;

    #[test]
    fn parses_cpuinfo_of_this_machine_and_of_a_host_without_mhz() {
        let m = parse_cpuinfo_mhz(include_str!("fixtures/cpuinfo.txt")).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&0], 2596.14);
        assert_eq!(m[&1], 2596.14);
        // aarch64 says no MHz: nothing, not an error.
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n";
        assert!(parse_cpuinfo_mhz(arm).unwrap().is_empty());
        assert!(parse_cpuinfo_mhz("processor\t: 0\ncpu MHz\t\t: fast\n").is_err());
    }

    #[test]
    fn cpufreq_and_throttle_counts_where_sysfs_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: dir.path().join("proc"),
            sys: dir.path().join("sys"),
        };
        let cpu = roots.sys.join("devices/system/cpu");
        for (n, khz, core, package) in [(0, "3400000", "7", "2"), (1, "800000", "0", "2")] {
            let c = cpu.join(format!("cpu{n}"));
            for d in ["cpufreq", "thermal_throttle", "topology"] {
                std::fs::create_dir_all(c.join(d)).unwrap();
            }
            std::fs::write(c.join("cpufreq/scaling_cur_freq"), khz).unwrap();
            std::fs::write(c.join("thermal_throttle/core_throttle_count"), core).unwrap();
            std::fs::write(c.join("thermal_throttle/package_throttle_count"), package).unwrap();
            std::fs::write(c.join("topology/physical_package_id"), "0\n").unwrap();
        }
        // Not a core.
        std::fs::create_dir_all(cpu.join("cpufreq")).unwrap();
        let mut sensor = CpuFreqSensor::new(&roots);
        let mut out = Collected::default();
        sensor.sample(Instant::now(), &mut out).unwrap();
        assert_eq!(out.get("cpu/0", &CPU_FREQUENCY), Some(3400.0));
        assert_eq!(out.get("cpu/1", &CPU_FREQUENCY), Some(800.0));
        assert_eq!(out.get("cpu/0", &CPU_THROTTLE_CORE), Some(7.0));
        assert_eq!(out.get("cpu/package/0", &CPU_THROTTLE_PACKAGE), Some(2.0));
        assert_eq!(out.0.len(), 5, "one package count: {:?}", out.0);
    }

    #[test]
    fn reads_this_machine() {
        let mut sensor = CpuFreqSensor::new(&Roots::default());
        let mut out = Collected::default();
        sensor.sample(Instant::now(), &mut out).unwrap();
        for (r, m, v) in &out.0 {
            assert!(r.starts_with("cpu/"), "{r}");
            if *m == CPU_FREQUENCY.name {
                assert!(*v > 10.0 && *v < 10_000.0, "{r} {v} MHz");
            }
        }
    }
}
