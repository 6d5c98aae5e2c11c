//! Host pressure stall information (PSI) from `/proc/pressure/{cpu,memory,io}`
//! for resource `host`: per resource and per line (`some`: at least one
//! task stalled; `full`: all non-idle tasks stalled), the kernel's 10 s
//! average and the share of the time since the previous sample spent
//! stalled (from the cumulative `total`, in microseconds).
//!
//! A kernel without PSI (before 4.20, or booted with `psi=0`) has no such
//! files: the sensor says so once and emits nothing. The host-wide `full`
//! line of `cpu` exists since 5.13 (and is zero there); older kernels have
//! only `some`.

use std::time::Instant;

use vcp_common::metric::{
    Metric, PRESSURE_CPU_FULL, PRESSURE_CPU_FULL_STALLED, PRESSURE_CPU_SOME,
    PRESSURE_CPU_SOME_STALLED, PRESSURE_IO_FULL, PRESSURE_IO_FULL_STALLED, PRESSURE_IO_SOME,
    PRESSURE_IO_SOME_STALLED, PRESSURE_MEMORY_FULL, PRESSURE_MEMORY_FULL_STALLED,
    PRESSURE_MEMORY_SOME, PRESSURE_MEMORY_SOME_STALLED,
};

use super::{parse_err, parse_u64, Emit, Roots, Sensor, SensorError, TextFile};

/// Every metric this sensor emits.
pub const METRICS: [Metric; 12] = [
    PRESSURE_CPU_SOME,
    PRESSURE_CPU_FULL,
    PRESSURE_CPU_SOME_STALLED,
    PRESSURE_CPU_FULL_STALLED,
    PRESSURE_MEMORY_SOME,
    PRESSURE_MEMORY_FULL,
    PRESSURE_MEMORY_SOME_STALLED,
    PRESSURE_MEMORY_FULL_STALLED,
    PRESSURE_IO_SOME,
    PRESSURE_IO_FULL,
    PRESSURE_IO_SOME_STALLED,
    PRESSURE_IO_FULL_STALLED,
];

/// One line of a pressure file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StallLine {
    /// The kernel's 10 s average, as a ratio in 0..=1.
    pub avg10: f64,
    /// Microseconds stalled since boot.
    pub total_us: u64,
}

/// A pressure file: its `some` line, and its `full` line where it has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub some: StallLine,
    pub full: Option<StallLine>,
}

fn parse_line(line: &str) -> Result<StallLine, SensorError> {
    const WHAT: &str = "pressure";
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .ok_or_else(|| parse_err(WHAT, format!("no {name} in {line:?}")))
    };
    let v = field("avg10=")?;
    let pct: f64 = v
        .parse()
        .map_err(|e| parse_err(WHAT, format!("{v:?}: {e}")))?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(parse_err(WHAT, format!("avg10={v} is not a percentage")));
    }
    Ok(StallLine {
        avg10: pct / 100.0,
        total_us: parse_u64(WHAT, field("total=")?)?,
    })
}

/// Parses a pressure file (the host's or a cgroup's).
pub fn parse_pressure(text: &str) -> Result<Pressure, SensorError> {
    let line = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix));
    let some = line("some ").ok_or_else(|| parse_err("pressure", "no 'some' line"))?;
    Ok(Pressure {
        some: parse_line(some)?,
        full: line("full ").map(parse_line).transpose()?,
    })
}

/// One pressure file, its metrics (some, full, some stalled, full
/// stalled) and what it read last.
#[derive(Debug)]
struct Of {
    file: TextFile,
    metrics: [Metric; 4],
    prev: Option<(Instant, Pressure)>,
}

/// Emits `cur`'s averages, and the shares of time stalled since `prev`.
fn emit_pressure(
    metrics: &[Metric; 4],
    prev: Option<(Instant, Pressure)>,
    now: Instant,
    cur: &Pressure,
    out: &mut dyn Emit,
) {
    let [some, full, some_stalled, full_stalled] = metrics;
    out.emit("host", some, cur.some.avg10);
    if let Some(f) = &cur.full {
        out.emit("host", full, f.avg10);
    }
    let Some((at, prev)) = prev else { return };
    let us = now.duration_since(at).as_secs_f64() * 1e6;
    if us <= 0.0 {
        return;
    }
    let share = |p: &StallLine, c: &StallLine| {
        c.total_us
            .checked_sub(p.total_us)
            .map(|d| (d as f64 / us).min(1.0))
    };
    if let Some(s) = share(&prev.some, &cur.some) {
        out.emit("host", some_stalled, s);
    }
    if let (Some(p), Some(c)) = (&prev.full, &cur.full) {
        if let Some(s) = share(p, c) {
            out.emit("host", full_stalled, s);
        }
    }
}

