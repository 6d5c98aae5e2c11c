//! Application sensor: a loopback UDP endpoint (`127.0.0.1:<port>`, port 0
//! picks one) where applications push their own metrics, one or more
//! statsd-style gauge lines per datagram:
//!
//! ```text
//! app.requests_per_second:120|g|#resource:cgroup/web
//! app.latency.p95:0.082|g|#resource:cgroup/web,env:prod
//! ```
//!
//! Rules: the type must be `g` (gauge); the value is absolute, finite and
//! not signed (statsd's `+n`/`-n` gauge deltas are refused); the
//! `resource:` tag is required unless the sensor has a default resource;
//! other tags are ignored; no sample rate. Metric names must start with
//! `app.`, be at most 100 characters of `[a-z0-9._]` and be one of
//! [`ACCEPTED`] — readings carry registered (static) metrics, so an
//! application cannot invent series. Anything else is a malformed line:
//! counted ([`AppSensor::malformed`], and `app.malformed_lines` for
//! resource `agent`), never fatal.
//!
//! Each sample drains at most `max_datagrams` datagrams of at most
//! [`MAX_DATAGRAM`] bytes (a larger one counts as one malformed line) and
//! emits the latest value per `(resource, metric)` received since the
//! previous sample; nothing is repeated when an application goes quiet.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Instant;

use vcp_common::metric::Metric;
pub use vcp_common::metric::{
    APP_ERRORS_PER_SECOND, APP_LATENCY_P50, APP_LATENCY_P95, APP_LATENCY_P99, APP_MALFORMED_LINES,
    APP_QUEUE_DEPTH, APP_REQUESTS_PER_SECOND, APP_UTILIZATION,
};

use super::{Emit, Sensor, SensorError};

/// The metrics applications may push (`app.malformed_lines` is the
/// agent's own and is refused from applications).
pub const ACCEPTED: &[Metric] = &[
    APP_REQUESTS_PER_SECOND,
    APP_LATENCY_P50,
    APP_LATENCY_P95,
    APP_LATENCY_P99,
    APP_QUEUE_DEPTH,
    APP_ERRORS_PER_SECOND,
    APP_UTILIZATION,
];

/// Largest datagram accepted, in bytes.
pub const MAX_DATAGRAM: usize = 8 * 1024;
/// Datagrams drained per sample by default.
pub const DEFAULT_MAX_DATAGRAMS: usize = 1024;
/// Longest metric name.
pub const MAX_NAME: usize = 100;
/// Longest resource name.
pub const MAX_RESOURCE: usize = 200;
/// Distinct `(resource, metric)` pairs held between two samples; values
/// for further pairs are dropped and counted.
pub const MAX_SERIES: usize = 4096;

/// One accepted line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppSample<'a> {
    pub resource: &'a str,
    /// Index of the metric in [`ACCEPTED`].
    pub metric: usize,
    pub value: f64,
}

fn valid_resource(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= MAX_RESOURCE
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
}

/// Parses one non-empty line; the error says why it is malformed.
pub fn parse_line<'a>(
    line: &'a str,
    default_resource: Option<&'a str>,
) -> Result<AppSample<'a>, &'static str> {
    let (name, rest) = line.split_once(':').ok_or("no ':' after the name")?;
    if !name.starts_with("app.")
        || name.len() > MAX_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
    {
        return Err("name must be app.[a-z0-9._], at most 100 characters");
    }
    let metric = ACCEPTED
        .iter()
        .position(|m| m.name == name)
        .ok_or("not an accepted app metric")?;
    let mut parts = rest.split('|');
    let value = parts.next().unwrap_or("");
    if parts.next() != Some("g") {
        return Err("type must be g (gauge)");
    }
    let tags = match parts.next() {
        None => None,
        Some(t) => Some(
            t.strip_prefix('#')
                .ok_or("only a #tags section may follow |g")?,
        ),
    };
    if parts.next().is_some() {
        return Err("trailing sections");
    }
    if !value.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err("value must be an unsigned number");
    }
    let value: f64 = value.parse().map_err(|_| "value is not a number")?;
    if !value.is_finite() {
        return Err("value is not finite");
    }
    let mut resource = None;
    for tag in tags.into_iter().flat_map(|t| t.split(',')) {
        if let Some(r) = tag.strip_prefix("resource:") {
            if resource.replace(r).is_some() {
                return Err("resource tag given twice");
            }
        }
    }
    let resource = resource
        .or(default_resource)
        .ok_or("no resource tag and no default resource")?;
    if !valid_resource(resource) {
        return Err("resource must be 1..=200 of [A-Za-z0-9._:/-]");
    }
    Ok(AppSample {
        resource,
        metric,
        value,
    })
}

