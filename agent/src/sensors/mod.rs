//! Sensors: each file reads one part of the real machine and emits readings
//! in the standard schema (`vcp_common::metric`). Parsing is separated from
//! file access: every parser takes text so it can be tested on fixtures.
//!
//! A sensor never invents a value: when a source is missing or unreadable it
//! emits nothing for that series (and says why once in the log).

pub mod app;
pub mod cgroup;
pub mod cpu;
pub mod gpu;
pub mod memory;
pub mod nic;
pub mod status;

use std::path::{Path, PathBuf};
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

/// The standard sensor set of a host, in order: cpu, memory, nic, gpu, status.
pub fn standard(
    roots: &Roots,
    status: Arc<UplinkStatus>,
    extra: &VirtualSensors,
) -> Vec<Box<dyn Sensor>> {
    let mut sensors: Vec<Box<dyn Sensor>> = vec![
        Box::new(cpu::CpuSensor::new(roots.clone())),
        Box::new(memory::MemorySensor::new(roots.clone())),
        Box::new(nic::NicSensor::new(roots.clone())),
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
        match app::AppSensor::bind(port, extra.app_default_resource.clone()) {
            Ok(s) => {
                tracing::info!(addr = ?s.local_addr().ok(), "application metrics endpoint listening");
                sensors.push(Box::new(s));
            }
            Err(e) => tracing::warn!(port, error = %e, "application metrics endpoint not started"),
        }
    }
    sensors
}

/// Sensors of virtual resources and applications, from the agent's config.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VirtualSensors {
    /// The cgroup v2 mount.
    pub cgroup_root: PathBuf,
    /// Groups to read, relative to the root (e.g. `system.slice/web.service`).
    pub cgroups: Vec<String>,
    /// A slice whose direct child groups are all read.
    pub cgroup_slice: Option<String>,
    /// Loopback UDP port where applications push metrics (0: any free port).
    pub app_port: Option<u16>,
    /// Resource of application lines without a `#resource:` tag.
    pub app_default_resource: Option<String>,
}

impl Default for VirtualSensors {
    fn default() -> Self {
        VirtualSensors {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroups: Vec::new(),
            cgroup_slice: None,
            app_port: None,
            app_default_resource: None,
        }
    }
}

/// Reads a whole text file, mapping failure to [`SensorError::Io`].
pub(crate) fn read_text(path: &Path) -> Result<String, SensorError> {
    std::fs::read_to_string(path).map_err(|source| SensorError::Io {
        path: path.to_owned(),
        source,
    })
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
            &VirtualSensors::default(),
        );
        let names: Vec<&str> = sensors.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["cpu", "memory", "nic", "gpu", "status"]);
    }
}
