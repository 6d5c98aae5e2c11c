//! Block-device sensor: `/proc/diskstats` per whole disk, as rates since
//! the previous sample, for resource `disk/<name>`.
//!
//! Partitions are skipped (a disk is a name under `/sys/block`), and so
//! are devices whose name starts with one of the configured prefixes
//! (default `loop`, `ram`, `zram`). Sectors are 512 bytes whatever the
//! device's own sector size (the kernel's unit). The kernel prints the
//! time fields (`ms` reading and writing, `io_ticks`, `time_in_queue`) as
//! 32-bit numbers, which wrap every ~49 days: their deltas are taken
//! modulo 2³²; a 64-bit counter that goes backwards (the device was
//! removed and came back) gives no rates for that sample.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use vcp_common::metric::{
    Metric, DISK_QUEUE_DEPTH, DISK_READ_BYTES, DISK_READ_OPS, DISK_UTILIZATION, DISK_WRITE_BYTES,
    DISK_WRITE_OPS,
};

use super::{parse_err, parse_u64, Emit, Roots, Sensor, SensorError, TextFile};

/// Every metric this sensor emits.
pub const METRICS: [Metric; 6] = [
    DISK_READ_BYTES,
    DISK_WRITE_BYTES,
    DISK_READ_OPS,
    DISK_WRITE_OPS,
    DISK_UTILIZATION,
    DISK_QUEUE_DEPTH,
];

/// Device-name prefixes skipped unless configured otherwise.
pub const DEFAULT_SKIP: [&str; 3] = ["loop", "ram", "zram"];
/// Most devices followed; `/proc/diskstats` past that is cut (logged).
pub const MAX_DEVICES: usize = 1024;

const SECTOR_BYTES: u64 = 512;

/// One device's counters from a line of `/proc/diskstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskCounters {
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub write_sectors: u64,
    /// Milliseconds with at least one request in flight (32-bit).
    pub io_ticks: u64,
    /// Milliseconds requests spent in flight, summed over requests (32-bit).
    pub time_in_queue: u64,
}

/// Parses `/proc/diskstats`: `major minor name` and at least 11 counters
/// per line (kernels since 2.6; later ones add discard and flush fields).
pub fn parse_diskstats(text: &str) -> Result<Vec<(&str, DiskCounters)>, SensorError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 14 {
            return Err(parse_err("diskstats", format!("short line {line:?}")));
        }
        let n = |i: usize| parse_u64("diskstats", f[i]);
        out.push((
            f[2],
            DiskCounters {
                reads: n(3)?,
                read_sectors: n(5)?,
                writes: n(7)?,
                write_sectors: n(9)?,
                io_ticks: n(12)?,
                time_in_queue: n(13)?,
            },
        ));
    }
    Ok(out)
}

/// `cur - prev` of a counter the kernel prints in 64 bits; none when it
/// went backwards.
fn delta64(prev: u64, cur: u64) -> Option<u64> {
    cur.checked_sub(prev)
}

/// `cur - prev` of a counter the kernel prints in 32 bits, across a wrap.
fn delta32(prev: u64, cur: u64) -> u64 {
    (cur as u32).wrapping_sub(prev as u32) as u64
}

/// Emits one device's rates over `secs` seconds.
pub fn emit_disk(
    name: &str,
    prev: &DiskCounters,
    cur: &DiskCounters,
    secs: f64,
    out: &mut dyn Emit,
) {
    if secs <= 0.0 {
        return;
    }
    let (Some(reads), Some(rs), Some(writes), Some(ws)) = (
        delta64(prev.reads, cur.reads),
        delta64(prev.read_sectors, cur.read_sectors),
        delta64(prev.writes, cur.writes),
        delta64(prev.write_sectors, cur.write_sectors),
    ) else {
        tracing::debug!(device = name, "disk counters went backwards; skipped");
        return;
    };
    let ms = secs * 1000.0;
    let busy = delta32(prev.io_ticks, cur.io_ticks) as f64;
    // More busy time than time passed: not a wrap but a device that came
    // back with fresh counters.
    if busy > ms * 1.5 + 100.0 {
        tracing::debug!(device = name, "disk io_ticks jumped; skipped");
        return;
    }
    let resource = format!("disk/{name}");
    out.emit(
        &resource,
        &DISK_READ_BYTES,
        (rs * SECTOR_BYTES) as f64 / secs,
    );
    out.emit(
        &resource,
        &DISK_WRITE_BYTES,
        (ws * SECTOR_BYTES) as f64 / secs,
    );
    out.emit(&resource, &DISK_READ_OPS, reads as f64 / secs);
    out.emit(&resource, &DISK_WRITE_OPS, writes as f64 / secs);
    out.emit(&resource, &DISK_UTILIZATION, (busy / ms).min(1.0));
    out.emit(
        &resource,
        &DISK_QUEUE_DEPTH,
        delta32(prev.time_in_queue, cur.time_in_queue) as f64 / ms,
    );
}

