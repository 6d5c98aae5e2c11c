//! The supervisor process's own resources under the names every
//! Prometheus client library uses (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, …), read from `/proc/self` at scrape
//! time. Where `/proc` cannot be read the families are left out.

use procfs_core::process::{Stat, Status};
use procfs_core::FromRead;

use super::family::Families;

pub(super) fn process(f: &mut Families) {
    let (Ok(stat), Ok(status)) = (
        Stat::from_file("/proc/self/stat"),
        Status::from_file("/proc/self/status"),
    ) else {
        return;
    };
    let ticks = ticks_per_second();
    f.counter(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
    )
    .add(Vec::new(), (stat.utime + stat.stime) as f64 / ticks);
    if let Some(kb) = status.vmrss {
        f.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        )
        .add(Vec::new(), kb * 1024);
    }
    f.gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
    )
    .add(Vec::new(), stat.vsize);
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        f.gauge("process_open_fds", "Number of open file descriptors.")
            .add(Vec::new(), fds.count() as u64);
    }
    f.gauge("process_threads", "Number of OS threads in the process.")
        .add(Vec::new(), stat.num_threads.max(0) as u64);
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}
