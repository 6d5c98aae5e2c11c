//! `[limits]`: every resource a peer can make the supervisor hold, as a
//! named limit with a default. Agents and modules are bounded per session
//! (see `vcp_common::session`); the endpoint is bounded as a whole.
//!
//! ```toml
//! [limits]
//! max_connections = 20000      # live connections, agents and modules
//! max_handshakes = 256         # handshakes in progress; more are refused
//! retry_above = 64             # past this many, unvalidated addresses must retry
//! handshake_timeout_ms = 10000
//! max_incoming = 1024          # connection attempts queued before accept
//!
//! [limits.agent]
//! max_frame = 1048576          # bytes; also the QUIC receive windows
//! max_series = 16384           # series one connection may define
//! max_batch_bytes = 4194304    # one batch, decompressed
//! max_readings = 1000000       # readings in one batch
//! readings_per_second = 100000 # sustained; past it the agent is read slower
//! readings_burst = 1000000
//! frames_per_second = 1000     # frames other than batches; past it, closed
//! hello_timeout_ms = 5000      # from the handshake to the Hello
//! max_skip_batches = 10000000  # largest gap one Hello or Dropped may declare
//!
//! [limits.module]
//! max_frame = 1048576
//! frames_per_second = 100
//! register_timeout_ms = 5000
//!
//! [limits.api]
//! max_connections = 1024        # open HTTP connections; more wait in the backlog
//! header_read_timeout_ms = 10000 # a request's headers arrive within this, or closed
//! request_timeout_ms = 30000    # a request answered within this, or 408
//! max_in_flight = 256           # requests handled at once; more get 503 at once
//! per_token_in_flight = 32      # one token's requests at once; more get 429
//! per_token_rate = 100          # one token's requests a second; past it, 429
//! per_token_burst = 200
//! worker_threads = 2            # the API's own threads, apart from the rounds'
//! blocking_threads = 4          # its threads for database reads
//! nice = 10                     # its threads' lower CPU priority (0-19)
//!
//! [limits.enrol]                # only with --enrol-ca-key
//! max_in_flight = 64            # enrolments and renewals at once; more are closed at once
//! request_timeout_ms = 10000    # from the handshake to the answer, or closed
//! per_source_per_minute = 30    # attempts without a certificate per address (IPv6 /64)
//! per_source_burst = 10
//! max_sources = 10000           # addresses followed for that at once
//! ```

use std::time::Duration;

use serde::Deserialize;
use vcp_common::codec;
use vcp_common::session::agent::AgentLimits;
use vcp_common::session::module::ModuleSessionLimits;

/// The endpoint's limits and each session's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_connections: usize,
    pub max_handshakes: usize,
    pub retry_above: usize,
    pub handshake_timeout_ms: u64,
    pub max_incoming: usize,
    pub agent: AgentConfig,
    pub module: ModuleConfig,
    pub api: HttpLimits,
    pub enrol: EnrolLimits,
}

/// What clients without a certificate may make enrolment hold (on only
/// with `--enrol-ca-key`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrolLimits {
    /// Enrolments and renewals served at once; past them a client is
    /// closed with `LIMIT` at once.
    pub max_in_flight: usize,
    /// From the handshake to the answer, or the connection is closed.
    pub request_timeout_ms: u64,
    /// Enrolment attempts without a certificate one address (an IPv6
    /// /64) may make a minute, after a burst of `per_source_burst`; past
    /// them it is closed with `LIMIT` (counted in
    /// `vcp_endpoint_refused_total{reason="enrol_source"}`).
    pub per_source_per_minute: f64,
    pub per_source_burst: f64,
    /// Addresses followed at once for that; past them, new ones are
    /// refused until some have been quiet for a while.
    pub max_sources: usize,
}

impl Default for EnrolLimits {
    fn default() -> Self {
        EnrolLimits {
            max_in_flight: 64,
            request_timeout_ms: 10_000,
            per_source_per_minute: 30.0,
            per_source_burst: 10.0,
            max_sources: 10_000,
        }
    }
}

