//! The supervisor's configuration file (TOML): customers, vendors, service
//! sets, custom modules, virtual control planes, solicitation cadences and
//! deadlines, and constraints. Every error names the file, the line, and
//! what was expected.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use vcp_common::module::{Condition, Kind};

use vcp_core::builtin::BuiltinConfig;
use vcp_core::constraints::{ModuleLimits, ParamConstraint};
use vcp_core::mediation::PolicyEntry;
use vcp_core::plane::{InstanceSize, Instances, Mode, OPERATOR};
use vcp_core::pricing::{Contract, PriceSheet};
use vcp_core::reputation::ReputationConfig;
use vcp_store::accounts::Role;

pub mod limits;
mod members;
mod planes;

pub use members::{overlapping_members, MemberConfig};
pub use planes::check_choice;

/// The supervisor's data directory when none is given: the user's data
/// directory, e.g. `~/.local/share/vcp`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("vcp")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorFile {
    #[serde(default)]
    pub customers: Vec<Customer>,
    #[serde(default)]
    pub vendors: Vec<Vendor>,
    #[serde(default)]
    pub service_sets: Vec<ServiceSetConfig>,
    #[serde(default)]
    pub custom_modules: Vec<CustomModuleConfig>,
    #[serde(default)]
    pub control_planes: Vec<ControlPlaneConfig>,
    /// Cadence and deadline per kind; kinds not listed use the defaults.
    #[serde(default)]
    pub solicitation: BTreeMap<Kind, Cadence>,
    #[serde(default)]
    pub constraints: Vec<ParamConstraint>,
    #[serde(default)]
    pub module_limits: ModuleLimits,
    /// Tuning of the operator's default modules.
    #[serde(default)]
    pub builtin: BuiltinConfig,
    /// Start the operator's default modules (on by default; off leaves the
    /// control planes to custom modules).
    #[serde(default = "yes")]
    pub default_modules: bool,
    #[serde(default)]
    pub reputation: ReputationConfig,
    /// Seconds per goal evaluation window.
    #[serde(default = "default_window_s")]
    pub evaluation_window_s: u64,
    #[serde(default)]
    pub feedback: Vec<FeedbackConfig>,
    /// Mediation policies per (kind, parameter[, control plane]); the rest
    /// use `solicit::mediation::default_policy`.
    #[serde(default)]
    pub mediation: Vec<PolicyEntry>,
    /// Prices of requests, bytes, supervisor CPU and resources.
    #[serde(default)]
    pub prices: PriceSheet,
    /// Who pays for each custom module, and cost-benefit sharing.
    #[serde(default)]
    pub contracts: Vec<Contract>,
    /// Amounts customers allocate to a kind of service, shared among the
    /// vendors of its modules by contribution weighted by reputation.
    #[serde(default)]
    pub settlements: Vec<SettlementConfig>,
    /// Seconds between billing runs (charges from usage since the last).
    #[serde(default = "default_billing_s")]
    pub billing_interval_s: u64,
    /// Seconds a configuration waits for an offline host before it expires.
    #[serde(default = "default_ttl_s")]
    pub configuration_ttl_s: u64,
    /// What peers may make the supervisor hold: connections, handshakes,
    /// and per agent and module session.
    #[serde(default)]
    pub limits: limits::Limits,
}

fn default_ttl_s() -> u64 {
    60
}

/// A customer's allocation to a service, settled at each period's end.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfig {
    pub customer: String,
    pub kind: Kind,
    /// Micro-units per billing period.
    pub amount: i64,
}

fn default_billing_s() -> u64 {
    60
}

fn yes() -> bool {
    true
}

