//! Status sensor: host liveness and uptime (`/proc/uptime`, resource `host`)
//! and the agent's own health (resource `agent`): time since the last
//! supervisor acknowledgement and spool counters from [`UplinkStatus`],
//! CPU seconds from `/proc/self/stat` and resident memory from
//! `/proc/self/status` (`VmRSS`).
//!
//! It must never report `status.since_ack` before any acknowledgement was
//! received, and never block or fail on the uplink (the counters are atomics).
//!
//! Clock ticks per second (for `/proc/self/stat`'s utime/stime) come from
//! `AT_CLKTCK` in `/proc/self/auxv` — the value `sysconf(_SC_CLK_TCK)`
//! returns — without a libc dependency; when that cannot be read the
//! sensor assumes 100, the USER_HZ of every mainstream Linux architecture.

use std::sync::Arc;
use std::time::Instant;

use procfs_core::{FromRead, Uptime};
use vcp_common::metric::{
    STATUS_AGENT_CPU, STATUS_AGENT_RSS, STATUS_DROPPED, STATUS_SINCE_ACK, STATUS_SPOOLED,
    STATUS_UP, STATUS_UPTIME,
};

use super::{parse_err, parse_u64, Emit, Roots, Sensor, SensorError, TextFile};
use crate::uplink_status::UplinkStatus;

/// Ticks per second assumed when `AT_CLKTCK` is unavailable.
pub const DEFAULT_CLK_TCK: u64 = 100;

/// Parses `/proc/uptime` into seconds since boot.
pub fn parse_uptime(text: &str) -> Result<f64, SensorError> {
    let u =
        Uptime::from_read(text.as_bytes()).map_err(|e| parse_err("/proc/uptime", e.to_string()))?;
    if !u.uptime.is_finite() || u.uptime < 0.0 {
        return Err(parse_err("/proc/uptime", format!("implausible {text:?}")));
    }
    Ok(u.uptime)
}

/// Parses a `/proc/PID/stat` line into `utime + stime` in clock ticks. The
/// command name may hold spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_self_stat(text: &str) -> Result<u64, SensorError> {
    const WHAT: &str = "/proc/self/stat";
    let (_, rest) = text
        .rsplit_once(')')
        .ok_or_else(|| parse_err(WHAT, "no `)` after the command name"))?;
    // rest: state(3) ppid(4) ... utime(14) stime(15)
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        return Err(parse_err(
            WHAT,
            format!("{} fields after the name", fields.len()),
        ));
    };
    parse_u64(WHAT, utime)?
        .checked_add(parse_u64(WHAT, stime)?)
        .ok_or_else(|| parse_err(WHAT, "utime + stime overflows"))
}

/// Parses `VmRSS` from `/proc/PID/status` into bytes.
pub fn parse_vm_rss(text: &str) -> Result<u64, SensorError> {
    const WHAT: &str = "/proc/self/status VmRSS";
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or_else(|| parse_err(WHAT, "missing"))?;
    let mut f = value.split_whitespace();
    match (f.next(), f.next(), f.next()) {
        (Some(kib), Some("kB"), None) => parse_u64(WHAT, kib)?
            .checked_mul(1024)
            .ok_or_else(|| parse_err(WHAT, "overflows")),
        _ => Err(parse_err(WHAT, format!("unexpected {value:?}"))),
    }
}

/// Finds `AT_CLKTCK` (17) in the native-endian `(key, value)` word pairs
/// of `/proc/self/auxv`.
pub fn clk_tck_from_auxv(auxv: &[u8]) -> Option<u64> {
    const AT_NULL: usize = 0;
    const AT_CLKTCK: usize = 17;
    const W: usize = std::mem::size_of::<usize>();
    let word = |b: &[u8]| b.try_into().ok().map(usize::from_ne_bytes);
    for pair in auxv.chunks_exact(2 * W) {
        let (key, value) = (word(&pair[..W])?, word(&pair[W..])?);
        match key {
            AT_NULL => return None,
            AT_CLKTCK => return u64::try_from(value).ok().filter(|v| *v > 0),
            _ => {}
        }
    }
    None
}

/// The status sensor.
#[derive(Debug)]
pub struct StatusSensor {
    uptime: TextFile,
    stat: TextFile,
    status: TextFile,
    uplink: Arc<UplinkStatus>,
    clk_tck: u64,
}

impl StatusSensor {
    pub fn new(roots: Roots, uplink: Arc<UplinkStatus>) -> Self {
        let auxv = roots.proc.join("self/auxv");
        let clk_tck = match std::fs::read(&auxv)
            .ok()
            .as_deref()
            .and_then(clk_tck_from_auxv)
        {
            Some(t) => t,
            None => {
                tracing::info!(
                    path = %auxv.display(),
                    "AT_CLKTCK unavailable; assuming {DEFAULT_CLK_TCK} clock ticks per second"
                );
                DEFAULT_CLK_TCK
            }
        };
        StatusSensor {
            uptime: TextFile::new(roots.proc.join("uptime")),
            stat: TextFile::new(roots.proc.join("self/stat")),
            status: TextFile::new(roots.proc.join("self/status")),
            uplink,
            clk_tck,
        }
    }
}

