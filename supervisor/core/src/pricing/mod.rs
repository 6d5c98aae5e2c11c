//! Pricing: the price sheet, the contracts, and the pure functions that turn
//! a billing period's measured usage into [`Charge`]s. A pure core: no I/O,
//! no clock (the charge time `at_ms` and the period label come in as
//! arguments), no SQLite — the ledger writes the charges this returns.
//!
//! # Money
//!
//! Money is `i64` micro-units (µ) everywhere; intermediates are `i128`, so
//! `u64 quantity × i64 price` never overflows; a result beyond `i64` saturates.
//! Ratios from the configuration (payer split, savings share) are `f64` in
//! TOML but are quantised once to parts per million (`round_half_even(r ·
//! 10⁶)`, see [`SHARE_SCALE`]) and all arithmetic on money is integer.
//! Resource integrals (core-seconds, …) are measurements, not money: they are
//! quantised to micro-units of their own (`round(x · 10⁶)`, negative or NaN
//! counts as 0) before being priced.
//!
//! **Rounding**: every amount is computed from the period's totals with a
//! single division, rounded **half to even** (banker's rounding), so there is
//! no per-request rounding drift. A charge whose amount is ≤ 0 is not emitted.
//!
//! # Formulas (per module instance, or per service set, and per period)
//!
//! | charge | amount |
//! | --- | --- |
//! | request fee, per parameter | `requests × fee(kind, parameter)` — `requests` counts every request, late, rejected and clipped ones included |
//! | response bytes, per module | `round(Σ bytes × response_fee_per_kb / 1000)` (kB = 1000 bytes) |
//! | supervisor compute, per module | `round(cpu_ns × compute_fee_per_ms / 10⁶)` |
//! | cpu / memory / gpu | `round(µ-units-seconds × price_per_hour / (3600 · 10⁶))` |
//! | nic | `round(bytes × nic_gb / 10⁹)` (GB = 10⁹ bytes) |
//! | savings share | `round((baseline − actual) × share_ppm / 10⁶)`, only if goals held and `actual < baseline` |
//! | penalty | `penalty`, only if a goal broke and the contract sets one |
//!
//! `fee(kind, parameter)` is the sheet's entry for exactly `(kind,
//! parameter)`, else its entry for `kind` without a parameter, else
//! `default_request_fee`.
//!
//! # Who pays
//!
//! Request, response-byte and compute fees are paid to the [`OPERATOR_ACCOUNT`]
//! by the customer and/or the module's vendor as the [`Contract`]'s
//! [`Payer`] says. For a split the customer's part is
//! `⌈fee × customer_ppm / 10⁶⌉` (**the customer absorbs the rounding unit**)
//! and the vendor pays the rest, so the parts always sum exactly to the fee
//! and neither is negative. With no contract, or no vendor (a default
//! module), the customer pays everything. Resource fees: the customer pays
//! the operator. Savings share: the customer pays the vendor. Penalty: the
//! vendor pays the customer.
//!
//! # Charge fields
//!
//! `kind` is the charge type ([`ChargeKind::as_str`]); the module's kind is
//! in the description. `quantity` is in the unit of `unit_price` (requests,
//! kB, ms, core-hours, GiB-hours, GPU-hours, GB; for a savings share the
//! share and the saving; for a penalty 1 × penalty) and is scaled by the
//! payer's share for split fees, so `quantity × unit_price ≈ amount`; it is
//! informational — `amount` is the exact money. Resource charges have empty
//! `module` and `control_plane` (they belong to a service set).
//!
//! # Idempotency keys
//!
//! `period:charge-kind:scope…:role`, each component with `%` and `:`
//! percent-encoded, built only from the inputs (never the time or the
//! amount): recomputing a period gives the same keys, and a key is distinct
//! across periods, modules, planes, customers, kinds, parameters and payers.

mod charges;
mod contract;
mod money;
mod sheet;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use charges::{
    cost_benefit, goals_held, request_charges, resource_charge, resource_cost, ModuleUsage,
    ParamUsage, Parties, ResourceUsage,
};
#[cfg(test)]
pub use contract::CONTRACTS_EXAMPLE;
pub use contract::{Baseline, Contract, ContractSet, CostBenefit, Payer};
pub use money::{div_round_half_even, ratio_ppm, split_customer_share, SHARE_SCALE};
#[cfg(test)]
pub use sheet::PRICES_EXAMPLE;
pub use sheet::{BillingPeriod, PriceSheet, RequestFee, ResourcePrices};

use serde::{Deserialize, Serialize};

/// One charge: `debit` pays `amount` micro-units to `credit`.
///
/// Accounts are strings such as `customer:acme`, `vendor:predictive-labs`,
/// `operator`. `amount` may be computed from a fractional `quantity` times
/// `unit_price`; the rounding is the caller's, the ledger stores `amount`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    /// Idempotency key: the same key is charged once, ever.
    pub key: String,
    pub at_ms: i64,
    pub debit: String,
    pub credit: String,
    /// Micro-units, > 0 (a zero charge is skipped, a negative one refused).
    pub amount: i64,
    pub module: String,
    pub control_plane: String,
    pub kind: String,
    pub description: String,
    pub quantity: f64,
    /// Micro-units per unit.
    pub unit_price: i64,
}

impl Charge {
    /// Checks the charge; `Ok(false)` for a zero amount, which is skipped,
    /// and the reason when it is invalid.
    pub fn validate(&self) -> Result<bool, String> {
        let invalid = |reason: String| Err(reason);
        if self.key.is_empty() {
            return invalid("the idempotency key is empty".into());
        }
        if self.amount < 0 {
            return invalid(format!("amount {} micro-units is negative", self.amount));
        }
        if self.debit.is_empty() || self.credit.is_empty() {
            return invalid(format!(
                "empty account (debit {:?}, credit {:?})",
                self.debit, self.credit
            ));
        }
        if self.debit == self.credit {
            return invalid(format!(
                "debit and credit are the same account {:?}",
                self.debit
            ));
        }
        if !self.quantity.is_finite() {
            return invalid(format!("quantity {} is not finite", self.quantity));
        }
        Ok(self.amount > 0)
    }
}

/// The types of charge this module produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeKind {
    RequestFee,
    ResponseBytes,
    Compute,
    Resource,
    SavingsShare,
    Penalty,
}

impl ChargeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeKind::RequestFee => "request_fee",
            ChargeKind::ResponseBytes => "response_bytes",
            ChargeKind::Compute => "compute",
            ChargeKind::Resource => "resource",
            ChargeKind::SavingsShare => "savings_share",
            ChargeKind::Penalty => "penalty",
        }
    }
}

/// The operator's account: payee of request, compute and resource fees.
pub const OPERATOR_ACCOUNT: &str = "operator";

pub fn customer_account(id: &str) -> String {
    format!("customer:{id}")
}

pub fn vendor_account(id: &str) -> String {
    format!("vendor:{id}")
}

/// A price sheet or contract file that does not parse or is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl PricingError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        PricingError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Joins key components with `:`, percent-encoding `%` and `:` inside each
/// component so that distinct inputs never produce the same key.
pub(crate) fn idempotency_key(parts: &[&str]) -> String {
    let mut key = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(':');
        }
        for c in part.chars() {
            match c {
                '%' => key.push_str("%25"),
                ':' => key.push_str("%3A"),
                c => key.push(c),
            }
        }
    }
    key
}
