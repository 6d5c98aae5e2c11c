//! Hardware monitors: temperatures, fan speeds and power from
//! `/sys/class/hwmon/hwmonN/`, for resource `hwmon/<chip>/<sensor>`.
//!
//! A chip is named by its `name` file (`coretemp`, `nvme`, `k10temp`, …),
//! with `.1`, `.2`, … after the first when several chips share a name (two
//! sockets), in hwmon order; a sensor by its `*_label` file where there is
//! one (`Package id 0`), else by its file stem (`temp1`), with characters a
//! resource id does not take written as `_`. Values: `tempN_input`
//! millidegrees Celsius, `fanN_input` RPM, `powerN_input` (or
//! `powerN_average`) microwatts. Chips are found once, at start; a virtual
//! machine usually has none, and then the sensor emits nothing.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use vcp_common::metric::{Metric, HWMON_FAN, HWMON_POWER, HWMON_TEMPERATURE};
use vcp_common::resource::to_segment;

use super::{parse_err, Emit, Roots, Sensor, SensorError, TextFile};

/// Every metric this sensor emits.
pub const METRICS: [Metric; 3] = [HWMON_TEMPERATURE, HWMON_FAN, HWMON_POWER];
/// Most readings followed over every chip.
pub const MAX_INPUTS: usize = 1024;

/// A value file's reading in the metric's unit.
pub fn parse_input(metric: &Metric, text: &str) -> Result<f64, SensorError> {
    let t = text.trim();
    let raw: i64 = t
        .parse()
        .map_err(|e| parse_err("hwmon", format!("{t:?}: {e}")))?;
    Ok(match metric.name {
        n if n == HWMON_TEMPERATURE.name => raw as f64 / 1000.0,
        n if n == HWMON_POWER.name => raw as f64 / 1e6,
        _ => raw as f64,
    })
}

/// Which metric a file of a hwmon directory feeds, and the sensor's stem
/// (`temp1_input` -> temperature, `temp1`).
fn input_of(file: &str) -> Option<(&'static Metric, &str)> {
    let (stem, kind) = file.rsplit_once('_')?;
    let base = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let metric = match (base, kind) {
        ("temp", "input") => &HWMON_TEMPERATURE,
        ("fan", "input") => &HWMON_FAN,
        ("power", "input") | ("power", "average") => &HWMON_POWER,
        _ => return None,
    };
    // A numbered sensor: `temp1`, not `temp`.
    (stem.len() > base.len()).then_some((metric, stem))
}

#[derive(Debug)]
struct Input {
    resource: String,
    metric: &'static Metric,
    file: TextFile,
}

/// The hwmon sensor.
#[derive(Debug)]
pub struct HwmonSensor {
    inputs: Vec<Input>,
}

/// The inputs of one chip directory.
fn chip_inputs(dir: &Path, chip: &str, out: &mut Vec<Input>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        let Some((metric, stem)) = input_of(name) else {
            continue;
        };
        // power1_input and power1_average: the first one found.
        if !seen.insert((metric.name, stem.to_owned())) || out.len() >= MAX_INPUTS {
            continue;
        }
        let label = std::fs::read_to_string(dir.join(format!("{stem}_label")))
            .map(|l| to_segment(&l))
            .unwrap_or_else(|_| stem.to_owned());
        let resource = format!("hwmon/{chip}/{label}");
        if vcp_common::resource::validate(&resource).is_err() {
            continue;
        }
        out.push(Input {
            resource,
            metric,
            file: TextFile::new(dir.join(name)),
        });
    }
}

