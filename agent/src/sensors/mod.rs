//! Sensors: each file reads one part of the real machine and emits readings
//! in the standard schema (`vcp_common::metric`). Parsing is separated from
//! file access: every parser takes text so it can be tested on fixtures.
//!
//! A sensor never invents a value: when a source is missing or unreadable it
//! emits nothing for that series (and says why once in the log).

pub mod app;
pub mod cgroup;
pub mod cpu;
pub mod cpufreq;
pub mod disk;
pub mod filesystem;
pub mod gpu;
pub mod hwmon;
pub mod memory;
pub mod nic;
pub mod pressure;
pub mod status;
mod statvfs_worker;
mod text_file;

pub(crate) use text_file::TextFile;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use vcp_common::metric::Metric;

use crate::uplink_status::UplinkStatus;

/// Where sensors read the machine; tests point these at fixture trees.
#[derive(Debug, Clone)]
pub struct Roots {
    /// Normally `/proc`.
    pub proc: PathBuf,
    /// Normally `/sys`.
    pub sys: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
        }
    }
}

/// Receives readings from sensors.
pub trait Emit {
    fn emit(&mut self, resource: &str, metric: &Metric, value: f64);
}

/// Collects readings into a vector; used by tests and tools.
#[derive(Debug, Default)]
pub struct Collected(pub Vec<(String, &'static str, f64)>);

impl Emit for Collected {
    fn emit(&mut self, resource: &str, metric: &Metric, value: f64) {
        self.0.push((resource.to_owned(), metric.name, value));
    }
}

impl Collected {
    /// The value emitted for `(resource, metric)`, if any.
    pub fn get(&self, resource: &str, metric: &Metric) -> Option<f64> {
        self.0
            .iter()
            .find(|(r, m, _)| r == resource && *m == metric.name)
            .map(|(_, _, v)| *v)
    }
}

/// Why a sensor could not read this time.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {what}: {detail}")]
    Parse { what: &'static str, detail: String },
}

/// One source of readings.
pub trait Sensor: Send {
    fn name(&self) -> &'static str;
    /// Reads the machine once. `now` is a monotonic instant used for rates.
    fn sample(&mut self, now: Instant, out: &mut dyn Emit) -> Result<(), SensorError>;
}

/// The standard sensor set of a host, in order: cpu, cpufreq, memory, nic,
/// disk, filesystem, pressure, hwmon, gpu, status, then those of `extra`.
pub fn standard(
    roots: &Roots,
    status: Arc<UplinkStatus>,
    extra: &SensorConfig,
) -> Vec<Box<dyn Sensor>> {
    let mut sensors: Vec<Box<dyn Sensor>> = vec![
        Box::new(cpu::CpuSensor::new(roots.clone())),
        Box::new(cpufreq::CpuFreqSensor::new(roots)),
        Box::new(memory::MemorySensor::new(roots.clone())),
        Box::new(nic::NicSensor::new(roots.clone())),
        Box::new(disk::DiskSensor::new(roots, extra.disk_skip.clone())),
        Box::new(filesystem::FilesystemSensor::new(
            roots,
            extra.filesystem_skip_types.clone(),
        )),
        Box::new(pressure::PressureSensor::new(roots)),
        Box::new(hwmon::HwmonSensor::new(roots)),
        Box::new(gpu::GpuSensor::new()),
        Box::new(status::StatusSensor::new(roots.clone(), status)),
    ];
    if !extra.cgroups.is_empty() || extra.cgroup_slice.is_some() {
        sensors.push(Box::new(cgroup::CgroupSensor::new(
            extra.cgroup_root.clone(),
            extra.cgroups.clone(),
            extra.cgroup_slice.clone(),
        )));
    }
    if let Some(port) = extra.app_port {
        let bound = extra
            .app_allowed()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
            .and_then(|allowed| {
                app::AppSensor::bind(
                    port,
                    extra.app_default_resource.clone(),
                    allowed,
                    extra.app_max_series,
                )
            });
        match bound {
            Ok(s) => {
                tracing::info!(addr = ?s.local_addr().ok(), "application metrics endpoint listening");
                sensors.push(Box::new(s));
            }
            Err(e) => tracing::warn!(port, error = %e, "application metrics endpoint not started"),
        }
    }
    sensors
}

/// The `[sensors]` table of the agent's config: which devices and
/// filesystems the host's sensors leave out, and the sensors of virtual
/// resources and applications.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// Block devices whose name starts with one of these are not read
    /// (partitions never are).
    pub disk_skip: Vec<String>,
    /// Filesystem types not read.
    pub filesystem_skip_types: Vec<String>,
    /// The cgroup v2 mount.
    pub cgroup_root: PathBuf,
    /// Groups to read, relative to the root (e.g. `system.slice/web.service`).
    pub cgroups: Vec<String>,
    /// A slice whose direct child groups are all read.
    pub cgroup_slice: Option<String>,
    /// Loopback UDP port where applications push metrics (0: any free port).
    pub app_port: Option<u16>,
    /// Resource of application lines without a `#resource:` tag; lines may
    /// always name it.
    #[serde(deserialize_with = "de_default_resource")]
    pub app_default_resource: Option<String>,
    /// Further resources application lines may name (besides the default
    /// resource, `cgroup/<g>` for each of `cgroups` and
    /// `cgroup/<cgroup_slice>/<child>`), e.g. `["app/web"]`.
    #[serde(deserialize_with = "de_app_resources")]
    pub app_resources: Vec<String>,
    /// Distinct `(resource, metric)` series the application endpoint emits
    /// over the agent's life (at most [`app::MAX_MAX_SERIES`]).
    pub app_max_series: usize,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            disk_skip: disk::DEFAULT_SKIP.iter().map(|s| s.to_string()).collect(),
            filesystem_skip_types: filesystem::DEFAULT_SKIP_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroups: Vec::new(),
            cgroup_slice: None,
            app_port: None,
            app_default_resource: None,
            app_resources: Vec::new(),
            app_max_series: app::DEFAULT_MAX_SERIES,
        }
    }
}

