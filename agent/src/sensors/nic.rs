//! NIC sensor: reads `/proc/net/dev` counters and `/sys/class/net/IF/speed`
//! and emits per-interface rates (resource `nic/IF`), link speed and
//! utilisation.
//!
//! Rates come from the previous sample of the same interface and the time
//! between the two samples. It must never report a rate for an interface
//! seen for the first time, nor a rate across a counter reset (a counter
//! going backwards that is not a plausible 32- or 64-bit wrap), nor a speed
//! or utilisation when the driver does not know the link speed.
//!
//! Parsed by hand: `procfs_core::DeviceStatus` splits on whitespace, but the
//! kernel prints `%6s:%8llu`, so a large receive counter touches the colon
//! (`eth0:123456789012`).

use std::collections::HashMap;
use std::time::Instant;

use vcp_common::metric::{
    Metric, NIC_CARRIER, NIC_MTU, NIC_RX_BYTES, NIC_RX_DROPS, NIC_RX_ERRORS, NIC_RX_PACKETS,
    NIC_SPEED, NIC_TX_BYTES, NIC_TX_DROPS, NIC_TX_ERRORS, NIC_TX_PACKETS, NIC_UP, NIC_UTILIZATION,
};

use super::{parse_err, parse_u64, Emit, Roots, Sensor, SensorError, TextFile};

/// The rate metrics, in the order of [`NicCounters`].
pub const RATE_METRICS: [Metric; 8] = [
    NIC_RX_BYTES,
    NIC_RX_PACKETS,
    NIC_RX_ERRORS,
    NIC_RX_DROPS,
    NIC_TX_BYTES,
    NIC_TX_PACKETS,
    NIC_TX_ERRORS,
    NIC_TX_DROPS,
];
/// Columns of `/proc/net/dev` (after the colon) feeding [`RATE_METRICS`].
const COLUMNS: [usize; 8] = [0, 1, 2, 3, 8, 9, 10, 11];
const RX_BYTES: usize = 0;
const TX_BYTES: usize = 4;

/// Cumulative counters of one interface: rx bytes, packets, errors, drops,
/// then the same for tx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NicCounters(pub [u64; 8]);

/// Parses `/proc/net/dev` text into `(interface, counters)` pairs.
pub fn parse_net_dev(text: &str) -> Result<Vec<(String, NicCounters)>, SensorError> {
    const WHAT: &str = "/proc/net/dev";
    let mut out = Vec::new();
    for line in text.lines() {
        if line.contains('|') || line.trim().is_empty() {
            continue; // the two header lines
        }
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| parse_err(WHAT, format!("no colon in {line:?}")))?;
        let name = name.trim();
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', ' ']) {
            return Err(parse_err(WHAT, format!("bad interface name {name:?}")));
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 16 {
            return Err(parse_err(
                WHAT,
                format!("{name}: {} columns, expected 16", fields.len()),
            ));
        }
        let mut c = [0u64; 8];
        for (slot, col) in c.iter_mut().zip(COLUMNS) {
            *slot = parse_u64(WHAT, fields[col])?;
        }
        out.push((name.to_owned(), NicCounters(c)));
    }
    Ok(out)
}

/// Parses `/sys/class/net/IF/speed` (Mbit/s) into bits/s; `None` when the
/// driver reports the speed as unknown (-1, 0, or the old 16/32-bit
/// all-ones "unknown" values).
pub fn parse_speed(text: &str) -> Result<Option<u64>, SensorError> {
    let t = text.trim();
    let mbit: i64 = t
        .parse()
        .map_err(|e| parse_err("link speed", format!("{t:?}: {e}")))?;
    Ok(match mbit {
        m if m <= 0 || m == 0xFFFF || m >= 0xFFFF_FFFF => None,
        m => (m as u64).checked_mul(1_000_000),
    })
}

/// `carrier`: whether the link has one. (The kernel refuses the read,
/// EINVAL, while the interface is down: no reading then.)
pub fn parse_carrier(text: &str) -> Result<bool, SensorError> {
    match text.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        t => Err(parse_err("carrier", format!("{t:?}"))),
    }
}

