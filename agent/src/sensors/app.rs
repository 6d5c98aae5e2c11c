//! Application sensor: a loopback UDP endpoint (`127.0.0.1:<port>`, port 0
//! picks one) where applications push their own metrics, one or more
//! statsd-style gauge lines per datagram:
//!
//! ```text
//! app.requests_per_second:120|g|#resource:cgroup/web
//! app.latency.p95:0.082|g|#resource:cgroup/web,env:prod
//! ```
//!
//! Line rules: the type must be `g` (gauge); the value is absolute, finite
//! and not signed (statsd's `+n`/`-n` gauge deltas are refused); the
//! `resource:` tag is required unless the sensor has a default resource;
//! other tags are ignored; no sample rate. Metric names must start with
//! `app.`, be at most 100 characters of `[a-z0-9._]` and be one of
//! [`ACCEPTED`] — readings carry registered (static) metrics, so an
//! application cannot invent metrics. The resource must be a valid resource
//! id ([`vcp_common::resource::validate`]: no empty, `.` or `..` segment)
//! of at most [`MAX_RESOURCE`] bytes. Anything else is a malformed line:
//! counted ([`AppSensor::malformed`], and `app.malformed_lines` for
//! resource `agent`), never fatal.
//!
//! Any local process can send to the endpoint, so what it may make the
//! agent report is bounded by the agent's configuration, never by the
//! senders:
//!
//! - **Allowed resources.** A well-formed line is accepted only for a
//!   resource of [`AllowedResources`]: those listed in `app_resources`, the
//!   `app_default_resource`, `cgroup/<g>` for every group `g` in `cgroups`,
//!   and `cgroup/<slice>/<child>` for a direct child (exactly one more
//!   segment) of `cgroup_slice`. A line naming any other resource is
//!   refused and counted ([`AppSensor::unlisted`], and `app.unlisted_lines`
//!   for resource `agent`).
//! - **Series cap.** The endpoint emits at most `app_max_series` (default
//!   [`DEFAULT_MAX_SERIES`]) distinct `(resource, metric)` series over the
//!   agent's life, plus its own two counters for `agent`. The first values
//!   of a series claim a slot; values of a new series once the cap is
//!   reached are dropped and counted ([`AppSensor::dropped`]) and that
//!   series is never emitted. Series that already hold a slot keep working.
//!   The agent's series table (and the supervisor's per-connection series
//!   limit) therefore cannot be exhausted through this endpoint.
//!
//! Each sample drains at most `max_datagrams` datagrams of at most
//! [`MAX_DATAGRAM`] bytes (a larger one counts as one malformed line) and
//! emits the latest value per `(resource, metric)` received since the
//! previous sample; nothing is repeated when an application goes quiet.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Instant;

use vcp_common::metric::{Metric, Unit};
pub use vcp_common::metric::{
    APP_ERRORS_PER_SECOND, APP_LATENCY_P50, APP_LATENCY_P95, APP_LATENCY_P99, APP_MALFORMED_LINES,
    APP_QUEUE_DEPTH, APP_REQUESTS_PER_SECOND, APP_UTILIZATION,
};
use vcp_common::resource;

use super::{Emit, Sensor, SensorError};

/// Well-formed lines the endpoint refused because their resource is not
/// allowed (cumulative); resource `agent`. Declared like
/// [`APP_MALFORMED_LINES`]; readings carry their quantum, so the metric
/// needs no entry in the shared registry.
pub const APP_UNLISTED_LINES: Metric = Metric {
    name: "app.unlisted_lines",
    unit: Unit::Count,
    exp: 0,
    help: "lines the agent's application endpoint refused because their resource is not allowed (cumulative); resource `agent`",
};

/// The metrics applications may push (`app.malformed_lines` and
/// `app.unlisted_lines` are the agent's own and are refused from
/// applications).
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
/// Default of `app_max_series`: distinct `(resource, metric)` series the
/// endpoint emits over the agent's life.
pub const DEFAULT_MAX_SERIES: usize = 256;
/// Largest `app_max_series` a configuration may set.
pub const MAX_MAX_SERIES: usize = 4096;

/// One accepted line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppSample<'a> {
    pub resource: &'a str,
    /// Index of the metric in [`ACCEPTED`].
    pub metric: usize,
    pub value: f64,
}