/// The host pressure sensor.
#[derive(Debug)]
pub struct PressureSensor {
    of: [Of; 3],
}

impl PressureSensor {
    pub fn new(roots: &Roots) -> Self {
        let of = |name: &str, metrics| Of {
            file: TextFile::new(roots.proc.join("pressure").join(name)),
            metrics,
            prev: None,
        };
        PressureSensor {
            of: [
                of(
                    "cpu",
                    [
                        PRESSURE_CPU_SOME,
                        PRESSURE_CPU_FULL,
                        PRESSURE_CPU_SOME_STALLED,
                        PRESSURE_CPU_FULL_STALLED,
                    ],
                ),
                of(
                    "memory",
                    [
                        PRESSURE_MEMORY_SOME,
                        PRESSURE_MEMORY_FULL,
                        PRESSURE_MEMORY_SOME_STALLED,
                        PRESSURE_MEMORY_FULL_STALLED,
                    ],
                ),
                of(
                    "io",
                    [
                        PRESSURE_IO_SOME,
                        PRESSURE_IO_FULL,
                        PRESSURE_IO_SOME_STALLED,
                        PRESSURE_IO_FULL_STALLED,
                    ],
                ),
            ],
        }
    }
}

impl Sensor for PressureSensor {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn sample(&mut self, now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let mut result = Ok(());
        for of in &mut self.of {
            match of.file.read().and_then(parse_pressure) {
                Ok(cur) => {
                    emit_pressure(&of.metrics, of.prev, now, &cur, out);
                    of.prev = Some((now, cur));
                }
                Err(e) => {
                    of.prev = None;
                    result = result.and(Err(e));
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;
    use std::time::Duration;

    #[test]
    fn parses_this_machines_files() {
        let cpu = parse_pressure(include_str!("fixtures/pressure_cpu.txt")).unwrap();
        assert_eq!(cpu.some.avg10, 22.51 / 100.0);
        assert_eq!(cpu.some.total_us, 5930022523);
        assert_eq!(cpu.full.unwrap().total_us, 0);
        let io = parse_pressure(include_str!("fixtures/pressure_io.txt")).unwrap();
        assert_eq!(io.full.unwrap().avg10, 0.43 / 100.0);
        // A kernel before 5.13: cpu has no full line.
        let old = parse_pressure("some avg10=1.50 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert_eq!(old.full, None);
        assert!(parse_pressure("full avg10=1.00 avg60=0 avg300=0 total=1\n").is_err());
        assert!(parse_pressure("some avg10=101.00 avg60=0 avg300=0 total=1\n").is_err());
        assert!(parse_pressure("some avg10=1.00 avg60=0 avg300=0\n").is_err());
    }

    #[test]
    fn stalled_share_since_the_previous_sample() {
        let p = |some: u64, full: u64| Pressure {
            some: StallLine {
                avg10: 0.5,
                total_us: some,
            },
            full: Some(StallLine {
                avg10: 0.25,
                total_us: full,
            }),
        };
        let metrics = [
            PRESSURE_IO_SOME,
            PRESSURE_IO_FULL,
            PRESSURE_IO_SOME_STALLED,
            PRESSURE_IO_FULL_STALLED,
        ];
        let t0 = Instant::now();
        let mut out = Collected::default();
        emit_pressure(&metrics, None, t0, &p(1_000, 0), &mut out);
        assert_eq!(out.get("host", &PRESSURE_IO_SOME), Some(0.5));
        assert_eq!(out.get("host", &PRESSURE_IO_FULL), Some(0.25));
        assert_eq!(out.get("host", &PRESSURE_IO_SOME_STALLED), None);
        let t1 = t0 + Duration::from_secs(2);
        emit_pressure(
            &metrics,
            Some((t0, p(1_000, 0))),
            t1,
            &p(501_000, 100_000),
            &mut out,
        );
        assert_eq!(out.get("host", &PRESSURE_IO_SOME_STALLED), Some(0.25));
        assert_eq!(out.get("host", &PRESSURE_IO_FULL_STALLED), Some(0.05));
    }

    #[test]
    fn reads_this_machine_or_says_why_not() {
        let mut sensor = PressureSensor::new(&Roots::default());
        let mut out = Collected::default();
        let first = sensor.sample(Instant::now(), &mut out);
        if std::path::Path::new("/proc/pressure/cpu").exists() {
            first.unwrap();
            std::thread::sleep(Duration::from_millis(20));
            sensor.sample(Instant::now(), &mut out).unwrap();
            assert!(out.get("host", &PRESSURE_CPU_SOME_STALLED).is_some());
            for (_, m, v) in &out.0 {
                assert!((0.0..=1.0).contains(v), "{m} {v}");
            }
        } else {
            assert!(first.unwrap_err().to_string().contains("pressure"));
            assert!(out.0.is_empty());
        }
    }
}