/// `operstate` (RFC 2863): whether the interface is `up`; every other
/// state (`down`, `dormant`, `lowerlayerdown`, `unknown` as for `lo`, …)
/// counts as not up, as node_exporter's `node_network_up` has it.
pub fn parse_operstate(text: &str) -> Result<bool, SensorError> {
    match text.trim() {
        "" => Err(parse_err("operstate", "empty")),
        t => Ok(t == "up"),
    }
}

/// Link-layer facts read with the counters: speed, carrier, up, MTU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    pub speed_bits: Option<u64>,
    pub carrier: Option<bool>,
    pub up: Option<bool>,
    pub mtu: Option<u64>,
}

/// How far a counter advanced from `prev` to `cur`. A counter that went
/// backwards is taken as a wrap of a 32-bit (both values fit in 32 bits) or
/// 64-bit counter only when the wrapped distance is under half the
/// counter's range; otherwise it was reset and `None` is returned.
pub fn counter_delta(prev: u64, cur: u64) -> Option<u64> {
    if cur >= prev {
        return Some(cur - prev);
    }
    let (range_minus_1, half) = if prev <= u64::from(u32::MAX) {
        (u64::from(u32::MAX), 1u64 << 31)
    } else {
        (u64::MAX, 1u64 << 63)
    };
    // (range - prev) + cur, computed without overflowing.
    let delta = (range_minus_1 - prev).checked_add(cur)?.checked_add(1)?;
    (delta < half).then_some(delta)
}

/// Emits one interface's readings. `prev` is its previous sample, if any.
pub fn emit_nic(
    name: &str,
    prev: Option<(Instant, &NicCounters)>,
    now: Instant,
    cur: &NicCounters,
    link: &Link,
    out: &mut dyn Emit,
) {
    let resource = format!("nic/{name}");
    let speed_bits = link.speed_bits;
    if let Some(speed) = speed_bits {
        out.emit(&resource, &NIC_SPEED, speed as f64);
    }
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    if let Some(c) = link.carrier {
        out.emit(&resource, &NIC_CARRIER, flag(c));
    }
    if let Some(up) = link.up {
        out.emit(&resource, &NIC_UP, flag(up));
    }
    if let Some(mtu) = link.mtu {
        out.emit(&resource, &NIC_MTU, mtu as f64);
    }
    let Some((then, before)) = prev else { return };
    let secs = now.saturating_duration_since(then).as_secs_f64();
    if secs <= 0.0 {
        return;
    }
    let mut rates = [None; 8];
    for (i, metric) in RATE_METRICS.iter().enumerate() {
        match counter_delta(before.0[i], cur.0[i]) {
            Some(d) => {
                let rate = d as f64 / secs;
                rates[i] = Some(rate);
                out.emit(&resource, metric, rate);
            }
            None => tracing::debug!(
                interface = name,
                metric = metric.name,
                "counter reset; rate skipped for this sample"
            ),
        }
    }
    if let (Some(speed), Some(rx), Some(tx)) = (speed_bits, rates[RX_BYTES], rates[TX_BYTES]) {
        if speed > 0 {
            let u = rx.max(tx) * 8.0 / speed as f64;
            out.emit(&resource, &NIC_UTILIZATION, u.min(1.0));
        }
    }
}

/// The NIC sensor.
#[derive(Debug)]
pub struct NicSensor {
    roots: Roots,
    net_dev: TextFile,
    /// Per interface: its counters last read, and its speed file.
    prev: HashMap<String, Interface>,
}

#[derive(Debug)]
struct Interface {
    at: Instant,
    counters: NicCounters,
    files: LinkFiles,
}

/// An interface's files under `/sys/class/net/IF`.
#[derive(Debug)]
struct LinkFiles {
    speed: TextFile,
    carrier: TextFile,
    operstate: TextFile,
    mtu: TextFile,
}

impl LinkFiles {
    fn new(dir: std::path::PathBuf) -> LinkFiles {
        LinkFiles {
            speed: TextFile::new(dir.join("speed")),
            carrier: TextFile::new(dir.join("carrier")),
            operstate: TextFile::new(dir.join("operstate")),
            mtu: TextFile::new(dir.join("mtu")),
        }
    }

