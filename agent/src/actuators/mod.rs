//! Actuators: apply a mediated configuration from the supervisor to this
//! host. One actuator is chosen per host in the agent's configuration
//! ([`ActuatorConfig`]); the default is a dry run that only records what it
//! would have done.
//!
//! Actuators are synchronous (the agent runs them on a blocking thread).
//! They validate everything they are given and report failures as an
//! [`ActuatorError`]; they never panic and never take the agent down.
//!
//! Routing by host happens before an actuator is called: an actuator does
//! not check `Target::Resource::host` against the agent's id.

pub mod cgroup;
pub mod dry_run;
pub mod exec;
pub mod gpu_power;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vcp_common::module::Target;

/// One configuration to apply: set `parameter` of `target` to `value`, as
/// decided in solicitation round `round`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    pub round: u64,
    pub target: Target,
    pub parameter: String,
    pub value: f64,
}

impl std::fmt::Display for Configuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "round {}: {} {} = {}",
            self.round, self.target, self.parameter, self.value
        )
    }
}

/// What an actuator did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub detail: String,
}

/// Why a configuration was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error("target {target}: {reason}")]
    Target { target: String, reason: String },
    #[error("unknown parameter {parameter:?} (this actuator knows: {known})")]
    Parameter {
        parameter: String,
        known: &'static str,
    },
    #[error("{parameter} = {value} rejected: {reason}")]
    Value {
        parameter: String,
        value: f64,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("timed out after {} ms; the command was killed", .after.as_millis())]
    TimedOut { after: Duration },
    #[error("command exited with {status}; stderr: {stderr:?}")]
    Exit { status: String, stderr: String },
    #[error("{0}")]
    Failed(String),
}

impl ActuatorError {
    pub(crate) fn value(c: &Configuration, reason: impl Into<String>) -> Self {
        ActuatorError::Value {
            parameter: c.parameter.clone(),
            value: c.value,
            reason: reason.into(),
        }
    }
}

/// Something that applies configurations on this host.
pub trait Actuator: Send {
    fn name(&self) -> &'static str;
    fn apply(&mut self, c: &Configuration) -> Result<Applied, ActuatorError>;
}

/// The resource name of a `Target::Resource` with the given prefix
/// (e.g. `"cgroup/"`), without the prefix.
pub(crate) fn resource_suffix<'a>(
    c: &'a Configuration,
    prefix: &str,
) -> Result<&'a str, ActuatorError> {
    match &c.target {
        Target::Resource { resource, .. } => {
            resource
                .strip_prefix(prefix)
                .ok_or_else(|| ActuatorError::Target {
                    target: c.target.to_string(),
                    reason: format!("resource must start with {prefix:?}"),
                })
        }
        other => Err(ActuatorError::Target {
            target: other.to_string(),
            reason: "not a host resource".into(),
        }),
    }
}

/// The actuator section of the agent's TOML, e.g.
///
/// ```toml
/// [actuator]
/// kind = "cgroup"
/// root = "/sys/fs/cgroup"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ActuatorConfig {
    /// Journal and log what would be applied (the default).
    #[default]
    DryRun,
    /// Write cgroup v2 files under `root` (default `/sys/fs/cgroup`).
    Cgroup {
        #[serde(default = "default_cgroup_root")]
        root: PathBuf,
    },
    /// Run `program args…` with the configuration as JSON on stdin, in its
    /// own process group, with only `PATH` ([`exec::PATH`]), the variables
    /// of `pass_env` present in the agent's environment and those of `env`
    /// (which win) in its environment.
    Exec {
        program: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        /// Variables set for the command, `NAME = "value"`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        /// Names of variables copied from the agent's environment when set.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pass_env: Vec<String>,
    },
    /// Set NVIDIA GPU power limits through NVML.
    GpuPower,
}

fn default_cgroup_root() -> PathBuf {
    PathBuf::from(cgroup::DEFAULT_ROOT)
}

fn default_timeout_ms() -> u64 {
    exec::DEFAULT_TIMEOUT.as_millis() as u64
}

/// Longest `exec` timeout accepted by [`ActuatorConfig::validate`].
pub const MAX_EXEC_TIMEOUT_MS: u64 = 600_000;

impl ActuatorConfig {
    /// Checks the fields a configuration file can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ActuatorConfig::DryRun | ActuatorConfig::GpuPower => Ok(()),
            ActuatorConfig::Cgroup { root } if !root.is_absolute() => Err(format!(
                "actuator cgroup: root {} must be an absolute path",
                root.display()
            )),
            ActuatorConfig::Cgroup { .. } => Ok(()),
            ActuatorConfig::Exec { program, .. } if program.trim().is_empty() => {
                Err("actuator exec: program is empty".into())
            }
            ActuatorConfig::Exec { timeout_ms, .. }
                if *timeout_ms == 0 || *timeout_ms > MAX_EXEC_TIMEOUT_MS =>
            {
                Err(format!(
                    "actuator exec: timeout_ms = {timeout_ms} is outside 1..={MAX_EXEC_TIMEOUT_MS}"
                ))
            }
            ActuatorConfig::Exec { env, pass_env, .. } => {
                for (name, value) in env {
                    exec::check_env_name(name).map_err(|e| format!("actuator exec: env: {e}"))?;
                    if value.contains('\0') {
                        return Err(format!(
                            "actuator exec: env: the value of {name:?} contains NUL"
                        ));
                    }
                }
                for name in pass_env {
                    exec::check_env_name(name)
                        .map_err(|e| format!("actuator exec: pass_env: {e}"))?;
                }
                Ok(())
            }
        }
    }
}

