//! The metric registry: every metric name, its unit and its wire precision,
//! in one place. Agents, the supervisor, modules and the report all use these
//! names; nothing else in the code base spells a metric name by hand.
//!
//! A metric's `exp` is its quantum as a power of ten: the batch codec sends
//! `round(value / 10^exp)` as an integer. Integer quantities (bytes, counts)
//! use `exp = 0` and travel losslessly; ratios use `exp = -5`, finer than the
//! 1e-4 the brief asks for.

use serde::{Deserialize, Serialize};

/// Unit of a metric, as shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A fraction in 0..=1.
    Ratio,
    Bytes,
    BytesPerSecond,
    BitsPerSecond,
    PerSecond,
    Count,
    Seconds,
    Watts,
    Celsius,
    Megahertz,
    /// Revolutions per minute (fans).
    Rpm,
    /// 1 or 0.
    Boolean,
    /// Run-queue length averaged over a window (as in `/proc/loadavg`).
    Load,
    /// CPU cores' worth of time per second.
    Cores,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio",
            Unit::Bytes => "bytes",
            Unit::BytesPerSecond => "bytes/s",
            Unit::BitsPerSecond => "bits/s",
            Unit::PerSecond => "1/s",
            Unit::Count => "count",
            Unit::Seconds => "s",
            Unit::Watts => "W",
            Unit::Celsius => "°C",
            Unit::Megahertz => "MHz",
            Unit::Rpm => "rpm",
            Unit::Boolean => "bool",
            Unit::Load => "load",
            Unit::Cores => "cores",
        }
    }
}

/// One registered metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    /// Wire quantum as a power of ten (see module docs).
    pub exp: i8,
    pub help: &'static str,
}

macro_rules! metrics {
    ($( $id:ident = $name:literal, $unit:ident, $exp:literal, $help:literal; )*) => {
        $( pub const $id: Metric = Metric { name: $name, unit: Unit::$unit, exp: $exp, help: $help }; )*
        /// Every registered metric, in a stable order.
        pub const ALL: &[Metric] = &[ $( $id ),* ];
    };
}

