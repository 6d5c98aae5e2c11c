//! The GPU power actuator: sets an NVIDIA GPU's power limit through NVML.
//!
//! Target `Target::Resource { resource: "gpu/N" }`, parameter
//! `gpu.power_limit` in watts, converted to NVML's milliwatts and checked
//! against the device's own limit range before it is set (which needs
//! root). On a host where NVML does not load or finds no device, every
//! apply fails with "no GPU/NVML on this host" and the reason.

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

use super::{resource_suffix, Actuator, ActuatorError, Applied, Configuration};

/// The one parameter this actuator knows.
pub const POWER_LIMIT: &str = "gpu.power_limit";

/// Watts to NVML milliwatts: finite, positive, at most `u32::MAX` mW.
pub fn watts_to_milliwatts(watts: f64) -> Result<u32, String> {
    if !watts.is_finite() || watts <= 0.0 {
        return Err("watts must be a positive finite number".into());
    }
    let mw = (watts * 1000.0).round();
    if mw < 1.0 || mw > f64::from(u32::MAX) {
        return Err(format!("{mw} mW is outside NVML's range"));
    }
    Ok(mw as u32)
}

/// The device index of `N` in `gpu/N` (plain decimal digits only).
pub fn parse_index(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Sets GPU power limits; absent without NVML or devices.
pub struct GpuPower {
    nvml: Result<Nvml, String>,
}

impl std::fmt::Debug for GpuPower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPower")
            .field("available", &self.nvml.is_ok())
            .finish()
    }
}

impl Default for GpuPower {
    fn default() -> Self {
        Self::new()
    }
}

impl GpuPower {
    /// Loads NVML; without a driver or device the actuator is absent.
    pub fn new() -> Self {
        Self::from_init(Nvml::init())
    }

    /// Builds the actuator from an NVML initialisation (tests inject
    /// failures here).
    pub fn from_init(init: Result<Nvml, NvmlError>) -> Self {
        let nvml = match init {
            Err(e) => Err(format!("NVML did not initialise: {e}")),
            Ok(nvml) => match nvml.device_count() {
                Ok(0) => Err("NVML found no device".into()),
                Ok(_) => Ok(nvml),
                Err(e) => Err(format!("NVML could not count devices: {e}")),
            },
        };
        if let Err(why) = &nvml {
            tracing::info!(reason = %why, "gpu-power actuator: no GPU/NVML on this host");
        }
        GpuPower { nvml }
    }

    /// Whether NVML loaded and found at least one device.
    pub fn available(&self) -> bool {
        self.nvml.is_ok()
    }
}

impl Actuator for GpuPower {
    fn name(&self) -> &'static str {
        "gpu-power"
    }

    fn apply(&mut self, c: &Configuration) -> Result<Applied, ActuatorError> {
        let suffix = resource_suffix(c, "gpu/")?;
        let index = parse_index(suffix).ok_or_else(|| ActuatorError::Target {
            target: c.target.to_string(),
            reason: "expected gpu/N with N a device index".into(),
        })?;
        if c.parameter != POWER_LIMIT {
            return Err(ActuatorError::Parameter {
                parameter: c.parameter.clone(),
                known: POWER_LIMIT,
            });
        }
        let mw = watts_to_milliwatts(c.value).map_err(|why| ActuatorError::value(c, why))?;
        let nvml = self.nvml.as_ref().map_err(|why| {
            ActuatorError::Unavailable(format!("no GPU/NVML on this host ({why})"))
        })?;
        let mut device = nvml
            .device_by_index(index)
            .map_err(|e| ActuatorError::Target {
                target: c.target.to_string(),
                reason: format!("NVML has no device {index}: {e}"),
            })?;
        if let Ok(range) = device.power_management_limit_constraints() {
            if mw < range.min_limit || mw > range.max_limit {
                return Err(ActuatorError::value(
                    c,
                    format!(
                        "gpu/{index} accepts {}..={} W",
                        f64::from(range.min_limit) / 1000.0,
                        f64::from(range.max_limit) / 1000.0
                    ),
                ));
            }
        }
        device.set_power_management_limit(mw).map_err(|e| {
            let hint = if matches!(e, NvmlError::NoPermission) {
                " (setting a power limit needs root)"
            } else {
                ""
            };
            ActuatorError::Failed(format!("gpu/{index}: setting the power limit: {e}{hint}"))
        })?;
        tracing::info!(
            round = c.round,
            device = index,
            milliwatts = mw,
            "GPU power limit set"
        );
        Ok(Applied {
            detail: format!("gpu/{index}: power limit {mw} mW"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::module::Target;

    fn conf(resource: &str, parameter: &str, value: f64) -> Configuration {
        Configuration {
            round: 1,
            target: Target::Resource {
                host: "h1".into(),
                resource: vcp_common::resource::ResourceId::new(resource).unwrap(),
            },
            parameter: parameter.into(),
            value,
        }
    }

    #[test]
    fn converts_watts() {
        assert_eq!(watts_to_milliwatts(250.0), Ok(250_000));
        assert_eq!(watts_to_milliwatts(312.4567), Ok(312_457));
        assert_eq!(watts_to_milliwatts(0.001), Ok(1));
        assert_eq!(watts_to_milliwatts(4_294_967.295), Ok(u32::MAX));
        for bad in [0.0, -5.0, 0.0004, f64::NAN, f64::INFINITY, 4_294_968.0] {
            assert!(watts_to_milliwatts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_index() {
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("15"), Some(15));
        for bad in ["", "-1", "+1", "a", "1 ", "99999"] {
            assert_eq!(parse_index(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn absent_gpu_reports_clearly() {
        let mut injected = GpuPower::from_init(Err(NvmlError::DriverNotLoaded));
        assert!(!injected.available());
        let mut this_host = GpuPower::new();
        let no_driver = !std::path::Path::new("/proc/driver/nvidia").exists();
        let mut cases = vec![&mut injected];
        if no_driver {
            assert!(!this_host.available());
            cases.push(&mut this_host);
        }
        for a in cases {
            let e = a.apply(&conf("gpu/0", POWER_LIMIT, 250.0)).unwrap_err();
            assert!(matches!(e, ActuatorError::Unavailable(_)), "{e}");
            assert!(e.to_string().contains("no GPU/NVML on this host"), "{e}");
            // Bad requests are still told apart.
            assert!(matches!(
                a.apply(&conf("gpu/x", POWER_LIMIT, 250.0)),
                Err(ActuatorError::Target { .. })
            ));
            assert!(matches!(
                a.apply(&conf("gpu/0", "gpu.clock", 250.0)),
                Err(ActuatorError::Parameter { .. })
            ));
            assert!(matches!(
                a.apply(&conf("gpu/0", POWER_LIMIT, -1.0)),
                Err(ActuatorError::Value { .. })
            ));
        }
    }
}