impl Sensor for StatusSensor {
    fn name(&self) -> &'static str {
        "status"
    }

    fn sample(&mut self, now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        out.emit("host", &STATUS_UP, 1.0);
        let uptime = self
            .uptime
            .read()
            .and_then(parse_uptime)
            .map(|up| out.emit("host", &STATUS_UPTIME, up));
        if let Some(d) = self.uplink.since_ack(now) {
            out.emit("agent", &STATUS_SINCE_ACK, d.as_secs_f64());
        }
        let cpu = self.stat.read().and_then(parse_self_stat).map(|ticks| {
            out.emit(
                "agent",
                &STATUS_AGENT_CPU,
                ticks as f64 / self.clk_tck as f64,
            )
        });
        let rss = self
            .status
            .read()
            .and_then(parse_vm_rss)
            .map(|bytes| out.emit("agent", &STATUS_AGENT_RSS, bytes as f64));
        out.emit(
            "agent",
            &STATUS_DROPPED,
            self.uplink.dropped_readings() as f64,
        );
        out.emit(
            "agent",
            &STATUS_SPOOLED,
            self.uplink.spooled_batches() as f64,
        );
        uptime.and(cpu).and(rss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;
    use std::time::Duration;

    #[test]
    fn parses_real_files() {
        assert_eq!(
            parse_uptime(include_str!("fixtures/uptime.txt")).unwrap(),
            1349.92
        );
        assert_eq!(
            parse_self_stat(include_str!("fixtures/self_stat.txt")).unwrap(),
            63
        );
        assert_eq!(
            parse_vm_rss(include_str!("fixtures/self_status.txt")).unwrap(),
            1720 * 1024
        );
    }

    #[test]
    fn command_names_with_spaces_and_parens() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194304 93 0 0 0 250 17 0 0 20 0 1 0 135642 2654208 403\n";
        assert_eq!(parse_self_stat(line).unwrap(), 267);
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        for bad in [
            "",
            "1 (x",
            "1 (x) S 1 2 3",
            ")",
            "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 1",
        ] {
            assert!(parse_self_stat(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "",
            "VmRSS:",
            "VmRSS: 12",
            "VmRSS: x kB",
            "VmRSS: 1 MB",
            "VmRSS: 18446744073709551615 kB",
        ] {
            assert!(parse_vm_rss(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "x y", "nan 1", "-3 1", "inf 1"] {
            assert!(parse_uptime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn auxv() {
        let w = |v: usize| v.to_ne_bytes();
        let mut a = Vec::new();
        for (k, v) in [(6usize, 4096usize), (17, 250), (0, 0)] {
            a.extend(w(k));
            a.extend(w(v));
        }
        assert_eq!(clk_tck_from_auxv(&a), Some(250));
        assert_eq!(
            clk_tck_from_auxv(&a[..2 * std::mem::size_of::<usize>()]),
            None
        );
        assert_eq!(clk_tck_from_auxv(&[1, 2, 3]), None);
        assert_eq!(clk_tck_from_auxv(&[]), None);
    }

    #[test]
    fn uplink_counters_and_since_ack() {
        let uplink = Arc::new(UplinkStatus::default());
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: dir.path().to_owned(),
            sys: dir.path().to_owned(),
        };
        let mut s = StatusSensor::new(roots, uplink.clone());
        assert_eq!(s.clk_tck, DEFAULT_CLK_TCK);
        let mut c = Collected::default();
        // Files missing: error returned, but up and the uplink counters still emitted.
        assert!(s.sample(Instant::now(), &mut c).is_err());
        assert_eq!(c.get("host", &STATUS_UP), Some(1.0));
        assert_eq!(c.get("agent", &STATUS_SINCE_ACK), None);
        assert_eq!(c.get("agent", &STATUS_DROPPED), Some(0.0));

        let t = Instant::now();
        uplink.record_ack(t);
        uplink.add_dropped(7);
        uplink.set_spooled(3);
        let mut c = Collected::default();
        let _ = s.sample(t + Duration::from_millis(1500), &mut c);
        assert_eq!(c.get("agent", &STATUS_SINCE_ACK), Some(1.5));
        assert_eq!(c.get("agent", &STATUS_DROPPED), Some(7.0));
        assert_eq!(c.get("agent", &STATUS_SPOOLED), Some(3.0));
    }

    #[test]
    fn this_machine() {
        let mut s = StatusSensor::new(Roots::default(), Arc::new(UplinkStatus::default()));
        assert_eq!(s.clk_tck, 100, "USER_HZ on this machine");
        let mut prev = Collected::default();
        s.sample(Instant::now(), &mut prev).unwrap();
        // Burn a little CPU so the counters move.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        let up = c.get("host", &STATUS_UPTIME).unwrap();
        assert!(up > 0.0 && up >= prev.get("host", &STATUS_UPTIME).unwrap());
        let cpu = c.get("agent", &STATUS_AGENT_CPU).unwrap();
        assert!(cpu >= prev.get("agent", &STATUS_AGENT_CPU).unwrap());
        let rss = c.get("agent", &STATUS_AGENT_RSS).unwrap();
        assert!(rss > 1e5 && rss < 1e11, "{rss}");
        assert_eq!(c.get("agent", &STATUS_SINCE_ACK), None);
    }
}
