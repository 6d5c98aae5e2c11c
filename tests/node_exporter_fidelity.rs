//! The agent's sensors against Prometheus node_exporter on the same host at
//! the same moment: memory, cores, load, interfaces and their MTU, disks,
//! the root filesystem's size and inodes, and pressure, each within a
//! stated tolerance. Debian's `prometheus-node-exporter` (scripts/test
//! installs it) runs on a free loopback port for the test.
//!
//! `cargo test --test node_exporter_fidelity -- --nocapture` prints the
//! comparison.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vcp_agent::sensors::{self, Collected, Roots, SensorConfig};
use vcp_agent::uplink_status::UplinkStatus;
use vcp_common::metric::*;

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One scrape: every sample by name, with its labels.
type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

/// Parses the Prometheus text format's sample lines (the test's own
/// reader of what node_exporter writes; comments and blank lines skipped).
fn parse(text: &str) -> Samples {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                let (k, v) = l.split_once("=\"")?;
                Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
            })
            .collect();
        if let Ok(v) = value.parse() {
            out.push((name.to_owned(), labels, v));
        }
    }
    out
}

fn get(s: &Samples, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    s.iter()
        .find(|(n, l, _)| {
            n == name && label.is_none_or(|(k, v)| l.get(k).map(String::as_str) == Some(v))
        })
        .map(|(_, _, v)| *v)
}

fn label_values(s: &Samples, name: &str, label: &str) -> BTreeSet<String> {
    s.iter()
        .filter(|(n, _, _)| n == name)
        .filter_map(|(_, l, _)| l.get(label).cloned())
        .collect()
}

fn scrape(port: u16) -> Option<Samples> {
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| parse(&String::from_utf8_lossy(&out.stdout)))
}

/// One row of the comparison: what each side read, whether it agrees.
struct Row {
    what: String,
    vcp: String,
    node_exporter: String,
    tolerance: &'static str,
    ok: bool,
}

fn same_set(what: &str, vcp: &BTreeSet<String>, node_exporter: &BTreeSet<String>) -> Row {
    Row {
        what: what.into(),
        vcp: format!("{vcp:?}"),
        node_exporter: format!("{node_exporter:?}"),
        tolerance: "the same set",
        ok: vcp == node_exporter,
    }
}

fn close(a: f64, b: f64, abs: f64, rel: f64) -> bool {
    (a - b).abs() <= abs.max(rel * a.abs().max(b.abs()))
}