impl EnrolLimits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            max_handshakes: 256,
            retry_above: 64,
            handshake_timeout_ms: 10_000,
            max_incoming: 1024,
            agent: AgentConfig::default(),
            module: ModuleConfig::default(),
            api: HttpLimits::default(),
            enrol: EnrolLimits::default(),
        }
    }
}

/// What HTTP clients may make the API server hold: connections, the time
/// a request may take to arrive and to be answered, requests at once, and
/// the threads the API runs on (its own, apart from the rounds', at a
/// lower CPU priority).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_read_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_in_flight: usize,
    pub per_token_in_flight: usize,
    pub per_token_rate: f64,
    pub per_token_burst: f64,
    /// Threads serving requests.
    pub worker_threads: usize,
    /// Threads for the API's database reads (statements, audit…).
    pub blocking_threads: usize,
    /// How much nicer than the supervisor's other threads the API's are
    /// (0–19): under contention for the CPU the rounds go first.
    pub nice: i32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_in_flight: 256,
            per_token_in_flight: 32,
            per_token_rate: 100.0,
            per_token_burst: 200.0,
            worker_threads: 2,
            blocking_threads: 4,
            nice: 10,
        }
    }
}

impl HttpLimits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub max_frame: usize,
    pub max_series: usize,
    pub max_batch_bytes: usize,
    pub max_readings: usize,
    pub readings_per_second: f64,
    pub readings_burst: f64,
    pub frames_per_second: f64,
    pub hello_timeout_ms: u64,
    pub max_skip_batches: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        let s = AgentLimits::default();
        AgentConfig {
            max_frame: s.max_frame,
            max_series: s.batch.max_series,
            max_batch_bytes: s.batch.max_batch_bytes,
            max_readings: s.batch.max_readings,
            readings_per_second: s.readings_per_second,
            readings_burst: s.readings_burst,
            frames_per_second: s.frames_per_second,
            hello_timeout_ms: s.hello_timeout.as_millis() as u64,
            max_skip_batches: s.max_skip_batches,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModuleConfig {
    pub max_frame: usize,
    pub frames_per_second: f64,
    pub register_timeout_ms: u64,
}

impl Default for ModuleConfig {
    fn default() -> Self {
        let s = ModuleSessionLimits::default();
        ModuleConfig {
            max_frame: s.max_frame,
            frames_per_second: s.frames_per_second,
            register_timeout_ms: s.register_timeout.as_millis() as u64,
        }
    }
}

impl Limits {
    /// What one agent session may hold or do.
    pub fn agent_session(&self) -> AgentLimits {
        let a = &self.agent;
        AgentLimits {
            max_frame: a.max_frame,
            batch: codec::Limits {
                max_batch_bytes: a.max_batch_bytes,
                max_series: a.max_series,
                max_readings: a.max_readings,
                ..codec::Limits::default()
            },
            readings_per_second: a.readings_per_second,
            readings_burst: a.readings_burst,
            frames_per_second: a.frames_per_second,
            frames_burst: a.frames_per_second,
            hello_timeout: Duration::from_millis(a.hello_timeout_ms),
            max_skip_batches: a.max_skip_batches,
        }
    }

    /// What one module session may hold or do.
    pub fn module_session(&self) -> ModuleSessionLimits {
        let m = &self.module;
        ModuleSessionLimits {
            max_frame: m.max_frame,
            register_timeout: Duration::from_millis(m.register_timeout_ms),
            frames_per_second: m.frames_per_second,
            frames_burst: m.frames_per_second,
            ..ModuleSessionLimits::default()
        }
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// The first limit that cannot work, if any.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("limits.max_connections", self.max_connections as f64),
            ("limits.max_handshakes", self.max_handshakes as f64),
            ("limits.max_incoming", self.max_incoming as f64),
            (
                "limits.handshake_timeout_ms",
                self.handshake_timeout_ms as f64,
            ),
            ("limits.agent.max_series", self.agent.max_series as f64),
            ("limits.agent.max_readings", self.agent.max_readings as f64),
            (
                "limits.agent.readings_per_second",
                self.agent.readings_per_second,
            ),
            (
                "limits.agent.frames_per_second",
                self.agent.frames_per_second,
            ),
            (
                "limits.agent.hello_timeout_ms",
                self.agent.hello_timeout_ms as f64,
            ),
            (
                "limits.module.frames_per_second",
                self.module.frames_per_second,
            ),
            (
                "limits.module.register_timeout_ms",
                self.module.register_timeout_ms as f64,
            ),
            (
                "limits.api.max_connections",
                self.api.max_connections as f64,
            ),
            (
                "limits.api.header_read_timeout_ms",
                self.api.header_read_timeout_ms as f64,
            ),
            (
                "limits.api.request_timeout_ms",
                self.api.request_timeout_ms as f64,
            ),
            ("limits.api.max_in_flight", self.api.max_in_flight as f64),
            (
                "limits.api.per_token_in_flight",
                self.api.per_token_in_flight as f64,
            ),
            ("limits.api.per_token_rate", self.api.per_token_rate),
            ("limits.api.per_token_burst", self.api.per_token_burst),
            ("limits.api.worker_threads", self.api.worker_threads as f64),
            (
                "limits.enrol.max_in_flight",
                self.enrol.max_in_flight as f64,
            ),
            (
                "limits.enrol.request_timeout_ms",
                self.enrol.request_timeout_ms as f64,
            ),
            (
                "limits.enrol.per_source_per_minute",
                self.enrol.per_source_per_minute,
            ),
            ("limits.enrol.per_source_burst", self.enrol.per_source_burst),
            ("limits.enrol.max_sources", self.enrol.max_sources as f64),
            (
                "limits.api.blocking_threads",
                self.api.blocking_threads as f64,
            ),
        ];
        if let Some((name, v)) = positive.iter().find(|(_, v)| v.is_nan() || *v <= 0.0) {
            return Err(format!("{name} must be positive, got {v}"));
        }
        for (name, v) in [
            ("limits.agent.max_frame", self.agent.max_frame),
            ("limits.module.max_frame", self.module.max_frame),
        ] {
            if !(1024..=u32::MAX as usize).contains(&v) {
                return Err(format!(
                    "{name} must be between 1024 and 2^32-1 bytes, got {v}"
                ));
            }
        }
        if !(0..=19).contains(&self.api.nice) {
            return Err(format!(
                "limits.api.nice must be between 0 and 19, got {}",
                self.api.nice
            ));
        }
        if self.api.per_token_burst < 1.0 {
            return Err("limits.api.per_token_burst must be at least 1".into());
        }
        if self.agent.readings_burst < self.agent.readings_per_second {
            return Err("limits.agent.readings_burst must be at least readings_per_second".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_sessions_defaults_and_parse_from_toml() {
        let l = Limits::default();
        assert_eq!(
            l.agent_session(),
            AgentLimits {
                frames_burst: 1000.0,
                ..AgentLimits::default()
            }
        );
        assert_eq!(l.module_session(), ModuleSessionLimits::default());
        l.validate().unwrap();
        let text = "max_connections = 3\n[agent]\nmax_series = 7\n";
        let parsed: Limits = toml::from_str(text).unwrap();
        assert_eq!(parsed.max_connections, 3);
        assert_eq!(parsed.agent_session().batch.max_series, 7);
        assert!(toml::from_str::<Limits>("[agent]\nmax_seriess = 7\n").is_err());
        let bad = Limits {
            max_connections: 0,
            ..Limits::default()
        };
        assert!(bad.validate().unwrap_err().contains("max_connections"));
    }
}