fn default_window_s() -> u64 {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub id: Spanned<String>,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    pub id: Spanned<String>,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSetConfig {
    pub id: Spanned<String>,
    /// A customer id, or `operator`.
    pub customer: Spanned<String>,
    pub instances: Spanned<Instances>,
    #[serde(default)]
    pub members: Vec<MemberConfig>,
    /// Conditions the set must meet in every evaluation window, e.g.
    /// `{ metric = "cpu.utilization", cmp = "below", value = 0.85 }`.
    #[serde(default)]
    pub goals: Vec<Condition>,
    /// Resources one instance reserves; with it, the set is charged for
    /// its instances in force (instance-hours), without it for nothing but
    /// measured NIC traffic.
    #[serde(default)]
    pub instance: Option<InstanceSize>,
}

/// A customer's rating of a module (1–5), loaded at start.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    pub control_plane: String,
    pub module: String,
    pub rating: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomModuleConfig {
    /// The module's id; its credential is a certificate for `<id>.module.vcp`.
    pub id: Spanned<String>,
    pub kind: Kind,
    pub vendor: Spanned<String>,
    /// The customer whose virtual control plane the module serves.
    pub customer: Spanned<String>,
    #[serde(default)]
    pub limits: Option<ModuleLimits>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindChoice {
    pub mode: Mode,
    /// The custom module (for replace and complement).
    #[serde(default)]
    pub module: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneConfig {
    pub customer: Spanned<String>,
    #[serde(default)]
    pub modules: BTreeMap<Kind, KindChoice>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cadence {
    pub cadence_ms: u64,
    pub deadline_ms: u64,
}

impl Cadence {
    /// Defaults: the traffic kinds every 100 ms with a 10 ms deadline, the
    /// rest every second with a 50 ms deadline.
    pub fn default_for(kind: Kind) -> Cadence {
        match kind {
            Kind::TrafficDetection | Kind::TrafficMitigation => Cadence {
                cadence_ms: 100,
                deadline_ms: 10,
            },
            _ => Cadence {
                cadence_ms: 1000,
                deadline_ms: 50,
            },
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
    /// Syntax and type errors; toml's message names the line and column.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Default for SupervisorFile {
    fn default() -> Self {
        // An empty file: every field at its serde default.
        toml::from_str("").expect("an empty configuration is valid")
    }
}

/// Checks that `account` exists with `role` in the configuration.
pub fn check_account(file: &SupervisorFile, account: &str, role: Role) -> Result<(), String> {
    let ok = match role {
        Role::Operator => account == OPERATOR,
        Role::Customer => {
            account != OPERATOR && file.customers.iter().any(|c| c.id.get_ref() == account)
        }
        Role::Vendor => file.vendors.iter().any(|v| v.id.get_ref() == account),
        // A join token's account is a scope of agent ids, not an account.
        Role::Enrol => true,
    };
    if ok {
        Ok(())
    } else if role == Role::Operator {
        Err(format!("the operator's account is {OPERATOR:?}"))
    } else {
        Err(format!("no {role} {account:?} in the configuration"))
    }
}

impl SupervisorFile {
    /// The custom module `id`.
    pub fn custom(&self, id: &str) -> Option<&CustomModuleConfig> {
        self.custom_modules.iter().find(|m| m.id.get_ref() == id)
    }
}

impl SupervisorFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: SupervisorFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        file.validate(text, path)?;
        Ok(file)
    }

    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let err = |at: usize, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: text[..at.min(text.len())].matches('\n').count() + 1,
            message,
        };
        let mut customers: HashSet<&str> = HashSet::from([OPERATOR]);
        for c in &self.customers {
            vcp_common::identity::validate_id(c.id.get_ref())
                .map_err(|e| err(c.id.span().start, e.to_string()))?;
            if !customers.insert(c.id.get_ref()) {
                return Err(err(
                    c.id.span().start,
                    format!("customer {:?} is defined twice", c.id.get_ref()),
                ));
            }
        }
        let vendors: HashSet<&str> = self
            .vendors
            .iter()
            .map(|v| v.id.get_ref().as_str())
            .collect();
        // Tokens name accounts by id: a vendor and a customer sharing one
        // would be told apart by role alone.
        if let Some(v) = self
            .vendors
            .iter()
            .find(|v| customers.contains(v.id.get_ref().as_str()))
        {
            return Err(err(
                v.id.span().start,
                format!("vendor {:?} has the id of a customer", v.id.get_ref()),
            ));
        }
        let known = |set: &HashSet<&str>, id: &Spanned<String>, what: &str| {
            if set.contains(id.get_ref().as_str()) {
                Ok(())
            } else {
                let mut names: Vec<_> = set.iter().copied().collect();
                names.sort();
                Err(err(
                    id.span().start,
                    format!(
                        "unknown {what} {:?}: expected one of {names:?}",
                        id.get_ref()
                    ),
                ))
            }
        };
        let mut sets = HashSet::new();
        for s in &self.service_sets {
            known(&customers, &s.customer, "customer")?;
            if !sets.insert(s.id.get_ref().as_str()) {
                return Err(err(
                    s.id.span().start,
                    format!("service set {:?} is defined twice", s.id.get_ref()),
                ));
            }
            let i = s.instances.get_ref();
            if !(i.min <= i.initial && i.initial <= i.max) {
                return Err(err(
                    s.instances.span().start,
                    format!("instances must satisfy min <= initial <= max, got {i:?}"),
                ));
            }
        }
        if let Some((j, message)) = overlapping_members(&self.service_sets, None) {
            return Err(err(self.service_sets[j].id.span().start, message));
        }
        let mut modules = HashSet::new();
        for m in &self.custom_modules {
            vcp_common::identity::validate_id(m.id.get_ref())
                .map_err(|e| err(m.id.span().start, e.to_string()))?;
            known(&vendors, &m.vendor, "vendor")?;
            known(&customers, &m.customer, "customer")?;
            if !modules.insert(m.id.get_ref().as_str()) {
                return Err(err(
                    m.id.span().start,
                    format!("module {:?} is defined twice", m.id.get_ref()),
                ));
            }
        }
        let mut planes = HashSet::new();
        for cp in &self.control_planes {
            known(&customers, &cp.customer, "customer")?;
            if cp.customer.get_ref() == OPERATOR {
                return Err(err(cp.customer.span().start, "the operator's default control plane is implicit; virtual control planes belong to customers".into()));
            }
            if !planes.insert(cp.customer.get_ref().as_str()) {
                return Err(err(
                    cp.customer.span().start,
                    format!(
                        "customer {:?} has two virtual control planes",
                        cp.customer.get_ref()
                    ),
                ));
            }
            for (kind, choice) in &cp.modules {
                let at = choice
                    .module
                    .as_ref()
                    .map_or(cp.customer.span().start, |m| m.span().start);
                check_choice(
                    self,
                    cp.customer.get_ref(),
                    *kind,
                    choice.mode,
                    choice.module.as_ref().map(|m| m.get_ref().as_str()),
                )
                .map_err(|m| err(at, m))?;
            }
        }
        for f in &self.feedback {
            if !(1.0..=5.0).contains(&f.rating) {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    line: 0,
                    message: format!(
                        "feedback for {}/{}: rating {} is not in 1..=5",
                        f.control_plane, f.module, f.rating
                    ),
                });
            }
        }
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: 0,
            message,
        };
        self.prices
            .validate()
            .map_err(|e| invalid(format!("prices: {e}")))?;
        self.limits.validate().map_err(invalid)?;
        for c in &self.contracts {
            c.validate()
                .map_err(|e| invalid(format!("contract {}/{}: {e}", c.control_plane, c.module)))?;
        }
        for s in &self.settlements {
            if s.amount <= 0 || !customers.contains(s.customer.as_str()) {
                return Err(invalid(format!(
                    "settlement {}/{}: needs a known customer and a positive amount",
                    s.customer, s.kind
                )));
            }
        }
        if self.billing_interval_s == 0 {
            return Err(invalid("billing_interval_s must be at least 1".into()));
        }
        if self.evaluation_window_s == 0 {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: 0,
                message: "evaluation_window_s must be at least 1".into(),
            });
        }
        for (kind, c) in &self.solicitation {
            if c.deadline_ms == 0 || c.deadline_ms >= c.cadence_ms {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    line: 0,
                    message: format!(
                        "solicitation.{kind}: need 0 < deadline_ms < cadence_ms, got {c:?}"
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn cadence(&self, kind: Kind) -> Cadence {
        self.solicitation
            .get(&kind)
            .copied()
            .unwrap_or_else(|| Cadence::default_for(kind))
    }
}

#[cfg(test)]
mod tests;
