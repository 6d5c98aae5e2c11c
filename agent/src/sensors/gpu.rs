//! GPU sensor: reads NVIDIA GPUs through NVML (`nvml-wrapper`, which loads
//! `libnvidia-ml.so.1` at run time) and emits `gpu.present` for resource
//! `gpu` plus per-device utilisation, memory, power, temperature and SM
//! clock for `gpu/N`.
//!
//! On a host without the NVIDIA driver it says so once in the log and then
//! reports `gpu.present = 0` and nothing else. It must never fail the agent
//! for a missing GPU, never invent a value for a field the device would not
//! report, and never drop the other fields of a device when one query fails.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use vcp_common::metric::{
    GPU_MEMORY_TOTAL, GPU_MEMORY_USED, GPU_MEMORY_UTILIZATION, GPU_POWER, GPU_PRESENT,
    GPU_SM_CLOCK, GPU_TEMPERATURE, GPU_UTILIZATION,
};

use super::{Emit, Sensor, SensorError};

/// Raw values of one device as NVML reports them; `None` where the query
/// failed or is not supported by the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawGpu {
    pub util_gpu_pct: Option<u32>,
    pub util_mem_pct: Option<u32>,
    pub mem_used: Option<u64>,
    pub mem_total: Option<u64>,
    pub power_mw: Option<u32>,
    pub temp_c: Option<u32>,
    pub sm_clock_mhz: Option<u32>,
}

/// Converts one device's raw values to readings for `gpu/{index}`.
/// Percentages above 100 are not a ratio and are dropped.
pub fn emit_gpu(index: u32, raw: &RawGpu, out: &mut dyn Emit) {
    let resource = format!("gpu/{index}");
    let pct = |p: Option<u32>| p.filter(|p| *p <= 100).map(|p| f64::from(p) / 100.0);
    let readings = [
        (&GPU_UTILIZATION, pct(raw.util_gpu_pct)),
        (&GPU_MEMORY_UTILIZATION, pct(raw.util_mem_pct)),
        (&GPU_MEMORY_USED, raw.mem_used.map(|b| b as f64)),
        (&GPU_MEMORY_TOTAL, raw.mem_total.map(|b| b as f64)),
        (&GPU_POWER, raw.power_mw.map(|mw| f64::from(mw) / 1000.0)),
        (&GPU_TEMPERATURE, raw.temp_c.map(f64::from)),
        (&GPU_SM_CLOCK, raw.sm_clock_mhz.map(f64::from)),
    ];
    for (metric, value) in readings {
        if let Some(v) = value {
            out.emit(&resource, metric, v);
        }
    }
}

/// The GPU sensor: NVML when it initialised, otherwise absent.
pub struct GpuSensor {
    nvml: Option<Nvml>,
    /// `(device, query)` failures already logged, so each is logged once.
    logged: HashSet<(u32, &'static str)>,
}

impl std::fmt::Debug for GpuSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSensor")
            .field("nvml", &self.nvml.is_some())
            .finish()
    }
}

impl Default for GpuSensor {
    fn default() -> Self {
        Self::new()
    }
}

impl GpuSensor {
    /// Initialises NVML; without a driver the sensor reports an absent GPU.
    pub fn new() -> Self {
        Self::from_init(Nvml::init())
    }

    /// Builds the sensor from the outcome of an NVML initialisation (tests
    /// inject failures here).
    pub fn from_init(init: Result<Nvml, NvmlError>) -> Self {
        let nvml = match init {
            Ok(nvml) => Some(nvml),
            Err(e) => {
                let why = match &e {
                    NvmlError::LibloadingError(_) | NvmlError::LibraryNotFound => {
                        "NVML library not found"
                    }
                    NvmlError::DriverNotLoaded => "NVIDIA driver not loaded",
                    NvmlError::FailedToLoadSymbol(_) | NvmlError::FunctionNotFound => {
                        "NVML library incomplete"
                    }
                    NvmlError::NoPermission => "no permission to talk to the NVIDIA driver",
                    _ => "NVML failed to initialise",
                };
                tracing::info!(reason = why, error = %e, "no GPU present: reporting gpu.present = 0");
                None
            }
        };
        GpuSensor {
            nvml,
            logged: HashSet::new(),
        }
    }

    /// Whether NVML initialised.
    pub fn has_nvml(&self) -> bool {
        self.nvml.is_some()
    }
}

/// Keeps a query's value, logging its failure once per device and query.
fn keep<T>(
    logged: &mut HashSet<(u32, &'static str)>,
    index: u32,
    query: &'static str,
    r: Result<T, NvmlError>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            if logged.insert((index, query)) {
                if matches!(e, NvmlError::NotSupported) {
                    tracing::debug!(device = index, query, "not supported by this GPU");
                } else {
                    tracing::warn!(device = index, query, error = %e, "GPU query failed");
                }
            }
            None
        }
    }
}