impl HwmonSensor {
    pub fn new(roots: &Roots) -> Self {
        let class = roots.sys.join("class/hwmon");
        let mut chips: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(&class)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e
                    .file_name()
                    .to_str()?
                    .strip_prefix("hwmon")?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        chips.sort();
        let mut named: HashMap<String, usize> = HashMap::new();
        let mut inputs = Vec::new();
        for (_, dir) in chips {
            let name = std::fs::read_to_string(dir.join("name"))
                .map(|n| to_segment(&n))
                .unwrap_or_else(|_| "hwmon".into());
            let count = named.entry(name.clone()).or_default();
            let chip = match *count {
                0 => name.clone(),
                k => format!("{name}.{k}"),
            };
            *count += 1;
            chip_inputs(&dir, &chip, &mut inputs);
        }
        HwmonSensor { inputs }
    }
}

impl Sensor for HwmonSensor {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn sample(&mut self, _now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let mut result = Ok(());
        for input in &mut self.inputs {
            match input.file.read().and_then(|t| parse_input(input.metric, t)) {
                Ok(v) => out.emit(&input.resource, input.metric, v),
                // A sensor the chip cannot read now (ENXIO, EIO) gives none.
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

    fn chip(root: &Path, n: u32, name: &str, files: &[(&str, &str)]) {
        let d = root.join(format!("class/hwmon/hwmon{n}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        for (f, v) in files {
            std::fs::write(d.join(f), v).unwrap();
        }
    }

    #[test]
    fn chips_sensors_labels_and_units() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let socket = [
            ("temp1_input", "45000\n"),
            ("temp1_label", "Package id 0\n"),
            ("temp2_input", "43500\n"),
            ("temp2_label", "Core 0\n"),
            ("temp1_crit", "100000\n"),
        ];
        chip(&sys, 0, "coretemp", &socket);
        chip(&sys, 1, "coretemp", &socket[..2]);
        chip(
            &sys,
            2,
            "nct6775",
            &[
                ("fan1_input", "1250\n"),
                ("power1_average", "95500000\n"),
                ("power1_input", "96000000\n"),
            ],
        );
        let roots = Roots {
            proc: dir.path().join("proc"),
            sys,
        };
        let mut sensor = HwmonSensor::new(&roots);
        let mut out = Collected::default();
        sensor.sample(Instant::now(), &mut out).unwrap();
        assert_eq!(
            out.get("hwmon/coretemp/Package_id_0", &HWMON_TEMPERATURE),
            Some(45.0)
        );
        assert_eq!(
            out.get("hwmon/coretemp/Core_0", &HWMON_TEMPERATURE),
            Some(43.5)
        );
        assert_eq!(
            out.get("hwmon/coretemp.1/Package_id_0", &HWMON_TEMPERATURE),
            Some(45.0)
        );
        assert_eq!(out.get("hwmon/nct6775/fan1", &HWMON_FAN), Some(1250.0));
        // power1_average sorts first and is the one read.
        assert_eq!(out.get("hwmon/nct6775/power1", &HWMON_POWER), Some(95.5));
        assert_eq!(out.0.len(), 5, "no crit, one power: {:?}", out.0);
    }

    #[test]
    fn bad_values_are_errors_and_odd_names_are_made_segments() {
        assert!(parse_input(&HWMON_TEMPERATURE, "n/a").is_err());
        assert_eq!(parse_input(&HWMON_TEMPERATURE, "-5000\n").unwrap(), -5.0);
        assert_eq!(to_segment(" Tctl / Tdie "), "Tctl___Tdie");
        assert_eq!(to_segment(".."), "_");
        assert_eq!(input_of("temp_input"), None);
        assert_eq!(input_of("in0_input"), None);
    }

    #[test]
    fn a_machine_without_hwmon_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: dir.path().join("proc"),
            sys: dir.path().join("sys"),
        };
        let mut sensor = HwmonSensor::new(&roots);
        let mut out = Collected::default();
        sensor.sample(Instant::now(), &mut out).unwrap();
        assert!(out.0.is_empty());
        // And this machine, whatever it has.
        let mut here = HwmonSensor::new(&Roots::default());
        let _ = here.sample(Instant::now(), &mut out);
        for (r, _, v) in &out.0 {
            assert!(r.starts_with("hwmon/") && v.is_finite(), "{r} {v}");
        }
    }
}
