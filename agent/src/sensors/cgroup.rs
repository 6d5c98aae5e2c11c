//! Virtual-resource sensor: reads cgroup v2 groups (services, containers,
//! VM processes) and emits their usage for resource `cgroup/<relative path>`.
//!
//! Groups are the ones listed in the configuration plus, when a slice is
//! configured, its direct child directories (e.g. `vcp.slice/web`). Per
//! group: CPU cores in use from `cpu.stat` `usage_usec` deltas, memory from
//! `memory.current`, read/write bytes per second from `io.stat` (summed
//! over devices), `some avg10` pressure from `cpu.pressure`,
//! `memory.pressure` and `io.pressure` (percent → ratio), and the number of
//! processes (lines of `cgroup.procs`; threads are not counted).
//!
//! Rates need a previous sample of the same group: none on the first
//! sample, and none across a counter going backwards (a group re-created
//! under the same name). A missing or unparsable file skips that metric
//! only (logged once at debug: a controller not enabled is normal).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use vcp_common::metric::Metric;
pub use vcp_common::metric::{
    CGROUP_CPU_PRESSURE, CGROUP_CPU_USAGE, CGROUP_IO_PRESSURE, CGROUP_IO_READ, CGROUP_IO_WRITE,
    CGROUP_MEMORY_CURRENT, CGROUP_MEMORY_PRESSURE, CGROUP_PROCESSES,
};

use super::{parse_err, parse_u64, Emit, Sensor, SensorError};

/// Every metric this sensor emits.
pub const METRICS: [Metric; 8] = [
    CGROUP_CPU_USAGE,
    CGROUP_MEMORY_CURRENT,
    CGROUP_IO_READ,
    CGROUP_IO_WRITE,
    CGROUP_CPU_PRESSURE,
    CGROUP_MEMORY_PRESSURE,
    CGROUP_IO_PRESSURE,
    CGROUP_PROCESSES,
];

/// Most groups sampled (listed plus found in the slice).
pub const MAX_GROUPS: usize = 1024;
/// Longest relative group path accepted.
pub const MAX_PATH: usize = 400;

/// Checks a group path relative to the cgroup root: plain `/`-separated
/// segments of printable characters, none empty, `.` or `..`.
pub fn check_group_path(rel: &str) -> Result<(), String> {
    if rel.is_empty() || rel.len() > MAX_PATH {
        return Err(format!("group path must be 1..={MAX_PATH} bytes"));
    }
    if rel.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("group path contains control or space characters".into());
    }
    for seg in rel.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!(
                "{rel:?} must be a relative path without empty, '.' or '..' segments"
            ));
        }
    }
    Ok(())
}

/// `usage_usec` from `cpu.stat`.
pub fn parse_cpu_usage_usec(text: &str) -> Result<u64, SensorError> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .map(|v| parse_u64("cpu.stat", v.trim()))
        .unwrap_or_else(|| Err(parse_err("cpu.stat", "no usage_usec")))
}

/// Cumulative bytes read and written, summed over the devices of `io.stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoBytes {
    pub read: u64,
    pub write: u64,
}

/// Parses `io.stat` (`MAJ:MIN rbytes=… wbytes=… rios=… …` per device; an
/// empty file means no IO yet).
pub fn parse_io_stat(text: &str) -> Result<IoBytes, SensorError> {
    const WHAT: &str = "io.stat";
    let mut sum = IoBytes::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        for field in line.split_whitespace().skip(1) {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let slot = match key {
                "rbytes" => &mut sum.read,
                "wbytes" => &mut sum.write,
                _ => continue,
            };
            *slot = slot
                .checked_add(parse_u64(WHAT, value)?)
                .ok_or_else(|| parse_err(WHAT, "byte sum overflows"))?;
        }
    }
    Ok(sum)
}

/// `some avg10` of a pressure file, as a ratio in 0..=1.
pub fn parse_pressure_some_avg10(text: &str) -> Result<f64, SensorError> {
    super::pressure::parse_pressure(text).map(|p| p.some.avg10)
}

/// `memory.current`, in bytes.
pub fn parse_memory_current(text: &str) -> Result<u64, SensorError> {
    parse_u64("memory.current", text.trim())
}

/// Processes listed in `cgroup.procs` (one pid per line).
pub fn count_procs(text: &str) -> usize {
    text.lines().filter(|l| !l.trim().is_empty()).count()
}

/// One group's cumulative counters at a sample instant.
#[derive(Debug, Clone, Copy)]
struct Prev {
    at: Instant,
    usage_usec: Option<u64>,
    io: Option<IoBytes>,
}