fn de_default_resource<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::{de::Error, Deserialize};
    let r = Option::<String>::deserialize(d)?;
    if let Some(r) = &r {
        app::check_resource(r)
            .map_err(|e| D::Error::custom(format!("app_default_resource: {e}")))?;
    }
    Ok(r)
}

fn de_app_resources<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::{de::Error, Deserialize};
    let v = Vec::<String>::deserialize(d)?;
    for r in &v {
        app::check_resource(r).map_err(|e| D::Error::custom(format!("app_resources: {e}")))?;
    }
    Ok(v)
}

impl SensorConfig {
    /// Checks the application endpoint's settings (the TOML parser already
    /// checks the resources; this covers values set in code): listed and
    /// default resources must be valid resource ids, the series cap at most
    /// [`app::MAX_MAX_SERIES`]. The error names the bad value.
    pub fn validate(&self) -> Result<(), String> {
        self.app_allowed()?;
        if self.app_max_series > app::MAX_MAX_SERIES {
            return Err(format!(
                "app_max_series = {} is above {}",
                self.app_max_series,
                app::MAX_MAX_SERIES
            ));
        }
        Ok(())
    }

    /// The resources application lines may name: `app_resources`,
    /// `app_default_resource`, `cgroup/<g>` for each of `cgroups` and the
    /// direct children of `cgroup/<cgroup_slice>`. A listed or default
    /// resource that is not a valid resource id is an error naming it; a
    /// group that does not make one is left out (the cgroup sensor could
    /// not report it either).
    pub fn app_allowed(&self) -> Result<app::AllowedResources, String> {
        let mut allowed = app::AllowedResources::default();
        for r in &self.app_resources {
            allowed
                .insert(r)
                .map_err(|e| format!("app_resources: {e}"))?;
        }
        if let Some(r) = &self.app_default_resource {
            allowed
                .insert(r)
                .map_err(|e| format!("app_default_resource: {e}"))?;
        }
        for g in &self.cgroups {
            if let Err(e) = allowed.insert_cgroup(g) {
                tracing::debug!(group = %g, error = %e, "app sensor: group not allowed as a resource");
            }
        }
        if let Some(slice) = &self.cgroup_slice {
            if let Err(e) = allowed.set_cgroup_slice(slice) {
                tracing::debug!(slice = %slice, error = %e, "app sensor: slice children not allowed as resources");
            }
        }
        Ok(allowed)
    }
}

/// Builds a [`SensorError::Parse`].
pub(crate) fn parse_err(what: &'static str, detail: impl Into<String>) -> SensorError {
    SensorError::Parse {
        what,
        detail: detail.into(),
    }
}

/// Parses one unsigned decimal field.
pub(crate) fn parse_u64(what: &'static str, field: &str) -> Result<u64, SensorError> {
    field
        .parse::<u64>()
        .map_err(|e| parse_err(what, format!("{field:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_set_in_order() {
        let sensors = standard(
            &Roots::default(),
            Arc::new(UplinkStatus::default()),
            &SensorConfig::default(),
        );
        let names: Vec<&str> = sensors.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "cpufreq",
                "memory",
                "nic",
                "disk",
                "filesystem",
                "pressure",
                "hwmon",
                "gpu",
                "status"
            ]
        );
    }

    #[test]
    fn app_settings_parse_and_are_checked() {
        let v: SensorConfig = toml::from_str(
            "app_port = 0\napp_resources = [\"app/web\", \"cgroup/system.slice/api.service\"]\napp_default_resource = \"app/default\"\ncgroups = [\"web\"]\ncgroup_slice = \"vcp.slice\"",
        )
        .unwrap();
        assert_eq!(
            v.app_resources,
            ["app/web", "cgroup/system.slice/api.service"]
        );
        assert_eq!(v.app_max_series, app::DEFAULT_MAX_SERIES);
        v.validate().unwrap();
        let allowed = v.app_allowed().unwrap();
        for r in [
            "app/web",
            "cgroup/system.slice/api.service",
            "app/default",
            "cgroup/web",
            "cgroup/vcp.slice/db",
        ] {
            assert!(allowed.allows(r), "{r}");
        }
        assert!(!allowed.allows("app/other"));
        let sensors = standard(&Roots::default(), Arc::new(UplinkStatus::default()), &v);
        assert_eq!(sensors.last().map(|s| s.name()), Some("app"));

        // Bad resources are refused when the file is read, naming them.
        for (text, bad) in [
            (
                "app_resources = [\"app/web\", \"app/../etc\"]",
                "app/../etc",
            ),
            ("app_resources = [\"a b\"]", "a b"),
            ("app_default_resource = \"cgroup//web\"", "cgroup//web"),
        ] {
            let e = toml::from_str::<SensorConfig>(text).unwrap_err();
            assert!(e.to_string().contains(bad), "{text}: {e}");
        }
        // And by validate() when set in code.
        for (v, bad) in [
            (
                SensorConfig {
                    app_resources: vec!["app/web".into(), "app/x/..".into()],
                    ..SensorConfig::default()
                },
                "app/x/..",
            ),
            (
                SensorConfig {
                    app_default_resource: Some("/app".into()),
                    ..SensorConfig::default()
                },
                "/app",
            ),
            (
                SensorConfig {
                    app_max_series: app::MAX_MAX_SERIES + 1,
                    ..SensorConfig::default()
                },
                "app_max_series",
            ),
        ] {
            let e = v.validate().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
