//! The agent's configuration file (TOML). Every field has a default except
//! the identity; command-line flags override the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentFile {
    /// This agent's id; must match its certificate (`<id>.agent.vcp`).
    pub agent_id: Option<String>,
    /// Supervisor address, `host:port`.
    pub supervisor: String,
    /// Name in the supervisor's certificate.
    pub server_name: String,
    /// PEM files: fleet CA, this agent's certificate and key.
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A join token: with no `cert`/`key` and no credential in the state
    /// directory yet, the agent enrols with it (its key is made here).
    pub enrol_token: Option<String>,
    /// Milliseconds between two readings of every sensor (100 or more).
    pub sample_interval_ms: u64,
    /// Milliseconds per batch (at least the sample interval).
    pub window_ms: u64,
    /// Where the agent keeps its spool and identity (default
    /// `/var/lib/vcp-agent` for root, else `$XDG_STATE_HOME/vcp-agent` or
    /// `~/.local/state/vcp-agent`).
    pub state_dir: Option<PathBuf>,
    /// Bytes of unacknowledged batches kept on disk; the oldest are dropped
    /// beyond (and reported to the supervisor as a gap).
    pub spool_max_bytes: u64,
    /// Unacknowledged batches kept in memory when the state directory
    /// cannot be used; the oldest is dropped beyond.
    pub spool_batches: usize,
    pub zstd_level: i32,
    /// Series the agent defines over its life (at most the supervisor's
    /// per-agent `max_series`, which has the same default).
    pub max_series: usize,
    /// How this host applies configurations: `{ kind = "dry-run" }` (the
    /// default), `cgroup`, `exec` or `gpu-power`.
    pub actuator: crate::actuators::ActuatorConfig,
    /// cgroup v2 groups and the application metrics endpoint.
    pub sensors: crate::sensors::SensorConfig,
}

impl Default for AgentFile {
    fn default() -> Self {
        AgentFile {
            agent_id: None,
            supervisor: "127.0.0.1:4433".into(),
            server_name: vcp_common::identity::SUPERVISOR_NAME.into(),
            ca: None,
            cert: None,
            key: None,
            enrol_token: None,
            sample_interval_ms: 1000,
            window_ms: 1000,
            state_dir: None,
            spool_max_bytes: crate::spool::DEFAULT_MAX_BYTES,
            spool_batches: 3600,
            zstd_level: 3,
            max_series: vcp_common::codec::DEFAULT_MAX_SERIES,
            actuator: Default::default(),
            sensors: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl AgentFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The state directory: as configured, or the default for this user.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_dir {
            return d.clone();
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/var/lib/vcp-agent");
        }
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("vcp-agent")
    }

    /// Checks the timing fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sample_interval_ms < 100 {
            return Err(ConfigError::Invalid(format!(
                "sample_interval_ms = {} is below the 100 ms minimum",
                self.sample_interval_ms
            )));
        }
        if self.window_ms < self.sample_interval_ms {
            return Err(ConfigError::Invalid(format!(
                "window_ms = {} is shorter than sample_interval_ms = {}",
                self.window_ms, self.sample_interval_ms
            )));
        }
        if self.spool_max_bytes < 4 * crate::spool::DEFAULT_SEGMENT_BYTES {
            return Err(ConfigError::Invalid(format!(
                "spool_max_bytes = {} is below the 4 MiB minimum",
                self.spool_max_bytes
            )));
        }
        if self.spool_batches == 0 {
            return Err(ConfigError::Invalid(
                "spool_batches must be at least 1".into(),
            ));
        }
        self.actuator
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("actuator: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../agent.example.toml");
        let cfg = AgentFile::parse(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.agent_id.as_deref(), Some("host-1"));
        // The commented list of skipped filesystem types is the default.
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("# filesystem_skip_types = "))
            .expect("the example shows the default list");
        let shown: crate::sensors::SensorConfig =
            toml::from_str(&format!("filesystem_skip_types = {line}")).unwrap();
        assert_eq!(
            shown.filesystem_skip_types,
            crate::sensors::SensorConfig::default().filesystem_skip_types
        );
    }

    #[test]
    fn unknown_field_and_bad_timing_are_refused() {
        let err = AgentFile::parse("supervisr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("supervisr"), "{err}");
        let cfg = AgentFile::parse("sample_interval_ms = 50").unwrap();
        assert!(cfg.validate().is_err());
    }
}
