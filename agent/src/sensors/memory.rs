//! Memory sensor: reads `/proc/meminfo` and emits host memory and swap in
//! bytes (meminfo's `kB` are KiB) for resource `memory`.
//!
//! It must never estimate a missing field: a kernel without `MemAvailable`
//! (before 3.14) gets no `memory.available` / `memory.used` rather than a
//! guess from MemFree + Cached.
//!
//! Parsed by hand: `procfs_core::Meminfo` requires dozens of fields we do
//! not use and can panic on malformed text (byte slicing, unchecked
//! multiplication), which a sensor must not do.

use std::time::Instant;

use vcp_common::metric::{
    MEMORY_AVAILABLE, MEMORY_SWAP_TOTAL, MEMORY_SWAP_USED, MEMORY_TOTAL, MEMORY_USED,
};

use super::{parse_err, parse_u64, Emit, Roots, Sensor, SensorError, TextFile};

/// The `/proc/meminfo` fields the sensor uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub available: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
}

/// Parses `/proc/meminfo` text.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, SensorError> {
    const WHAT: &str = "/proc/meminfo";
    let (mut total, mut available, mut swap_total, mut swap_free) = (None, None, None, None);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            "SwapTotal" => &mut swap_total,
            "SwapFree" => &mut swap_free,
            _ => continue,
        };
        let mut f = rest.split_whitespace();
        let value = parse_u64(WHAT, f.next().unwrap_or(""))?;
        let bytes = match (f.next(), f.next()) {
            (Some("kB"), None) => value
                .checked_mul(1024)
                .ok_or_else(|| parse_err(WHAT, format!("{key} overflows")))?,
            _ => return Err(parse_err(WHAT, format!("unexpected unit in {line:?}"))),
        };
        *slot = Some(bytes);
    }
    Ok(MemInfo {
        total: total.ok_or_else(|| parse_err(WHAT, "no MemTotal"))?,
        available,
        swap_total,
        swap_free,
    })
}

/// Emits the readings for one parsed meminfo.
pub fn emit_meminfo(m: &MemInfo, out: &mut dyn Emit) {
    out.emit("memory", &MEMORY_TOTAL, m.total as f64);
    if let Some(avail) = m.available {
        out.emit("memory", &MEMORY_AVAILABLE, avail as f64);
        if let Some(used) = m.total.checked_sub(avail) {
            out.emit("memory", &MEMORY_USED, used as f64);
        }
    }
    if let Some(swap_total) = m.swap_total {
        out.emit("memory", &MEMORY_SWAP_TOTAL, swap_total as f64);
        if let Some(used) = m.swap_free.and_then(|free| swap_total.checked_sub(free)) {
            out.emit("memory", &MEMORY_SWAP_USED, used as f64);
        }
    }
}

/// The memory sensor.
#[derive(Debug)]
pub struct MemorySensor {
    meminfo: TextFile,
}

impl MemorySensor {
    pub fn new(roots: Roots) -> Self {
        MemorySensor {
            meminfo: TextFile::new(roots.proc.join("meminfo")),
        }
    }
}

impl Sensor for MemorySensor {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn sample(&mut self, _now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        emit_meminfo(&parse_meminfo(self.meminfo.read()?)?, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;

    #[test]
    fn parses_real_meminfo() {
        let m = parse_meminfo(include_str!("fixtures/meminfo.txt")).unwrap();
        let mut c = Collected::default();
        emit_meminfo(&m, &mut c);
        assert_eq!(c.get("memory", &MEMORY_TOTAL), Some(24731708.0 * 1024.0));
        assert_eq!(
            c.get("memory", &MEMORY_AVAILABLE),
            Some(24380180.0 * 1024.0)
        );
        assert_eq!(
            c.get("memory", &MEMORY_USED),
            Some((24731708.0 - 24380180.0) * 1024.0)
        );
        assert_eq!(c.get("memory", &MEMORY_SWAP_TOTAL), Some(0.0));
        assert_eq!(c.get("memory", &MEMORY_SWAP_USED), Some(0.0));
    }

    #[test]
    fn swap_in_use() {
        let m = parse_meminfo(
            "MemTotal: 1000 kB\nMemAvailable: 400 kB\nSwapTotal: 2048 kB\nSwapFree: 1024 kB\n",
        )
        .unwrap();
        let mut c = Collected::default();
        emit_meminfo(&m, &mut c);
        assert_eq!(c.get("memory", &MEMORY_USED), Some(600.0 * 1024.0));
        assert_eq!(c.get("memory", &MEMORY_SWAP_USED), Some(1024.0 * 1024.0));
    }

    #[test]
    fn old_kernel_without_mem_available_gets_no_guess() {
        let m = parse_meminfo("MemTotal:  2048 kB\nMemFree:  1024 kB\nCached:  512 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
            .unwrap();
        let mut c = Collected::default();
        emit_meminfo(&m, &mut c);
        assert_eq!(c.get("memory", &MEMORY_TOTAL), Some(2048.0 * 1024.0));
        assert_eq!(c.get("memory", &MEMORY_AVAILABLE), None);
        assert_eq!(c.get("memory", &MEMORY_USED), None);
    }

    #[test]
    fn inconsistent_values_are_not_clamped() {
        let m = parse_meminfo(
            "MemTotal: 10 kB\nMemAvailable: 20 kB\nSwapTotal: 1 kB\nSwapFree: 2 kB\n",
        )
        .unwrap();
        let mut c = Collected::default();
        emit_meminfo(&m, &mut c);
        assert_eq!(c.get("memory", &MEMORY_USED), None);
        assert_eq!(c.get("memory", &MEMORY_SWAP_USED), None);
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        for bad in [
            "",
            "MemFree: 1 kB\n",
            "MemTotal:\n",
            "MemTotal: x kB\n",
            "MemTotal: 1 MB\n",
            "MemTotal: 1\n",
            "MemTotal: 18446744073709551615 kB\n",
            "MemTotal: -5 kB\n",
        ] {
            assert!(parse_meminfo(bad).is_err(), "{bad:?}");
        }
        // Unrelated odd lines are ignored.
        assert!(parse_meminfo("é: ü\nHugePages_Total: 0\nMemTotal: 1 kB\n").is_ok());
    }

    #[test]
    fn this_machine() {
        let mut s = MemorySensor::new(Roots::default());
        for _ in 0..2 {
            let mut c = Collected::default();
            s.sample(Instant::now(), &mut c).unwrap();
            let text = std::fs::read_to_string("/proc/meminfo").unwrap();
            let kib: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap();
            assert_eq!(c.get("memory", &MEMORY_TOTAL), Some(kib * 1024.0));
            let used = c.get("memory", &MEMORY_USED).unwrap();
            assert!(used > 0.0 && used < kib * 1024.0);
        }
    }
}
