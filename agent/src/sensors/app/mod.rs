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

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Instant;

use vcp_common::metric::Metric;
pub use vcp_common::metric::{
    APP_ERRORS_PER_SECOND, APP_LATENCY_P50, APP_LATENCY_P95, APP_LATENCY_P99, APP_MALFORMED_LINES,
    APP_QUEUE_DEPTH, APP_REQUESTS_PER_SECOND, APP_UNLISTED_LINES, APP_UTILIZATION,
};

use super::{Emit, Sensor, SensorError};

mod allowed;
mod parse;
#[cfg(test)]
mod tests;

pub use allowed::AllowedResources;
pub use parse::{check_resource, parse_datagram, parse_line, AppSample};

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