    fn read(&mut self, name: &str) -> Link {
        fn known<T>(name: &str, what: &str, r: Result<T, SensorError>) -> Option<T> {
            r.map_err(|e| tracing::trace!(interface = name, error = %e, "{what} unknown"))
                .ok()
        }
        Link {
            // Missing, EINVAL (virtual devices, link down) and -1 all mean unknown.
            speed_bits: known(name, "link speed", self.speed.read().and_then(parse_speed))
                .flatten(),
            carrier: known(name, "carrier", self.carrier.read().and_then(parse_carrier)),
            up: known(
                name,
                "operstate",
                self.operstate.read().and_then(parse_operstate),
            ),
            mtu: known(
                name,
                "mtu",
                self.mtu.read().and_then(|t| parse_u64("mtu", t.trim())),
            ),
        }
    }
}

impl NicSensor {
    pub fn new(roots: Roots) -> Self {
        NicSensor {
            net_dev: TextFile::new(roots.proc.join("net/dev")),
            roots,
            prev: HashMap::new(),
        }
    }
}

impl Sensor for NicSensor {
    fn name(&self) -> &'static str {
        "nic"
    }

    fn sample(&mut self, now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let devices = match self.net_dev.read().and_then(parse_net_dev) {
            Ok(d) => d,
            Err(e) => {
                self.prev.clear();
                return Err(e);
            }
        };
        let mut next = HashMap::with_capacity(devices.len());
        for (name, cur) in devices {
            let (prev, mut files) = match self.prev.remove(&name) {
                Some(i) => (Some((i.at, i.counters)), i.files),
                None => (
                    None,
                    LinkFiles::new(self.roots.sys.join("class/net").join(&name)),
                ),
            };
            let link = files.read(&name);
            emit_nic(
                &name,
                prev.as_ref().map(|(at, c)| (*at, c)),
                now,
                &cur,
                &link,
                out,
            );
            next.insert(
                name,
                Interface {
                    at: now,
                    counters: cur,
                    files,
                },
            );
        }
        // Interfaces that vanished are forgotten here.
        self.prev = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;
    use std::time::Duration;

    const DEV_1: &str = include_str!("fixtures/net_dev_1.txt");
    const DEV_2: &str = include_str!("fixtures/net_dev_2.txt");

    fn line(name: &str, rx: u64, tx: u64) -> String {
        format!("{name:>6}: {rx:>8} 10 0 0 0 0 0 0 {tx:>8} 20 0 0 0 0 0 0\n")
    }

    fn dev(lines: &[String]) -> String {
        let mut s = String::from(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
        );
        s.extend(lines.iter().cloned());
        s
    }

    #[test]
    fn parses_real_net_dev() {
        let d = parse_net_dev(DEV_1).unwrap();
        let names: Vec<&str> = d.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        assert_eq!(
            d[3].1,
            NicCounters([67670857, 3999, 0, 0, 260165, 2882, 0, 0])
        );
    }

    #[test]
    fn counter_touching_the_colon() {
        let d = parse_net_dev("  eth0:123456789012 99 1 2 0 0 0 0 5 6 7 8 0 0 0 0\n").unwrap();
        assert_eq!(
            d,
            vec![(
                "eth0".to_owned(),
                NicCounters([123456789012, 99, 1, 2, 5, 6, 7, 8])
            )]
        );
    }

    #[test]
    fn real_rates() {
        let (a, b) = (parse_net_dev(DEV_1).unwrap(), parse_net_dev(DEV_2).unwrap());
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        let mut c = Collected::default();
        emit_nic(
            "eth0",
            Some((t0, &a[3].1)),
            t1,
            &b[3].1,
            &Link {
                speed_bits: Some(1_000_000_000),
                ..Link::default()
            },
            &mut c,
        );
        // 67671041 - 67670857 = 184 bytes in 2 s; tx 260349 - 260165 = 184
        assert_eq!(c.get("nic/eth0", &NIC_RX_BYTES), Some(92.0));
        assert_eq!(c.get("nic/eth0", &NIC_TX_BYTES), Some(92.0));
        assert_eq!(c.get("nic/eth0", &NIC_RX_PACKETS), Some(1.5));
        assert_eq!(c.get("nic/eth0", &NIC_TX_DROPS), Some(0.0));
        assert_eq!(c.get("nic/eth0", &NIC_SPEED), Some(1e9));
        assert_eq!(c.get("nic/eth0", &NIC_UTILIZATION), Some(92.0 * 8.0 / 1e9));
    }

    #[test]
    fn speed_file() {
        assert_eq!(parse_speed("1000\n").unwrap(), Some(1_000_000_000));
        assert_eq!(parse_speed("25000\n").unwrap(), Some(25_000_000_000));
        assert_eq!(parse_speed("-1\n").unwrap(), None);
        assert_eq!(parse_speed("0\n").unwrap(), None);
        assert_eq!(parse_speed("65535\n").unwrap(), None);
        assert_eq!(parse_speed("4294967295\n").unwrap(), None);
        assert!(parse_speed("").is_err());
        assert!(parse_speed("fast").is_err());
    }

    #[test]
    fn carrier_and_operstate_files() {
        assert!(parse_carrier("1\n").unwrap());
        assert!(!parse_carrier("0\n").unwrap());
        assert!(parse_carrier("yes\n").is_err());
        assert!(parse_operstate("up\n").unwrap());
        assert!(!parse_operstate("unknown\n").unwrap());
        assert!(!parse_operstate("dormant\n").unwrap());
        assert!(parse_operstate("\n").is_err());
    }

    #[test]
    fn wrap_and_reset() {
        let m32 = u64::from(u32::MAX);
        assert_eq!(counter_delta(5, 9), Some(4));
        assert_eq!(counter_delta(m32 - 9, 5), Some(15)); // 32-bit wrap
        assert_eq!(counter_delta(u64::MAX - 9, 5), Some(15)); // 64-bit wrap
        assert_eq!(counter_delta(1_000_000, 500), None); // reset of a small counter
        assert_eq!(counter_delta(m32 + 10, 5), None); // reset of a 64-bit counter
        assert_eq!(counter_delta(u64::MAX, 0), Some(1));
        assert_eq!(counter_delta(u64::MAX, u64::MAX - 1), None);
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        for bad in [
            "eth0 1 2 3\n",
            "eth0: 1 2 3\n",
            " : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
            "../x: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
            "eth0: 1 2 3 4 5 6 7 8 9 10 11 -12 13 14 15 16\n",
            "eth0: 1 2 3 4 5 6 7 8 9 10 11 x 13 14 15 16\n",
        ] {
            assert!(parse_net_dev(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_net_dev("").unwrap(), vec![]);
    }

    /// The whole sensor on a fixture tree: speeds from sysfs, a 32-bit wrap,
    /// a reset, an interface appearing and one vanishing.
    #[test]
    fn sensor_on_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: dir.path().join("proc"),
            sys: dir.path().join("sys"),
        };
        std::fs::create_dir_all(roots.proc.join("net")).unwrap();
        for (ifname, speed) in [
            ("eth0", Some("10000\n")),
            ("eth1", Some("-1\n")),
            ("wlan0", None),
        ] {
            let d = roots.sys.join("class/net").join(ifname);
            std::fs::create_dir_all(&d).unwrap();
            if let Some(s) = speed {
                std::fs::write(d.join("speed"), s).unwrap();
            }
        }
        let eth0 = roots.sys.join("class/net/eth0");
        std::fs::write(eth0.join("carrier"), "1\n").unwrap();
        std::fs::write(eth0.join("operstate"), "up\n").unwrap();
        std::fs::write(eth0.join("mtu"), "9000\n").unwrap();
        let eth1 = roots.sys.join("class/net/eth1");
        std::fs::write(eth1.join("operstate"), "lowerlayerdown\n").unwrap();
        let write =
            |lines: &[String]| std::fs::write(roots.proc.join("net/dev"), dev(lines)).unwrap();
        let m32 = u64::from(u32::MAX);
        let mut s = NicSensor::new(roots.clone());
        let t0 = Instant::now();

        write(&[
            line("lo", 100, 100),
            line("eth0", m32 - 999, 5000),
            line("eth1", 9_000_000, 1),
        ]);
        let mut c = Collected::default();
        s.sample(t0, &mut c).unwrap();
        assert_eq!(c.get("nic/eth0", &NIC_SPEED), Some(1e10));
        assert_eq!(
            c.get("nic/eth0", &NIC_RX_BYTES),
            None,
            "first sample has no rates"
        );
        assert_eq!(c.get("nic/eth1", &NIC_SPEED), None);
        assert_eq!(c.get("nic/eth0", &NIC_CARRIER), Some(1.0));
        assert_eq!(c.get("nic/eth0", &NIC_UP), Some(1.0));
        assert_eq!(c.get("nic/eth0", &NIC_MTU), Some(9000.0));
        // No carrier file (the kernel refuses the read while down): none.
        assert_eq!(c.get("nic/eth1", &NIC_CARRIER), None);
        assert_eq!(c.get("nic/eth1", &NIC_UP), Some(0.0));

        // eth0 rx wraps at 32 bits (+2000), eth1 rx was reset, wlan0 appears.
        write(&[
            line("lo", 300, 300),
            line("eth0", 1000, 7000),
            line("eth1", 50, 3),
            line("wlan0", 7, 7),
        ]);
        let mut c = Collected::default();
        s.sample(t0 + Duration::from_secs(2), &mut c).unwrap();
        assert_eq!(c.get("nic/lo", &NIC_RX_BYTES), Some(100.0));
        assert_eq!(c.get("nic/lo", &NIC_SPEED), None);
        assert_eq!(c.get("nic/eth0", &NIC_RX_BYTES), Some(1000.0));
        assert_eq!(c.get("nic/eth0", &NIC_TX_BYTES), Some(1000.0));
        assert_eq!(
            c.get("nic/eth0", &NIC_UTILIZATION),
            Some(1000.0 * 8.0 / 1e10)
        );
        assert_eq!(c.get("nic/eth1", &NIC_RX_BYTES), None, "reset");
        assert_eq!(c.get("nic/eth1", &NIC_TX_BYTES), Some(1.0));
        assert_eq!(c.get("nic/eth1", &NIC_UTILIZATION), None);
        assert_eq!(c.get("nic/wlan0", &NIC_RX_BYTES), None, "new interface");
        assert!(c.get("nic/wlan0", &NIC_RX_PACKETS).is_none());

        // eth1 vanishes, then comes back: it starts again without rates.
        write(&[
            line("lo", 300, 300),
            line("eth0", 1000, 7000),
            line("wlan0", 17, 7),
        ]);
        let mut c = Collected::default();
        s.sample(t0 + Duration::from_secs(3), &mut c).unwrap();
        assert!(c.0.iter().all(|(r, _, _)| r != "nic/eth1"));
        assert_eq!(c.get("nic/wlan0", &NIC_RX_BYTES), Some(10.0));
        assert_eq!(c.get("nic/eth0", &NIC_RX_BYTES), Some(0.0));
        write(&[line("eth1", 60, 3)]);
        let mut c = Collected::default();
        s.sample(t0 + Duration::from_secs(4), &mut c).unwrap();
        assert_eq!(c.get("nic/eth1", &NIC_RX_BYTES), None);

        // Same instant twice: no division by zero.
        let mut c = Collected::default();
        s.sample(t0 + Duration::from_secs(4), &mut c).unwrap();
        assert!(
            c.0.iter()
                .all(|(_, m, _)| !RATE_METRICS.iter().any(|r| r.name == *m)),
            "{:?}",
            c.0
        );
    }

    #[test]
    fn this_machine() {
        let mut s = NicSensor::new(Roots::default());
        let t0 = Instant::now();
        let mut c = Collected::default();
        s.sample(t0, &mut c).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        let rx = c.get("nic/lo", &NIC_RX_BYTES).expect("nic/lo present");
        assert!(rx >= 0.0 && rx.is_finite());
        for (r, m, v) in &c.0 {
            assert!(v.is_finite() && *v >= 0.0, "{r} {m} {v}");
            if *m == NIC_UTILIZATION.name {
                assert!(*v <= 1.0);
            }
        }
    }
}
