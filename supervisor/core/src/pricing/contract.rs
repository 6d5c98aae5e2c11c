//! Contracts (TOML): per (control plane, module), who pays the module's
//! request, response-byte and compute fees, and an optional cost-benefit
//! sharing agreement for a custom module.

use serde::{Deserialize, Serialize};

use super::money::ratio_ppm;
use super::{PricingError, SHARE_SCALE};

/// An example contracts file.
#[cfg(test)]
pub const CONTRACTS_EXAMPLE: &str = r#"
# The customer pays 30 % of the module's fees and the vendor 70 %; the vendor
# earns half of the reduction of the service set's resource cost below
# 12 units per period while the goals hold, and pays 1 unit when one breaks.
[[contract]]
control_plane = "acme"
module = "predictive-scaler"
payer = { split = 0.3 }
cost_benefit = { share = 0.5, baseline = { prior_period_cost = 12_000_000 }, penalty = 1_000_000 }

# The vendor pays all fees; savings are measured against the default module.
[[contract]]
control_plane = "globex"
module = "smart-lb"
payer = "vendor"
cost_benefit = { share = 0.25, baseline = "default_module" }
"#;

/// Who pays a module's request, response-byte and compute fees.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payer {
    #[default]
    Customer,
    Vendor,
    /// The customer's share in [0, 1]; the vendor pays the rest.
    Split(f64),
}

impl Payer {
    /// The customer's share in parts per million (see [`ratio_ppm`]).
    pub fn customer_ppm(&self) -> i64 {
        match *self {
            Payer::Customer => SHARE_SCALE,
            Payer::Vendor => 0,
            Payer::Split(s) => ratio_ppm(s),
        }
    }
}

/// What the actual resource cost of the service set is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// A fixed cost per period (micro-units), e.g. the period before the
    /// custom module was installed.
    PriorPeriodCost(i64),
    /// The cost the default module would have caused in the same period, as
    /// measured or estimated by the caller.
    DefaultModule,
}

/// Cost-benefit sharing for a custom module.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostBenefit {
    /// The vendor's share in [0, 1] of the cost reduction.
    pub share: f64,
    pub baseline: Baseline,
    /// Micro-units the vendor pays the customer for a period in which a goal
    /// condition broke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub penalty: Option<i64>,
}

impl CostBenefit {
    pub fn share_ppm(&self) -> i64 {
        ratio_ppm(self.share)
    }

    /// The baseline cost for a period: the fixed prior-period cost, or
    /// `default_module_cost` (None when the caller has no estimate).
    pub fn baseline_cost(&self, default_module_cost: Option<i64>) -> Option<i64> {
        match self.baseline {
            Baseline::PriorPeriodCost(c) => Some(c),
            Baseline::DefaultModule => default_module_cost,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub control_plane: String,
    pub module: String,
    #[serde(default)]
    pub payer: Payer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_benefit: Option<CostBenefit>,
}

impl Contract {
    pub fn validate(&self) -> Result<(), PricingError> {
        let field = |f: &str| format!("contract {}/{}: {f}", self.control_plane, self.module);
        if self.control_plane.is_empty() || self.module.is_empty() {
            return Err(PricingError::invalid(
                field("control_plane, module"),
                "must not be empty",
            ));
        }
        if let Payer::Split(s) = self.payer {
            if !(0.0..=1.0).contains(&s) {
                return Err(PricingError::invalid(
                    field("payer.split"),
                    "must be a number in [0, 1] (the customer's share)",
                ));
            }
        }
        if let Some(cb) = &self.cost_benefit {
            if !(0.0..=1.0).contains(&cb.share) {
                return Err(PricingError::invalid(
                    field("cost_benefit.share"),
                    "must be a number in [0, 1]",
                ));
            }
            if let Baseline::PriorPeriodCost(c) = cb.baseline {
                if c < 0 {
                    return Err(PricingError::invalid(
                        field("cost_benefit.baseline.prior_period_cost"),
                        "must be >= 0 micro-units",
                    ));
                }
            }
            if cb.penalty.is_some_and(|p| p < 0) {
                return Err(PricingError::invalid(
                    field("cost_benefit.penalty"),
                    "must be >= 0 micro-units",
                ));
            }
        }
        Ok(())
    }
}

/// A contracts file: `[[contract]]` tables, at most one per (plane, module).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSet {
    #[serde(default, rename = "contract")]
    pub contracts: Vec<Contract>,
}

impl ContractSet {
    /// Parses and validates a contracts file (for tests).
    #[cfg(test)]
    pub fn from_toml(text: &str) -> Result<Self, PricingError> {
        let set: ContractSet =
            toml::from_str(text).map_err(|e| PricingError::invalid("toml", e.to_string()))?;
        set.validate()?;
        Ok(set)
    }

    pub fn validate(&self) -> Result<(), PricingError> {
        for (i, c) in self.contracts.iter().enumerate() {
            c.validate()?;
            let duplicate = self.contracts[..i]
                .iter()
                .any(|d| d.control_plane == c.control_plane && d.module == c.module);
            if duplicate {
                return Err(PricingError::invalid(
                    format!("contract {}/{}", c.control_plane, c.module),
                    "duplicate contract for this control plane and module",
                ));
            }
        }
        Ok(())
    }

    /// The contract for `module` in `control_plane`, if any.
    pub fn find(&self, control_plane: &str, module: &str) -> Option<&Contract> {
        self.contracts
            .iter()
            .find(|c| c.control_plane == control_plane && c.module == module)
    }
}