/// Checks a resource named by a line or by the configuration: a valid
/// resource id of at most [`MAX_RESOURCE`] bytes.
pub fn check_resource(r: &str) -> Result<(), String> {
    if r.len() > MAX_RESOURCE {
        return Err(format!(
            "resource {:?}… is longer than {MAX_RESOURCE} bytes",
            r.chars().take(64).collect::<String>()
        ));
    }
    resource::validate(r).map_err(|e| e.to_string())
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
    if check_resource(resource).is_err() {
        return Err("resource must be a valid resource id of at most 200 bytes");
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

/// The resources application lines may name (see the module docs); built
/// from the agent's configuration by
/// [`VirtualSensors::app_allowed`](super::VirtualSensors::app_allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedResources {
    exact: BTreeSet<String>,
    /// `cgroup/<slice>`, whose direct children are allowed.
    slice: Option<String>,
}

impl AllowedResources {
    /// Allows `r` itself; an invalid resource is refused with the reason.
    pub fn insert(&mut self, r: &str) -> Result<(), String> {
        check_resource(r)?;
        self.exact.insert(r.to_owned());
        Ok(())
    }

    /// Allows `cgroup/<group>`, the resource the cgroup sensor reports for
    /// `group`.
    pub fn insert_cgroup(&mut self, group: &str) -> Result<(), String> {
        self.insert(&format!("cgroup/{group}"))
    }

    /// Allows `cgroup/<slice>/<child>` for every single-segment `child`.
    pub fn set_cgroup_slice(&mut self, slice: &str) -> Result<(), String> {
        let r = format!("cgroup/{slice}");
        check_resource(&r)?;
        self.slice = Some(r);
        Ok(())
    }

    /// Whether lines may name `r`.
    pub fn allows(&self, r: &str) -> bool {
        if self.exact.contains(r) {
            return true;
        }
        self.slice.as_deref().is_some_and(|slice| {
            r.strip_prefix(slice)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|child| !child.is_empty() && !child.contains('/'))
                && check_resource(r).is_ok()
        })
    }
}