metrics! {
    CPU_UTILIZATION = "cpu.utilization", Ratio, -5, "busy share of CPU time (user+nice+system+irq+softirq+steal) since the previous sample; resource `cpu` is the host, `cpu/N` core N";
    CPU_CORES = "cpu.cores", Count, 0, "online logical cores";
    CPU_LOAD1 = "cpu.load1", Load, -2, "1-minute load average";
    CPU_LOAD5 = "cpu.load5", Load, -2, "5-minute load average";
    CPU_LOAD15 = "cpu.load15", Load, -2, "15-minute load average";
    CPU_FREQUENCY = "cpu.frequency", Megahertz, -1, "the core's current clock: cpufreq's scaling_cur_freq, or /proc/cpuinfo's cpu MHz without cpufreq";
    CPU_THROTTLE_CORE = "cpu.throttle.core", Count, 0, "thermal throttle events of the core since boot (thermal_throttle/core_throttle_count), where the platform counts them";
    CPU_THROTTLE_PACKAGE = "cpu.throttle.package", Count, 0, "thermal throttle events of the package since boot, on resource `cpu/package/P`";

    MEMORY_TOTAL = "memory.total", Bytes, 0, "MemTotal";
    MEMORY_AVAILABLE = "memory.available", Bytes, 0, "MemAvailable";
    MEMORY_USED = "memory.used", Bytes, 0, "MemTotal - MemAvailable";
    MEMORY_SWAP_TOTAL = "memory.swap.total", Bytes, 0, "SwapTotal";
    MEMORY_SWAP_USED = "memory.swap.used", Bytes, 0, "SwapTotal - SwapFree";

    NIC_RX_BYTES = "nic.rx.bytes_per_second", BytesPerSecond, 0, "received bytes per second";
    NIC_TX_BYTES = "nic.tx.bytes_per_second", BytesPerSecond, 0, "transmitted bytes per second";
    NIC_RX_PACKETS = "nic.rx.packets_per_second", PerSecond, -2, "received packets per second";
    NIC_TX_PACKETS = "nic.tx.packets_per_second", PerSecond, -2, "transmitted packets per second";
    NIC_RX_ERRORS = "nic.rx.errors_per_second", PerSecond, -2, "receive errors per second";
    NIC_TX_ERRORS = "nic.tx.errors_per_second", PerSecond, -2, "transmit errors per second";
    NIC_RX_DROPS = "nic.rx.drops_per_second", PerSecond, -2, "received packets dropped per second";
    NIC_TX_DROPS = "nic.tx.drops_per_second", PerSecond, -2, "transmit packets dropped per second";
    NIC_SPEED = "nic.speed", BitsPerSecond, 0, "link speed from /sys/class/net/IF/speed, where the driver knows it";
    NIC_CARRIER = "nic.carrier", Boolean, 0, "1 when the link has a carrier (/sys/class/net/IF/carrier; none while the interface is down)";
    NIC_UP = "nic.up", Boolean, 0, "1 when the interface's operstate is up";
    NIC_MTU = "nic.mtu", Bytes, 0, "the interface's MTU";
    NIC_UTILIZATION = "nic.utilization", Ratio, -5, "max(rx, tx) bytes/s over link speed, where the speed is known";

    DISK_READ_BYTES = "disk.read.bytes_per_second", BytesPerSecond, 0, "bytes read per second (/proc/diskstats sectors read, 512 bytes each)";
    DISK_WRITE_BYTES = "disk.write.bytes_per_second", BytesPerSecond, 0, "bytes written per second (/proc/diskstats sectors written, 512 bytes each)";
    DISK_READ_OPS = "disk.read.ops_per_second", PerSecond, -2, "reads completed per second";
    DISK_WRITE_OPS = "disk.write.ops_per_second", PerSecond, -2, "writes completed per second";
    DISK_UTILIZATION = "disk.utilization", Ratio, -5, "share of the time the device had a request in flight (io_ticks)";
    DISK_QUEUE_DEPTH = "disk.queue_depth", Load, -3, "requests in flight, averaged over the time since the previous sample (time_in_queue)";

    FS_SIZE = "filesystem.size", Bytes, 0, "size of the filesystem (statvfs)";
    FS_USED = "filesystem.used", Bytes, 0, "size less free space (the root-reserved blocks count as free)";
    FS_AVAILABLE = "filesystem.available", Bytes, 0, "space free to unprivileged users";
    FS_INODES_TOTAL = "filesystem.inodes.total", Count, 0, "inodes of the filesystem, where it has a fixed number";
    FS_INODES_FREE = "filesystem.inodes.free", Count, 0, "inodes free";
    FS_READ_ONLY = "filesystem.read_only", Boolean, 0, "1 when mounted read-only";

    PRESSURE_CPU_SOME = "pressure.cpu.some", Ratio, -5, "share of the last 10 s at least one task waited for a CPU (/proc/pressure/cpu some avg10)";
    PRESSURE_CPU_FULL = "pressure.cpu.full", Ratio, -5, "share of the last 10 s all non-idle tasks waited for a CPU (full avg10; kernels since 5.13)";
    PRESSURE_CPU_SOME_STALLED = "pressure.cpu.some.stalled", Ratio, -5, "share of the time since the previous sample at least one task waited for a CPU (some total)";
    PRESSURE_CPU_FULL_STALLED = "pressure.cpu.full.stalled", Ratio, -5, "share of the time since the previous sample all non-idle tasks waited for a CPU (full total)";
    PRESSURE_MEMORY_SOME = "pressure.memory.some", Ratio, -5, "share of the last 10 s at least one task stalled on memory (/proc/pressure/memory some avg10)";
    PRESSURE_MEMORY_FULL = "pressure.memory.full", Ratio, -5, "share of the last 10 s all non-idle tasks stalled on memory (full avg10)";
    PRESSURE_MEMORY_SOME_STALLED = "pressure.memory.some.stalled", Ratio, -5, "share of the time since the previous sample at least one task stalled on memory (some total)";
    PRESSURE_MEMORY_FULL_STALLED = "pressure.memory.full.stalled", Ratio, -5, "share of the time since the previous sample all non-idle tasks stalled on memory (full total)";
    PRESSURE_IO_SOME = "pressure.io.some", Ratio, -5, "share of the last 10 s at least one task waited for IO (/proc/pressure/io some avg10)";
    PRESSURE_IO_FULL = "pressure.io.full", Ratio, -5, "share of the last 10 s all non-idle tasks waited for IO (full avg10)";
    PRESSURE_IO_SOME_STALLED = "pressure.io.some.stalled", Ratio, -5, "share of the time since the previous sample at least one task waited for IO (some total)";
    PRESSURE_IO_FULL_STALLED = "pressure.io.full.stalled", Ratio, -5, "share of the time since the previous sample all non-idle tasks waited for IO (full total)";

    HWMON_TEMPERATURE = "hwmon.temperature", Celsius, -1, "a hardware monitor's temperature (/sys/class/hwmon tempN_input); resource `hwmon/CHIP/SENSOR`";
    HWMON_FAN = "hwmon.fan", Rpm, 0, "a fan's speed (fanN_input)";
    HWMON_POWER = "hwmon.power", Watts, -3, "power a hardware monitor measures (powerN_input or powerN_average)";

    GPU_PRESENT = "gpu.present", Boolean, 0, "1 when NVML found at least one device; resource `gpu`";
    GPU_UTILIZATION = "gpu.utilization", Ratio, -5, "share of time a kernel ran on the device";
    GPU_MEMORY_UTILIZATION = "gpu.memory.utilization", Ratio, -5, "share of time device memory was read or written";
    GPU_MEMORY_USED = "gpu.memory.used", Bytes, 0, "device memory in use";
    GPU_MEMORY_TOTAL = "gpu.memory.total", Bytes, 0, "device memory installed";
    GPU_POWER = "gpu.power", Watts, -3, "board power draw";
    GPU_TEMPERATURE = "gpu.temperature", Celsius, 0, "GPU die temperature";
    GPU_SM_CLOCK = "gpu.sm_clock", Megahertz, 0, "streaming multiprocessor clock";

    STATUS_UP = "status.up", Boolean, 0, "1 while the agent runs";
    STATUS_UPTIME = "status.uptime", Seconds, -2, "host uptime from /proc/uptime";
    STATUS_SINCE_ACK = "status.since_ack", Seconds, -3, "seconds since the agent last received an acknowledgement from the supervisor";
    STATUS_AGENT_CPU = "status.agent.cpu_seconds", Seconds, -2, "CPU seconds (user+system) the agent process has used";
    STATUS_AGENT_RSS = "status.agent.rss", Bytes, 0, "resident memory of the agent process";
    STATUS_DROPPED = "status.spool.dropped_readings", Count, 0, "readings the agent dropped because its spool was full (cumulative)";
    STATUS_SPOOLED = "status.spool.batches", Count, 0, "batches waiting in the agent's spool for an acknowledgement";

    CGROUP_CPU_USAGE = "cgroup.cpu.usage", Cores, -4, "CPU cores the group used since the previous sample (cpu.stat usage_usec delta over elapsed time)";
    CGROUP_MEMORY_CURRENT = "cgroup.memory.current", Bytes, 0, "memory charged to the group (memory.current)";
    CGROUP_IO_READ = "cgroup.io.read.bytes_per_second", BytesPerSecond, 0, "bytes read per second, all devices (io.stat rbytes)";
    CGROUP_IO_WRITE = "cgroup.io.write.bytes_per_second", BytesPerSecond, 0, "bytes written per second, all devices (io.stat wbytes)";
    CGROUP_CPU_PRESSURE = "cgroup.cpu.pressure", Ratio, -5, "share of the last 10 s some task of the group waited for CPU (cpu.pressure some avg10)";
    CGROUP_MEMORY_PRESSURE = "cgroup.memory.pressure", Ratio, -5, "share of the last 10 s some task of the group stalled on memory (memory.pressure some avg10)";
    CGROUP_IO_PRESSURE = "cgroup.io.pressure", Ratio, -5, "share of the last 10 s some task of the group waited for IO (io.pressure some avg10)";
    CGROUP_PROCESSES = "cgroup.processes", Count, 0, "processes in the group (lines of cgroup.procs)";
    APP_REQUESTS_PER_SECOND = "app.requests_per_second", PerSecond, -2, "requests per second, as the application reports it";
    APP_LATENCY_P50 = "app.latency.p50", Seconds, -6, "median request latency, as the application reports it";
    APP_LATENCY_P95 = "app.latency.p95", Seconds, -6, "95th percentile request latency, as the application reports it";
    APP_LATENCY_P99 = "app.latency.p99", Seconds, -6, "99th percentile request latency, as the application reports it";
    APP_QUEUE_DEPTH = "app.queue_depth", Count, -2, "requests waiting in the application's queue";
    APP_UTILIZATION = "app.utilization", Ratio, -5, "busy share of the application's instances, as the application reports it";
    APP_ERRORS_PER_SECOND = "app.errors_per_second", PerSecond, -2, "failed requests per second, as the application reports it";
    APP_MALFORMED_LINES = "app.malformed_lines", Count, 0, "lines the agent's application endpoint refused (cumulative); resource `agent`";
    APP_UNLISTED_LINES = "app.unlisted_lines", Count, 0, "well-formed lines the agent's application endpoint refused because their resource is not one the agent's config lists (cumulative); resource `agent`";
}

/// Finds a registered metric by name.
pub fn lookup(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|m| m.name == name)
}

/// Wire quantum exponent for a metric name; metrics that are not registered
/// (custom sensors) get micro-unit precision.
pub fn exp_for(name: &str) -> i8 {
    lookup(name).map_or(CUSTOM_EXP, |m| m.exp)
}

/// Precision of unregistered (custom) metrics.
pub const CUSTOM_EXP: i8 = -6;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_lookup_finds_each() {
        let mut seen = HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "duplicate metric {}", m.name);
            assert_eq!(lookup(m.name), Some(m));
        }
        assert_eq!(lookup("no.such.metric"), None);
        assert_eq!(exp_for("custom.thing"), CUSTOM_EXP);
    }

    #[test]
    fn ratios_keep_at_least_1e4() {
        for m in ALL.iter().filter(|m| m.unit == Unit::Ratio) {
            assert!(m.exp <= -4, "{} too coarse", m.name);
        }
    }
}