#[test]
fn the_agents_readings_agree_with_node_exporter_on_this_host() {
    let exporter = common::require_tool("prometheus-node-exporter", "prometheus-node-exporter");
    common::require_tool("curl", "curl");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _exporter = Exporter(
        Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let mut ne = loop {
        if let Some(s) = scrape(port) {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "node_exporter did not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // Two samples a second apart (rates need a previous one), the second
    // taken right beside a scrape.
    let mut set = sensors::standard(
        &Roots::default(),
        Arc::new(UplinkStatus::default()),
        &SensorConfig::default(),
    );
    let mut vcp = Collected::default();
    for s in &mut set {
        let _ = s.sample(Instant::now(), &mut vcp);
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut vcp = Collected::default();
    for s in &mut set {
        let _ = s.sample(Instant::now(), &mut vcp);
    }
    if let Some(s) = scrape(port) {
        ne = s;
    }

    let mut rows = Vec::new();
    let num = |what: &str,
               v: Option<f64>,
               n: Option<f64>,
               tolerance: &'static str,
               abs: f64,
               rel: f64| {
        let ok = matches!((v, n), (Some(a), Some(b)) if close(a, b, abs, rel));
        let show = |x: Option<f64>| {
            x.map_or("—".into(), |x| {
                if x.fract() == 0.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.3}")
                }
            })
        };
        Row {
            what: what.into(),
            vcp: show(v),
            node_exporter: show(n),
            tolerance,
            ok,
        }
    };
    rows.push(num(
        "memory total (bytes)",
        vcp.get("memory", &MEMORY_TOTAL),
        get(&ne, "node_memory_MemTotal_bytes", None),
        "exact",
        0.0,
        0.0,
    ));
    rows.push(num(
        "memory available (bytes)",
        vcp.get("memory", &MEMORY_AVAILABLE),
        get(&ne, "node_memory_MemAvailable_bytes", None),
        "5 % or 256 MiB",
        256.0 * 1024.0 * 1024.0,
        0.05,
    ));
    let cores = label_values(&ne, "node_cpu_seconds_total", "cpu").len() as f64;
    rows.push(num(
        "cores",
        vcp.get("cpu", &CPU_CORES),
        Some(cores),
        "exact",
        0.0,
        0.0,
    ));
    rows.push(num(
        "load, 1 min",
        vcp.get("cpu", &CPU_LOAD1),
        get(&ne, "node_load1", None),
        "0.5 or 20 %",
        0.5,
        0.2,
    ));
    rows.push(num(
        "root fs size (bytes)",
        vcp.get("fs", &FS_SIZE),
        get(&ne, "node_filesystem_size_bytes", Some(("mountpoint", "/"))),
        "exact",
        0.0,
        0.0,
    ));
    rows.push(num(
        "root fs available (bytes)",
        vcp.get("fs", &FS_AVAILABLE),
        get(
            &ne,
            "node_filesystem_avail_bytes",
            Some(("mountpoint", "/")),
        ),
        "64 MiB",
        64.0 * 1024.0 * 1024.0,
        0.0,
    ));
    rows.push(num(
        "root fs inodes",
        vcp.get("fs", &FS_INODES_TOTAL),
        get(&ne, "node_filesystem_files", Some(("mountpoint", "/"))),
        "exact",
        0.0,
        0.0,
    ));
    let ours = |prefix: &str| -> BTreeSet<String> {
        vcp.0
            .iter()
            .filter_map(|(r, _, _)| r.strip_prefix(prefix).map(str::to_owned))
            .collect()
    };
    // node_exporter leaves `lo` out by default; the agent reads it.
    let nics = label_values(&ne, "node_network_receive_bytes_total", "device");
    let mut our_nics = ours("nic/");
    our_nics.remove("lo");
    rows.push(same_set("interfaces (less lo)", &our_nics, &nics));
    for nic in &nics {
        rows.push(num(
            &format!("{nic} MTU"),
            vcp.get(&format!("nic/{nic}"), &NIC_MTU),
            get(&ne, "node_network_mtu_bytes", Some(("device", nic))),
            "exact",
            0.0,
            0.0,
        ));
    }
    // The agent leaves out the devices its config skips (zram, ram, loop);
    // node_exporter's default keeps zram.
    let skip = SensorConfig::default().disk_skip;
    let disks: BTreeSet<String> = label_values(&ne, "node_disk_read_bytes_total", "device")
        .into_iter()
        .filter(|d| !skip.iter().any(|p| d.starts_with(p.as_str())))
        .collect();
    rows.push(same_set("disks (less disk_skip)", &ours("disk/"), &disks));
    if std::path::Path::new("/proc/pressure/io").exists() {
        let has = get(&ne, "node_pressure_io_stalled_seconds_total", None).is_some();
        rows.push(Row {
            what: "io pressure read".into(),
            vcp: format!("{:?}", vcp.get("host", &PRESSURE_IO_FULL_STALLED).is_some()),
            node_exporter: format!("{has:?}"),
            tolerance: "both",
            ok: has && vcp.get("host", &PRESSURE_IO_FULL_STALLED).is_some(),
        });
    }

    println!("| reading | vcp-agent | node_exporter | tolerance | agrees |");
    println!("| --- | --- | --- | --- | --- |");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.what,
            r.vcp,
            r.node_exporter,
            r.tolerance,
            if r.ok { "yes" } else { "NO" }
        );
    }
    let bad: Vec<&str> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.what.as_str())
        .collect();
    assert!(bad.is_empty(), "disagree with node_exporter: {bad:?}");
}