/// The application sensor.
#[derive(Debug)]
pub struct AppSensor {
    socket: UdpSocket,
    default_resource: Option<String>,
    allowed: AllowedResources,
    max_series: usize,
    max_datagrams: usize,
    buf: Vec<u8>,
    /// Every series that ever got a slot: at most `max_series`.
    series: HashSet<(String, usize)>,
    /// Latest value per `(resource, index in ACCEPTED)` since the last
    /// sample; its keys are in `series`.
    pending: BTreeMap<(String, usize), f64>,
    malformed: u64,
    unlisted: u64,
    dropped: u64,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl AppSensor {
    /// Binds `127.0.0.1:port` (0 picks a free port; see [`Self::local_addr`]).
    /// Lines may name the resources of `allowed` and `default_resource`;
    /// at most `max_series` (at most [`MAX_MAX_SERIES`]) series are emitted
    /// over the sensor's life.
    pub fn bind(
        port: u16,
        default_resource: Option<String>,
        mut allowed: AllowedResources,
        max_series: usize,
    ) -> io::Result<Self> {
        if let Some(r) = &default_resource {
            allowed
                .insert(r)
                .map_err(|e| invalid(format!("default resource: {e}")))?;
        }
        if max_series > MAX_MAX_SERIES {
            return Err(invalid(format!(
                "app_max_series = {max_series} is above {MAX_MAX_SERIES}"
            )));
        }
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, port))?;
        socket.set_nonblocking(true)?;
        Ok(AppSensor {
            socket,
            default_resource,
            allowed,
            max_series,
            max_datagrams: DEFAULT_MAX_DATAGRAMS,
            buf: vec![0; MAX_DATAGRAM + 1],
            series: HashSet::new(),
            pending: BTreeMap::new(),
            malformed: 0,
            unlisted: 0,
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

    /// Well-formed lines refused since start because their resource is not
    /// allowed.
    pub fn unlisted(&self) -> u64 {
        self.unlisted
    }

    /// Values dropped since start because their series would have exceeded
    /// the series cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Distinct series that hold a slot (emitted or pending).
    pub fn series(&self) -> usize {
        self.series.len()
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
        let (allowed, series, pending) = (&self.allowed, &mut self.series, &mut self.pending);
        let (unlisted, dropped, max) = (&mut self.unlisted, &mut self.dropped, self.max_series);
        self.malformed += parse_datagram(text, self.default_resource.as_deref(), |s| {
            if !allowed.allows(s.resource) {
                *unlisted += 1;
                if *unlisted == 1 {
                    tracing::warn!(
                        resource = s.resource,
                        "app sensor: line for a resource the configuration does not list refused (further ones are only counted)"
                    );
                }
                return;
            }
            let key = (s.resource.to_owned(), s.metric);
            if !series.contains(&key) {
                if series.len() >= max {
                    *dropped += 1;
                    if *dropped == 1 {
                        tracing::warn!(
                            max,
                            resource = s.resource,
                            metric = ACCEPTED[s.metric].name,
                            "app sensor: series cap reached; values of new series are dropped (further ones are only counted)"
                        );
                    }
                    return;
                }
                series.insert(key.clone());
            }
            pending.insert(key, s.value);
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
        out.emit("agent", &APP_UNLISTED_LINES, self.unlisted as f64);
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
    use crate::sensors::{Collected, VirtualSensors};
    use std::time::Duration;

    fn parse_all(text: &str, default: Option<&str>) -> (Vec<(String, &'static str, f64)>, u64) {
        let mut got = Vec::new();
        let bad = parse_datagram(text, default, |s| {
            got.push((s.resource.to_owned(), ACCEPTED[s.metric].name, s.value))
        });
        (got, bad)
    }

    fn allow(resources: &[&str]) -> AllowedResources {
        let mut a = AllowedResources::default();
        for r in resources {
            a.insert(r).unwrap();
        }
        a
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
        let long_res = format!("app.queue_depth:1|g|#resource:{}", "r/".repeat(100) + "r");
        assert!(parse_line(&long_res, None).is_err());
    }

    #[test]
    fn invalid_resource_ids_are_malformed() {
        let text = include_str!("fixtures/app_bad_resources.txt");
        let (got, bad) = parse_all(text, None);
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(bad, text.lines().count() as u64);
        // Characters the resource-id rules allow are accepted.
        let s = parse_line(
            "app.queue_depth:1|g|#resource:cgroup/user@1000.service",
            None,
        );
        assert_eq!(s.unwrap().resource, "cgroup/user@1000.service");
    }

    #[test]
    fn mixed_datagram() {
        let (got, bad) = parse_all(include_str!("fixtures/app_mixed.txt"), None);
        assert_eq!(bad, 2);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ("cgroup/web".into(), "app.latency.p95", 0.09));
    }

    #[test]
    fn bad_bind_arguments_are_refused() {
        for bad in ["a b", "..", "cgroup/web/..", "cgroup//web"] {
            let e =
                AppSensor::bind(0, Some(bad.into()), allow(&[]), DEFAULT_MAX_SERIES).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(AppSensor::bind(0, None, allow(&[]), MAX_MAX_SERIES + 1).is_err());
        let mut a = AllowedResources::default();
        assert!(a.insert("app/../x").is_err());
        assert!(a.set_cgroup_slice("a//b").is_err());
    }

    #[test]
    fn allowed_resources_by_segments() {
        let mut a = allow(&["app/web"]);
        a.insert_cgroup("system.slice/api.service").unwrap();
        a.set_cgroup_slice("vcp.slice").unwrap();
        for ok in [
            "app/web",
            "cgroup/system.slice/api.service",
            "cgroup/vcp.slice/db",
            "cgroup/vcp.slice/db.service",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for no in [
            "app/web/x",
            "app/webx",
            "app",
            "cgroup/system.slice",
            "cgroup/system.slice/api.service/x",
            "cgroup/vcp.slice",
            "cgroup/vcp.slice/",
            "cgroup/vcp.slice/db/worker",
            "cgroup/vcp.slice/..",
            "cgroup/vcp.slice/.",
            "cgroup/vcp.slicex/db",
            "cgroup/vcp.slice/d b",
        ] {
            assert!(!a.allows(no), "{no}");
        }
    }

    /// Samples until `want` application readings arrived (loopback UDP is
    /// immediate in practice; the loop only guards against a slow
    /// scheduler).
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

    /// Samples until the endpoint has accounted for `lines` lines
    /// (accepted, malformed, unlisted or dropped).
    fn sample_lines(s: &mut AppSensor, accepted: &mut u64, lines: u64) -> Collected {
        let mut all = Collected::default();
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = Collected::default();
            s.sample(Instant::now(), &mut c).unwrap();
            *accepted += c.0.iter().filter(|r| r.0 != "agent").count() as u64;
            all.0.extend(c.0);
            if *accepted + s.malformed() + s.unlisted() + s.dropped() >= lines
                || Instant::now() >= give_up
            {
                return all;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn sender(s: &AppSensor) -> impl Fn(&[u8]) {
        let addr = s.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        move |d: &[u8]| {
            tx.send_to(d, addr).unwrap();
        }
    }

    #[test]
    fn loopback_endpoint() {
        let mut s = AppSensor::bind(0, None, allow(&["cgroup/web"]), DEFAULT_MAX_SERIES)
            .unwrap()
            .with_max_datagrams(3);
        let send = sender(&s);
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
        assert_eq!((s.unlisted(), s.dropped(), s.series()), (0, 0, 3));

        // A quiet endpoint still reports its cumulative counters.
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        assert_eq!(
            c.0,
            vec![
                ("agent".to_owned(), APP_MALFORMED_LINES.name, 3.0),
                ("agent".to_owned(), APP_UNLISTED_LINES.name, 0.0),
            ]
        );
    }

    /// The endpoint of an agent configured like the example in the docs.
    fn configured(max_series: usize) -> AppSensor {
        let cfg = VirtualSensors {
            cgroups: vec!["system.slice/api.service".into()],
            cgroup_slice: Some("vcp.slice".into()),
            app_resources: vec!["app/web".into()],
            app_default_resource: Some("app/default".into()),
            app_max_series: max_series,
            ..VirtualSensors::default()
        };
        AppSensor::bind(
            0,
            cfg.app_default_resource.clone(),
            cfg.app_allowed().unwrap(),
            cfg.app_max_series,
        )
        .unwrap()
    }

    #[test]
    fn unlisted_resources_are_refused_and_counted() {
        let mut s = configured(DEFAULT_MAX_SERIES);
        let send = sender(&s);
        send(
            b"app.queue_depth:1|g|#resource:app/web\n\
              app.queue_depth:2|g|#resource:cgroup/system.slice/api.service\n\
              app.queue_depth:3|g|#resource:cgroup/vcp.slice/db.service\n\
              app.queue_depth:4|g\n",
        );
        send(
            b"app.queue_depth:5|g|#resource:app/other\n\
              app.queue_depth:6|g|#resource:cgroup/web\n\
              app.queue_depth:7|g|#resource:cgroup/vcp.slice\n\
              app.queue_depth:8|g|#resource:cgroup/vcp.slice/db.service/worker\n\
              app.queue_depth:9|g|#resource:cgroup/system.slice/other.service\n\
              app.queue_depth:10|g|#resource:agent\n",
        );
        send(
            b"app.queue_depth:11|g|#resource:cgroup/vcp.slice/..\n\
              app.queue_depth:12|g|#resource:app/web/..\n\
              app.queue_depth:13|g|#resource:..\n",
        );
        let mut accepted = 0;
        let c = sample_lines(&mut s, &mut accepted, 13);
        let apps: Vec<_> = c.0.iter().filter(|r| r.0 != "agent").cloned().collect();
        assert_eq!(
            apps,
            vec![
                ("app/default".into(), APP_QUEUE_DEPTH.name, 4.0),
                ("app/web".into(), APP_QUEUE_DEPTH.name, 1.0),
                (
                    "cgroup/system.slice/api.service".into(),
                    APP_QUEUE_DEPTH.name,
                    2.0
                ),
                (
                    "cgroup/vcp.slice/db.service".into(),
                    APP_QUEUE_DEPTH.name,
                    3.0
                ),
            ]
        );
        assert_eq!((s.unlisted(), s.malformed(), s.dropped()), (6, 3, 0));
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        assert_eq!(c.get("agent", &APP_UNLISTED_LINES), Some(6.0));
        assert_eq!(c.get("agent", &APP_MALFORMED_LINES), Some(3.0));
    }

    #[test]
    fn a_flood_of_made_up_resources_stays_within_the_cap() {
        const FLOOD: usize = 10_000;
        let mut s = configured(DEFAULT_MAX_SERIES);
        let send = sender(&s);
        let mut accepted = 0;
        let mut lines = 0;
        let mut all = Collected::default();

        // A listed series claims its slot before the flood.
        send(b"app.latency.p95:0.05|g|#resource:app/web\n");
        lines += 1;
        all.0.extend(sample_lines(&mut s, &mut accepted, lines).0);

        // Made-up resources of both kinds: allowed (any direct child of the
        // slice) and unlisted; a few datagrams at a time so the socket
        // buffer never overflows.
        let mut datagrams = Vec::new();
        let mut d = String::new();
        for i in 0..FLOOD {
            for r in [
                format!("cgroup/vcp.slice/flood-{i}"),
                format!("app/made-up-{i}"),
            ] {
                let line = format!("app.queue_depth:{i}|g|#resource:{r}\n");
                if d.len() + line.len() > MAX_DATAGRAM {
                    datagrams.push(std::mem::take(&mut d));
                }
                d.push_str(&line);
            }
        }
        datagrams.push(d);
        for chunk in datagrams.chunks(4) {
            for d in chunk {
                send(d.as_bytes());
                lines += d.lines().count() as u64;
            }
            all.0.extend(sample_lines(&mut s, &mut accepted, lines).0);
        }
        assert_eq!(lines, 1 + 2 * FLOOD as u64);
        assert_eq!(s.malformed(), 0);
        assert_eq!(s.unlisted(), FLOOD as u64, "every unlisted line refused");
        assert_eq!(s.dropped(), (FLOOD - (DEFAULT_MAX_SERIES - 1)) as u64);
        assert_eq!(s.series(), DEFAULT_MAX_SERIES);

        // Series already emitted keep working; new ones stay out.
        send(
            b"app.latency.p95:0.06|g|#resource:app/web\n\
              app.queue_depth:1|g|#resource:cgroup/vcp.slice/flood-0\n\
              app.queue_depth:1|g|#resource:cgroup/vcp.slice/late\n\
              app.latency.p95:1|g|#resource:cgroup/vcp.slice/flood-0\n",
        );
        lines += 4;
        let c = sample_lines(&mut s, &mut accepted, lines);
        assert_eq!(c.get("app/web", &APP_LATENCY_P95), Some(0.06));
        assert_eq!(
            c.get("cgroup/vcp.slice/flood-0", &APP_QUEUE_DEPTH),
            Some(1.0)
        );
        assert_eq!(c.get("cgroup/vcp.slice/late", &APP_QUEUE_DEPTH), None);
        assert_eq!(c.get("cgroup/vcp.slice/flood-0", &APP_LATENCY_P95), None);
        assert_eq!(s.dropped(), (FLOOD - (DEFAULT_MAX_SERIES - 1)) as u64 + 2);
        all.0.extend(c.0);

        let series: HashSet<(&str, &str)> = all
            .0
            .iter()
            .filter(|r| r.0 != "agent")
            .map(|r| (r.0.as_str(), r.1))
            .collect();
        assert_eq!(series.len(), DEFAULT_MAX_SERIES);
        assert!(
            series
                .iter()
                .all(|(r, _)| *r == "app/web" || r.starts_with("cgroup/vcp.slice/flood-")),
            "an unlisted resource was emitted"
        );
        let last_unlisted = all
            .0
            .iter()
            .rev()
            .find(|r| r.0 == "agent" && r.1 == APP_UNLISTED_LINES.name)
            .map(|r| r.2);
        assert_eq!(last_unlisted, Some(FLOOD as f64));
    }

    #[test]
    fn a_small_cap_is_kept() {
        let mut s = configured(2);
        let send = sender(&s);
        send(
            b"app.queue_depth:1|g|#resource:app/web\n\
              app.latency.p95:1|g|#resource:app/web\n\
              app.utilization:1|g|#resource:app/web\n",
        );
        let mut accepted = 0;
        let c = sample_lines(&mut s, &mut accepted, 3);
        assert_eq!(c.get("app/web", &APP_QUEUE_DEPTH), Some(1.0));
        assert_eq!(c.get("app/web", &APP_LATENCY_P95), Some(1.0));
        assert_eq!(c.get("app/web", &APP_UTILIZATION), None);
        assert_eq!((s.series(), s.dropped()), (2, 1));
        send(b"app.queue_depth:2|g|#resource:app/web\napp.utilization:2|g|#resource:app/web\n");
        let c = sample_lines(&mut s, &mut accepted, 5);
        assert_eq!(c.get("app/web", &APP_QUEUE_DEPTH), Some(2.0));
        assert_eq!(c.get("app/web", &APP_UTILIZATION), None);
        assert_eq!((s.series(), s.dropped()), (2, 2));
    }
}