/// Parses a datagram's lines (blank lines are skipped), handing each good
/// sample to `f`; returns the number of malformed lines.
pub fn parse_datagram<'a>(
    text: &'a str,
    default_resource: Option<&'a str>,
    mut f: impl FnMut(AppSample<'a>),
) -> u64 {
    let mut malformed = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match parse_line(line, default_resource) {
            Ok(s) => f(s),
            Err(why) => {
                malformed += 1;
                tracing::trace!(line, reason = why, "app sensor: malformed line");
            }
        }
    }
    malformed
}

/// The application sensor.
#[derive(Debug)]
pub struct AppSensor {
    socket: UdpSocket,
    default_resource: Option<String>,
    max_datagrams: usize,
    buf: Vec<u8>,
    /// Latest value per `(resource, index in ACCEPTED)` since the last sample.
    pending: BTreeMap<(String, usize), f64>,
    malformed: u64,
    dropped: u64,
}

impl AppSensor {
    /// Binds `127.0.0.1:port` (0 picks a free port; see [`Self::local_addr`]).
    pub fn bind(port: u16, default_resource: Option<String>) -> io::Result<Self> {
        if let Some(r) = &default_resource {
            if !valid_resource(r) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("default resource {r:?} must be 1..=200 of [A-Za-z0-9._:/-]"),
                ));
            }
        }
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, port))?;
        socket.set_nonblocking(true)?;
        Ok(AppSensor {
            socket,
            default_resource,
            max_datagrams: DEFAULT_MAX_DATAGRAMS,
            buf: vec![0; MAX_DATAGRAM + 1],
            pending: BTreeMap::new(),
            malformed: 0,
            dropped: 0,
        })
    }

    /// Sets how many datagrams one sample drains (at least 1).
    pub fn with_max_datagrams(mut self, n: usize) -> Self {
        self.max_datagrams = n.max(1);
        self
    }

    /// The bound address, with the port actually chosen.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Malformed lines received since start.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Values dropped because more than [`MAX_SERIES`] series were pending.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn take(&mut self, n: usize) {
        if n > MAX_DATAGRAM {
            self.malformed += 1;
            return;
        }
        let Ok(text) = std::str::from_utf8(&self.buf[..n]) else {
            self.malformed += 1;
            return;
        };
        let (pending, dropped) = (&mut self.pending, &mut self.dropped);
        self.malformed += parse_datagram(text, self.default_resource.as_deref(), |s| {
            let key = (s.resource.to_owned(), s.metric);
            if pending.len() < MAX_SERIES || pending.contains_key(&key) {
                pending.insert(key, s.value);
            } else {
                *dropped += 1;
            }
        });
    }
}