/// The cgroup sensor.
#[derive(Debug)]
pub struct CgroupSensor {
    root: PathBuf,
    groups: Vec<String>,
    slice: Option<String>,
    prev: HashMap<String, Prev>,
    /// `(group, what)` problems already logged.
    logged: HashSet<(String, &'static str)>,
}

impl CgroupSensor {
    /// Samples `groups` (relative to `root`) and the direct children of
    /// `slice`. Invalid paths are dropped here with a warning.
    pub fn new(root: PathBuf, groups: Vec<String>, slice: Option<String>) -> Self {
        let valid = |g: &String| match check_group_path(g) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(group = %g, reason = %why, "cgroup sensor: group ignored");
                false
            }
        };
        let groups = groups.into_iter().filter(valid).collect();
        let slice = slice.filter(valid);
        CgroupSensor {
            root,
            groups,
            slice,
            prev: HashMap::new(),
            logged: HashSet::new(),
        }
    }

    fn log_once(&mut self, group: &str, what: &'static str, why: &dyn std::fmt::Display) {
        if self.logged.insert((group.to_owned(), what)) {
            tracing::debug!(group, what, reason = %why, "cgroup metric skipped");
        }
    }

    /// The groups to sample now, sorted and without duplicates.
    fn current_groups(&mut self) -> Result<BTreeSet<String>, SensorError> {
        let mut all: BTreeSet<String> = self.groups.iter().cloned().collect();
        let Some(slice) = &self.slice else {
            return Ok(all);
        };
        let dir = self.root.join(slice);
        let entries = std::fs::read_dir(&dir).map_err(|source| SensorError::Io {
            path: dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Some(name) = e.file_name().to_str() {
                let rel = format!("{slice}/{name}");
                if check_group_path(&rel).is_ok() {
                    all.insert(rel);
                }
            }
        }
        Ok(all)
    }

    /// Reads and parses one file of a group; `None` (logged once) when the
    /// file is missing or does not parse.
    fn parsed<T>(
        &mut self,
        group: &str,
        dir: &Path,
        file: &'static str,
        parse: fn(&str) -> Result<T, SensorError>,
    ) -> Option<T> {
        let result = std::fs::read_to_string(dir.join(file))
            .map_err(|e| e.to_string())
            .and_then(|text| parse(&text).map_err(|e| e.to_string()));
        match result {
            Ok(v) => Some(v),
            Err(why) => {
                self.log_once(group, file, &why);
                None
            }
        }
    }

    fn sample_group(&mut self, group: &str, now: Instant, out: &mut dyn Emit) {
        let dir = self.root.join(group);
        let resource = format!("cgroup/{group}");
        type Parse = fn(&str) -> Result<f64, SensorError>;
        let singles: [(&'static str, &Metric, Parse); 5] = [
            ("memory.current", &CGROUP_MEMORY_CURRENT, |t| {
                parse_memory_current(t).map(|b| b as f64)
            }),
            (
                "cpu.pressure",
                &CGROUP_CPU_PRESSURE,
                parse_pressure_some_avg10,
            ),
            (
                "memory.pressure",
                &CGROUP_MEMORY_PRESSURE,
                parse_pressure_some_avg10,
            ),
            (
                "io.pressure",
                &CGROUP_IO_PRESSURE,
                parse_pressure_some_avg10,
            ),
            ("cgroup.procs", &CGROUP_PROCESSES, |t| {
                Ok(count_procs(t) as f64)
            }),
        ];
        for (file, metric, parse) in singles {
            if let Some(v) = self.parsed(group, &dir, file, parse) {
                out.emit(&resource, metric, v);
            }
        }
        let cur = Prev {
            at: now,
            usage_usec: self.parsed(group, &dir, "cpu.stat", parse_cpu_usage_usec),
            io: self.parsed(group, &dir, "io.stat", parse_io_stat),
        };
        if let Some(prev) = self.prev.insert(group.to_owned(), cur) {
            emit_rates(&resource, &prev, &cur, out);
        }
    }
}

/// Emits the rate metrics between two samples of one group.
fn emit_rates(resource: &str, prev: &Prev, cur: &Prev, out: &mut dyn Emit) {
    let secs = cur.at.saturating_duration_since(prev.at).as_secs_f64();
    if secs <= 0.0 {
        return;
    }
    let rate = |a: Option<u64>, b: Option<u64>| Some(b?.checked_sub(a?)? as f64 / secs);
    if let Some(usec) = rate(prev.usage_usec, cur.usage_usec) {
        out.emit(resource, &CGROUP_CPU_USAGE, usec / 1e6);
    }
    let (pio, cio) = (prev.io, cur.io);
    if let Some(r) = rate(pio.map(|i| i.read), cio.map(|i| i.read)) {
        out.emit(resource, &CGROUP_IO_READ, r);
    }
    if let Some(w) = rate(pio.map(|i| i.write), cio.map(|i| i.write)) {
        out.emit(resource, &CGROUP_IO_WRITE, w);
    }
}

impl Sensor for CgroupSensor {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn sample(&mut self, now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        // A slice that cannot be listed is reported after the listed groups
        // were sampled.
        let (groups, slice_err) = match self.current_groups() {
            Ok(g) => (g, None),
            Err(e) => (self.groups.iter().cloned().collect(), Some(e)),
        };
        let mut seen = HashSet::new();
        for group in groups.iter().take(MAX_GROUPS) {
            if !self.root.join(group).is_dir() {
                self.log_once(group, "group", &"no such directory");
                continue;
            }
            self.sample_group(group, now, out);
            seen.insert(group.as_str());
        }
        if groups.len() > MAX_GROUPS && self.logged.insert((String::new(), "too many groups")) {
            tracing::warn!(
                groups = groups.len(),
                max = MAX_GROUPS,
                "cgroup sensor: too many groups; the rest are not sampled"
            );
        }
        self.prev.retain(|g, _| seen.contains(g.as_str()));
        slice_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