/// Builds the configured actuator. Never fails: an actuator that cannot
/// work on this host (no GPU, missing cgroup root) reports why on apply.
pub fn build(config: &ActuatorConfig) -> Box<dyn Actuator> {
    match config {
        ActuatorConfig::DryRun => Box::new(dry_run::DryRun::default()),
        ActuatorConfig::Cgroup { root } => Box::new(cgroup::CgroupActuator::new(root.clone())),
        ActuatorConfig::Exec {
            program,
            args,
            timeout_ms,
            env,
            pass_env,
        } => Box::new(
            exec::ExecActuator::new(
                program.clone(),
                args.clone(),
                Duration::from_millis((*timeout_ms).max(1)),
            )
            .with_env(env.clone(), pass_env.clone()),
        ),
        ActuatorConfig::GpuPower => Box::new(gpu_power::GpuPower::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        #[serde(default)]
        actuator: ActuatorConfig,
    }

    fn parse(text: &str) -> Result<ActuatorConfig, toml::de::Error> {
        toml::from_str::<File>(text).map(|f| f.actuator)
    }

    #[test]
    fn config_kinds_parse_with_defaults() {
        assert_eq!(parse("").unwrap(), ActuatorConfig::DryRun);
        assert_eq!(
            parse("[actuator]\nkind = \"dry-run\"").unwrap(),
            ActuatorConfig::DryRun
        );
        assert_eq!(
            parse("[actuator]\nkind = \"cgroup\"").unwrap(),
            ActuatorConfig::Cgroup {
                root: PathBuf::from("/sys/fs/cgroup")
            }
        );
        assert_eq!(
            parse("[actuator]\nkind = \"cgroup\"\nroot = \"/tmp/cg\"").unwrap(),
            ActuatorConfig::Cgroup {
                root: PathBuf::from("/tmp/cg")
            }
        );
        let exec = parse("[actuator]\nkind = \"exec\"\nprogram = \"/usr/local/bin/apply\"\nargs = [\"--host\", \"h1\"]").unwrap();
        assert_eq!(
            exec,
            ActuatorConfig::Exec {
                program: "/usr/local/bin/apply".into(),
                args: vec!["--host".into(), "h1".into()],
                timeout_ms: 5000,
                env: BTreeMap::new(),
                pass_env: Vec::new(),
            }
        );
        let with_env = parse("[actuator]\nkind = \"exec\"\nprogram = \"apply\"\npass_env = [\"HOME\"]\n[actuator.env]\nVCP_MODE = \"test\"\nLANG = \"C\"").unwrap();
        assert_eq!(
            with_env,
            ActuatorConfig::Exec {
                program: "apply".into(),
                args: Vec::new(),
                timeout_ms: 5000,
                env: [("LANG", "C"), ("VCP_MODE", "test")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                pass_env: vec!["HOME".into()],
            }
        );
        with_env.validate().unwrap();
        assert_eq!(
            parse("[actuator]\nkind = \"gpu-power\"").unwrap(),
            ActuatorConfig::GpuPower
        );
        for c in [
            ActuatorConfig::DryRun,
            exec,
            ActuatorConfig::GpuPower,
            ActuatorConfig::Cgroup {
                root: "/sys/fs/cgroup".into(),
            },
        ] {
            c.validate().unwrap();
            let a = build(&c);
            assert!(!a.name().is_empty());
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        for bad in [
            "[actuator]\nkind = \"cgroups\"",
            "[actuator]\nkind = \"exec\"",
            "[actuator]\nkind = \"cgroup\"\nrot = \"/x\"",
            "[actuator]\nroot = \"/x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for bad in [
            "[actuator]\nkind = \"cgroup\"\nroot = \"relative\"",
            "[actuator]\nkind = \"exec\"\nprogram = \" \"",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\ntimeout_ms = 0",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\ntimeout_ms = 600001",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\npass_env = [\"\"]",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\npass_env = [\"A=B\"]",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\npass_env = [\"A\\u0000\"]",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\nenv = { \"A=B\" = \"1\" }",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\nenv = { \"\" = \"1\" }",
            "[actuator]\nkind = \"exec\"\nprogram = \"x\"\nenv = { A = \"x\\u0000y\" }",
        ] {
            assert!(parse(bad).unwrap().validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_suffix_checks_kind_and_prefix() {
        let mut c = Configuration {
            round: 1,
            target: Target::Resource {
                host: "h".into(),
                resource: vcp_common::resource::ResourceId::new("cgroup/web").unwrap(),
            },
            parameter: "cpu.max".into(),
            value: 1.0,
        };
        assert_eq!(resource_suffix(&c, "cgroup/").unwrap(), "web");
        assert!(resource_suffix(&c, "gpu/").is_err());
        c.target = Target::ServiceSet("s".into());
        let e = resource_suffix(&c, "cgroup/").unwrap_err();
        assert!(e.to_string().contains("not a host resource"), "{e}");
    }
}
