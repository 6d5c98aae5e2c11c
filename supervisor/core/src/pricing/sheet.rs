//! The price sheet (TOML): what requests, response bytes, supervisor CPU and
//! virtual resources cost. Every price is in micro-units and ≥ 0; a missing
//! field defaults to 0 (free) — except `period`, which defaults to `hour`.

use serde::{Deserialize, Serialize};
use vcp_common::module::Kind;

use super::PricingError;

/// The example price sheet, `supervisor/prices.example.toml`.
#[cfg(test)]
pub const PRICES_EXAMPLE: &str = include_str!("../../../prices.example.toml");

/// Billing period granularity (carried for the statement builder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingPeriod {
    #[default]
    Hour,
    Day,
    Month,
}

impl BillingPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingPeriod::Hour => "hour",
            BillingPeriod::Day => "day",
            BillingPeriod::Month => "month",
        }
    }
}

/// The fee for one configuration request of `kind` for `parameter`, or for
/// every parameter of `kind` when `parameter` is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFee {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// Micro-units per request.
    pub fee: i64,
}

/// Prices of the virtual resources a service set uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourcePrices {
    /// Micro-units per CPU core-hour.
    pub cpu_core_hour: i64,
    /// Micro-units per GiB-hour of memory.
    pub memory_gib_hour: i64,
    /// Micro-units per GPU-hour.
    pub gpu_hour: i64,
    /// Micro-units per GB (10⁹ bytes) through a NIC.
    pub nic_gb: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriceSheet {
    pub period: BillingPeriod,
    /// Micro-units per request when no `request_fees` entry matches.
    pub default_request_fee: i64,
    pub request_fees: Vec<RequestFee>,
    /// Micro-units per 1000 bytes of solicitation response (so a fractional
    /// per-byte price is exact); rounded half to even per module and period.
    pub response_fee_per_kb: i64,
    /// Micro-units per millisecond of supervisor CPU spent on a module's
    /// requests (measured in nanoseconds).
    pub compute_fee_per_ms: i64,
    pub resources: ResourcePrices,
}

impl PriceSheet {
    /// Parses and validates a price sheet (the supervisor's configuration
    /// reads it as part of its file; this is for tests).
    #[cfg(test)]
    pub fn from_toml(text: &str) -> Result<Self, PricingError> {
        let sheet: PriceSheet =
            toml::from_str(text).map_err(|e| PricingError::invalid("toml", e.to_string()))?;
        sheet.validate()?;
        Ok(sheet)
    }

    /// Every price ≥ 0; request fee entries unique and with a non-empty
    /// parameter when one is given.
    pub fn validate(&self) -> Result<(), PricingError> {
        let prices = [
            ("default_request_fee", self.default_request_fee),
            ("response_fee_per_kb", self.response_fee_per_kb),
            ("compute_fee_per_ms", self.compute_fee_per_ms),
            ("resources.cpu_core_hour", self.resources.cpu_core_hour),
            ("resources.memory_gib_hour", self.resources.memory_gib_hour),
            ("resources.gpu_hour", self.resources.gpu_hour),
            ("resources.nic_gb", self.resources.nic_gb),
        ];
        for (field, price) in prices {
            if price < 0 {
                return Err(PricingError::invalid(field, "must be >= 0 micro-units"));
            }
        }
        for (i, f) in self.request_fees.iter().enumerate() {
            let field = || format!("request_fees[{i}] ({} {:?})", f.kind, f.parameter);
            if f.fee < 0 {
                return Err(PricingError::invalid(
                    field(),
                    "fee must be >= 0 micro-units",
                ));
            }
            if f.parameter.as_deref().is_some_and(str::is_empty) {
                return Err(PricingError::invalid(
                    field(),
                    "parameter must not be empty",
                ));
            }
            let duplicate = self.request_fees[..i]
                .iter()
                .any(|g| g.kind == f.kind && g.parameter == f.parameter);
            if duplicate {
                return Err(PricingError::invalid(field(), "duplicate entry"));
            }
        }
        Ok(())
    }

    /// The fee per request of `kind` for `parameter`: the entry for exactly
    /// `(kind, parameter)`, else the entry for `kind` alone, else the default.
    pub fn request_fee(&self, kind: Kind, parameter: &str) -> i64 {
        let entry = |p: Option<&str>| {
            self.request_fees
                .iter()
                .find(|f| f.kind == kind && f.parameter.as_deref() == p)
                .map(|f| f.fee)
        };
        entry(Some(parameter))
            .or_else(|| entry(None))
            .unwrap_or(self.default_request_fee)
    }
}