/// The disk sensor.
#[derive(Debug)]
pub struct DiskSensor {
    diskstats: TextFile,
    sys_block: PathBuf,
    skip: Vec<String>,
    /// Per device followed: when and what it read last; `None`: skipped.
    prev: HashMap<String, Option<(Instant, DiskCounters)>>,
}

impl DiskSensor {
    pub fn new(roots: &Roots, skip: Vec<String>) -> Self {
        DiskSensor {
            diskstats: TextFile::new(roots.proc.join("diskstats")),
            sys_block: roots.sys.join("block"),
            skip,
            prev: HashMap::new(),
        }
    }
}

/// Whether `name` is followed: a whole disk (under `/sys/block`) whose name
/// is a valid resource segment and starts with no skipped prefix.
fn follows(sys_block: &std::path::Path, skip: &[String], name: &str) -> bool {
    !skip.iter().any(|p| name.starts_with(p.as_str()))
        && vcp_common::resource::validate(&format!("disk/{name}")).is_ok()
        && sys_block.join(name).exists()
}

impl Sensor for DiskSensor {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn sample(&mut self, now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let DiskSensor {
            diskstats,
            sys_block,
            skip,
            prev,
        } = self;
        let devices = match diskstats.read().and_then(parse_diskstats) {
            Ok(d) => d,
            Err(e) => {
                prev.clear();
                return Err(e);
            }
        };
        if devices.len() > MAX_DEVICES {
            tracing::debug!(
                devices = devices.len(),
                "diskstats: only the first {MAX_DEVICES} devices are read"
            );
        }
        let mut next = HashMap::with_capacity(devices.len().min(MAX_DEVICES));
        for (name, cur) in devices.into_iter().take(MAX_DEVICES) {
            let kept = match prev.remove(name) {
                Some(Some(kept)) => Some(kept),
                None if follows(sys_block, skip, name) => None,
                Some(None) | None => {
                    next.insert(name.to_owned(), None);
                    continue;
                }
            };
            if let Some((at, prev)) = kept {
                emit_disk(name, &prev, &cur, now.duration_since(at).as_secs_f64(), out);
            }
            next.insert(name.to_owned(), Some((now, cur)));
        }
        // Devices that vanished are forgotten here.
        *prev = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;
    use std::time::Duration;

    #[test]
    fn parses_this_machines_diskstats() {
        let d = parse_diskstats(include_str!("fixtures/diskstats.txt")).unwrap();
        let vda = d.iter().find(|(n, _)| *n == "vda").unwrap().1;
        assert_eq!(vda.reads, 7787339);
        assert_eq!(vda.read_sectors, 317902530);
        assert_eq!(vda.writes, 4368230);
        assert_eq!(vda.write_sectors, 1559545632);
        assert_eq!(vda.io_ticks, 1591644);
        assert_eq!(vda.time_in_queue, 56053318);
        assert!(parse_diskstats("   8 0 sda 1 2 3").is_err());
        assert!(parse_diskstats("8 0 sda 1 2 x 4 5 6 7 8 9 10 11").is_err());
    }

    fn counters(reads: u64, sectors: u64, io_ticks: u64, queue: u64) -> DiskCounters {
        DiskCounters {
            reads,
            read_sectors: sectors,
            writes: reads * 2,
            write_sectors: sectors * 2,
            io_ticks,
            time_in_queue: queue,
        }
    }

    #[test]
    fn rates_per_second_and_the_32_bit_time_fields_across_a_wrap() {
        let mut out = Collected::default();
        let prev = counters(100, 1000, u32::MAX as u64 - 99, u32::MAX as u64 - 999);
        let cur = counters(300, 5000, 400, 1000);
        emit_disk("sda", &prev, &cur, 2.0, &mut out);
        assert_eq!(out.get("disk/sda", &DISK_READ_OPS), Some(100.0));
        assert_eq!(out.get("disk/sda", &DISK_WRITE_OPS), Some(200.0));
        assert_eq!(
            out.get("disk/sda", &DISK_READ_BYTES),
            Some(4000.0 * 512.0 / 2.0)
        );
        assert_eq!(
            out.get("disk/sda", &DISK_WRITE_BYTES),
            Some(8000.0 * 512.0 / 2.0)
        );
        // 500 ms busy of 2,000; 2,000 ms of queue time over 2,000 ms.
        assert_eq!(out.get("disk/sda", &DISK_UTILIZATION), Some(0.25));
        assert_eq!(out.get("disk/sda", &DISK_QUEUE_DEPTH), Some(1.0));
    }

    #[test]
    fn counters_that_restart_give_no_rates() {
        let mut out = Collected::default();
        emit_disk(
            "sda",
            &counters(300, 5000, 10, 10),
            &counters(5, 50, 20, 20),
            1.0,
            &mut out,
        );
        // Busy time far past the time passed: a device that came back.
        emit_disk(
            "sdb",
            &counters(1, 1, 5_000_000, 1),
            &counters(2, 2, 10, 2),
            1.0,
            &mut out,
        );
        assert!(out.0.is_empty(), "{:?}", out.0);
    }

    #[test]
    fn follows_whole_disks_only_and_not_the_skipped_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        let sys = dir.path().join("sys");
        for d in ["vda", "loop0", "zram0"] {
            std::fs::create_dir_all(sys.join("block").join(d)).unwrap();
        }
        std::fs::create_dir_all(&proc).unwrap();
        let stats = |reads: u64| {
            ["vda", "vda1", "loop0", "zram0"]
                .iter()
                .map(|d| {
                    format!(
                        " 254 0 {d} {reads} 0 {reads} 0 {reads} 0 {reads} 0 0 {reads} {reads}\n"
                    )
                })
                .collect::<String>()
        };
        std::fs::write(proc.join("diskstats"), stats(10)).unwrap();
        let roots = Roots {
            proc: proc.clone(),
            sys,
        };
        let skip = DEFAULT_SKIP.iter().map(|s| s.to_string()).collect();
        let mut sensor = DiskSensor::new(&roots, skip);
        let t0 = Instant::now();
        let mut out = Collected::default();
        sensor.sample(t0, &mut out).unwrap();
        assert!(out.0.is_empty(), "no rates on the first sample");
        // Skipped devices stay skipped sample after sample.
        for (reads, secs) in [(20, 1), (30, 2)] {
            std::fs::write(proc.join("diskstats"), stats(reads)).unwrap();
            sensor
                .sample(t0 + Duration::from_secs(secs), &mut out)
                .unwrap();
        }
        let resources: std::collections::BTreeSet<&str> =
            out.0.iter().map(|(r, _, _)| r.as_str()).collect();
        assert_eq!(resources.into_iter().collect::<Vec<_>>(), ["disk/vda"]);
        assert_eq!(out.get("disk/vda", &DISK_READ_OPS), Some(10.0));
    }

    #[test]
    fn reads_this_machine() {
        let roots = Roots::default();
        let skip = DEFAULT_SKIP.iter().map(|s| s.to_string()).collect();
        let mut sensor = DiskSensor::new(&roots, skip);
        let t0 = Instant::now();
        let mut out = Collected::default();
        sensor.sample(t0, &mut out).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        sensor.sample(Instant::now(), &mut out).unwrap();
        for (resource, metric, value) in &out.0 {
            assert!(resource.starts_with("disk/"), "{resource}");
            assert!(
                value.is_finite() && *value >= 0.0,
                "{resource} {metric} {value}"
            );
        }
    }
}