fn read_device(logged: &mut HashSet<(u32, &'static str)>, index: u32, d: &Device<'_>) -> RawGpu {
    let util = keep(logged, index, "utilization", d.utilization_rates());
    let mem = keep(logged, index, "memory", d.memory_info());
    RawGpu {
        util_gpu_pct: util.as_ref().map(|u| u.gpu),
        util_mem_pct: util.as_ref().map(|u| u.memory),
        mem_used: mem.as_ref().map(|m| m.used),
        mem_total: mem.as_ref().map(|m| m.total),
        power_mw: keep(logged, index, "power", d.power_usage()),
        temp_c: keep(
            logged,
            index,
            "temperature",
            d.temperature(TemperatureSensor::Gpu),
        ),
        sm_clock_mhz: keep(logged, index, "sm_clock", d.clock_info(Clock::SM)),
    }
}

impl Sensor for GpuSensor {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn sample(&mut self, _now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let Some(nvml) = &self.nvml else {
            out.emit("gpu", &GPU_PRESENT, 0.0);
            return Ok(());
        };
        let count = nvml.device_count().map_err(|e| SensorError::Io {
            path: PathBuf::from("nvml:device_count"),
            source: io::Error::other(e),
        })?;
        out.emit("gpu", &GPU_PRESENT, if count > 0 { 1.0 } else { 0.0 });
        for index in 0..count {
            let Some(device) = keep(
                &mut self.logged,
                index,
                "handle",
                nvml.device_by_index(index),
            ) else {
                continue;
            };
            let raw = read_device(&mut self.logged, index, &device);
            emit_gpu(index, &raw, out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;

    #[test]
    fn converts_units() {
        let raw = RawGpu {
            util_gpu_pct: Some(87),
            util_mem_pct: Some(40),
            mem_used: Some(12 << 30),
            mem_total: Some(80 << 30),
            power_mw: Some(312_456),
            temp_c: Some(71),
            sm_clock_mhz: Some(1410),
        };
        let mut c = Collected::default();
        emit_gpu(3, &raw, &mut c);
        assert_eq!(c.0.len(), 7);
        assert_eq!(c.get("gpu/3", &GPU_UTILIZATION), Some(0.87));
        assert_eq!(c.get("gpu/3", &GPU_MEMORY_UTILIZATION), Some(0.40));
        assert_eq!(c.get("gpu/3", &GPU_MEMORY_USED), Some((12u64 << 30) as f64));
        assert_eq!(
            c.get("gpu/3", &GPU_MEMORY_TOTAL),
            Some((80u64 << 30) as f64)
        );
        assert_eq!(c.get("gpu/3", &GPU_POWER), Some(312.456));
        assert_eq!(c.get("gpu/3", &GPU_TEMPERATURE), Some(71.0));
        assert_eq!(c.get("gpu/3", &GPU_SM_CLOCK), Some(1410.0));
    }

    #[test]
    fn failed_fields_do_not_lose_the_others() {
        let raw = RawGpu {
            temp_c: Some(50),
            mem_used: Some(1),
            mem_total: Some(2),
            util_gpu_pct: Some(101), // not a percentage: dropped
            ..RawGpu::default()
        };
        let mut c = Collected::default();
        emit_gpu(0, &raw, &mut c);
        assert_eq!(c.0.len(), 3);
        assert_eq!(c.get("gpu/0", &GPU_TEMPERATURE), Some(50.0));
        assert_eq!(c.get("gpu/0", &GPU_POWER), None);
        assert_eq!(c.get("gpu/0", &GPU_UTILIZATION), None);
        let mut c = Collected::default();
        emit_gpu(0, &RawGpu::default(), &mut c);
        assert!(c.0.is_empty());
    }

    #[test]
    fn keep_logs_once_and_keeps_going() {
        let mut logged = HashSet::new();
        assert_eq!(
            keep(
                &mut logged,
                0,
                "power",
                Err::<u32, _>(NvmlError::NotSupported)
            ),
            None
        );
        assert_eq!(
            keep(&mut logged, 0, "power", Err::<u32, _>(NvmlError::GpuLost)),
            None
        );
        assert_eq!(logged.len(), 1);
        assert_eq!(keep(&mut logged, 0, "power", Ok(5u32)), Some(5));
    }

    fn assert_absent(s: &mut GpuSensor) {
        for _ in 0..2 {
            let mut c = Collected::default();
            s.sample(Instant::now(), &mut c).unwrap();
            assert_eq!(c.0, vec![("gpu".to_owned(), GPU_PRESENT.name, 0.0)]);
        }
    }

    #[test]
    fn injected_init_failures_are_absent() {
        for e in [
            NvmlError::DriverNotLoaded,
            NvmlError::LibraryNotFound,
            NvmlError::NoPermission,
        ] {
            let mut s = GpuSensor::from_init(Err(e));
            assert!(!s.has_nvml());
            assert_absent(&mut s);
        }
    }

    /// This machine: absent for real when there is no NVIDIA driver.
    #[test]
    fn this_machine() {
        let mut s = GpuSensor::new();
        if std::path::Path::new("/proc/driver/nvidia").exists() {
            let mut c = Collected::default();
            s.sample(Instant::now(), &mut c).unwrap();
            assert!(c.get("gpu", &GPU_PRESENT).is_some());
        } else {
            assert!(!s.has_nvml());
            assert_absent(&mut s);
        }
    }
}