impl Sensor for AppSensor {
    fn name(&self) -> &'static str {
        "app"
    }

    fn sample(&mut self, _now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        let mut failure = None;
        for _ in 0..self.max_datagrams {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, _)) => self.take(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        for ((resource, metric), value) in std::mem::take(&mut self.pending) {
            out.emit(&resource, &ACCEPTED[metric], value);
        }
        out.emit("agent", &APP_MALFORMED_LINES, self.malformed as f64);
        match failure {
            None => Ok(()),
            Some(source) => Err(SensorError::Io {
                path: PathBuf::from(match self.socket.local_addr() {
                    Ok(a) => format!("udp:{a}"),
                    Err(_) => "udp".into(),
                }),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;
    use std::time::Duration;

    fn parse_all(text: &str, default: Option<&str>) -> (Vec<(String, &'static str, f64)>, u64) {
        let mut got = Vec::new();
        let bad = parse_datagram(text, default, |s| {
            got.push((s.resource.to_owned(), ACCEPTED[s.metric].name, s.value))
        });
        (got, bad)
    }

    #[test]
    fn good_lines() {
        let (got, bad) = parse_all(
            include_str!("fixtures/app_good.txt"),
            Some("cgroup/default"),
        );
        assert_eq!(bad, 0);
        let web = |m: &'static str, v| ("cgroup/web".to_owned(), m, v);
        assert_eq!(
            got,
            vec![
                web("app.requests_per_second", 120.0),
                web("app.latency.p50", 0.012),
                web("app.latency.p95", 0.082),
                web("app.latency.p99", 0.25),
                web("app.queue_depth", 7.0),
                web("app.errors_per_second", 0.5),
                (
                    "cgroup/vcp.slice/api".into(),
                    "app.requests_per_second",
                    35.5
                ),
                (
                    "cgroup/vcp.slice/api".into(),
                    "app.requests_per_second",
                    40.0
                ),
                ("cgroup/default".into(), "app.queue_depth", 0.0),
            ]
        );
        // Without a default resource the untagged line is malformed.
        let (got, bad) = parse_all(include_str!("fixtures/app_good.txt"), None);
        assert_eq!((got.len(), bad), (8, 1));
    }

    #[test]
    fn malformed_lines_are_counted() {
        let text = include_str!("fixtures/app_malformed.txt");
        let (got, bad) = parse_all(text, Some("cgroup/default"));
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(bad, text.lines().count() as u64);
        let long = format!("app.{}:1|g", "a".repeat(97));
        assert!(parse_line(&long, Some("r")).is_err());
        let long_res = format!("app.queue_depth:1|g|#resource:{}", "r".repeat(201));
        assert!(parse_line(&long_res, None).is_err());
    }

    #[test]
    fn mixed_datagram() {
        let (got, bad) = parse_all(include_str!("fixtures/app_mixed.txt"), None);
        assert_eq!(bad, 2);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ("cgroup/web".into(), "app.latency.p95", 0.09));
    }

    #[test]
    fn bad_default_resource_is_refused() {
        assert!(AppSensor::bind(0, Some("a b".into())).is_err());
    }

    /// Samples until `want` readings arrived (loopback UDP is immediate in
    /// practice; the loop only guards against a slow scheduler).
    fn sample_until(s: &mut AppSensor, want: usize) -> Collected {
        let mut all = Collected::default();
        let give_up = Instant::now() + Duration::from_secs(5);
        while all.0.iter().filter(|r| r.0 != "agent").count() < want && Instant::now() < give_up {
            let mut c = Collected::default();
            s.sample(Instant::now(), &mut c).unwrap();
            all.0.extend(c.0);
            std::thread::sleep(Duration::from_millis(5));
        }
        all
    }

    #[test]
    fn loopback_endpoint() {
        let mut s = AppSensor::bind(0, None).unwrap().with_max_datagrams(3);
        let addr = s.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let send = |d: &[u8]| tx.send_to(d, addr).unwrap();
        send(b"app.requests_per_second:100|g|#resource:cgroup/web\napp.queue_depth:3|g|#resource:cgroup/web\n");
        send(b"app.requests_per_second:120|g|#resource:cgroup/web\nbogus line\n");
        send(&[0xff, 0xfe, b'\n']);
        send(&vec![b'a'; MAX_DATAGRAM + 1]);
        send(b"app.latency.p95:0.082|g|#resource:cgroup/web\n");

        // At most 3 datagrams per sample: the latest rate wins.
        let c = sample_until(&mut s, 2);
        assert_eq!(c.get("cgroup/web", &APP_REQUESTS_PER_SECOND), Some(120.0));
        assert_eq!(c.get("cgroup/web", &APP_QUEUE_DEPTH), Some(3.0));
        assert_eq!(c.get("cgroup/web", &APP_LATENCY_P95), None);
        assert_eq!(c.get("agent", &APP_MALFORMED_LINES), Some(2.0));

        let c = sample_until(&mut s, 1);
        assert_eq!(c.get("cgroup/web", &APP_LATENCY_P95), Some(0.082));
        assert_eq!(
            c.get("cgroup/web", &APP_REQUESTS_PER_SECOND),
            None,
            "not repeated"
        );
        assert_eq!(s.malformed(), 3);
        assert_eq!(s.dropped(), 0);

        // A quiet endpoint still reports the cumulative malformed count.
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        assert_eq!(
            c.0,
            vec![("agent".to_owned(), APP_MALFORMED_LINES.name, 3.0)]
        );
    }
}
