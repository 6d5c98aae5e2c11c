//! The pricing functions: a period's measured usage in, charges out.

use serde::{Deserialize, Serialize};
use vcp_common::module::Kind;

use super::money::{
    div_round_half_even, micro_quantity, percent, price, saturate, scale_quantity,
    split_customer_share, SHARE_SCALE,
};
use super::{
    customer_account, idempotency_key, vendor_account, Charge, ChargeKind, Contract, PriceSheet,
    OPERATOR_ACCOUNT,
};
use crate::stats::ParamSummary;

/// One parameter's request counters over the period. `requests` counts every
/// request; `late`, `rejected` and `clipped` are disjoint subsets of it
/// (`over_quota` a subset of `rejected`): the module's faults, which its
/// vendor pays for. The rest — admitted as asked, on time, within the
/// quota — is billable to the customer (split by contract).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamUsage {
    pub parameter: String,
    pub requests: u64,
    pub late: u64,
    pub rejected: u64,
    #[serde(default)]
    pub over_quota: u64,
    pub clipped: u64,
    /// Solicitation response bytes carrying these requests.
    pub bytes: u64,
    /// The bytes of the faulty ones.
    #[serde(default)]
    pub fault_bytes: u64,
}

impl ParamUsage {
    /// Requests the module's vendor pays for: late, rejected, clipped.
    pub fn faults(&self) -> u64 {
        self.late
            .saturating_add(self.rejected)
            .saturating_add(self.clipped)
            .min(self.requests)
    }
}

impl From<&ParamSummary> for ParamUsage {
    fn from(s: &ParamSummary) -> Self {
        ParamUsage {
            parameter: s.parameter.clone(),
            requests: s.requests,
            late: s.late,
            rejected: s.rejected,
            over_quota: s.over_quota,
            clipped: s.clipped,
            bytes: s.bytes,
            fault_bytes: s.fault_bytes,
        }
    }
}

/// What one module instance did in the period. Parameters are unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleUsage {
    pub module: String,
    pub control_plane: String,
    pub customer: String,
    /// The module's vendor; `None` for the operator's default modules.
    pub vendor: Option<String>,
    pub kind: Kind,
    pub per_parameter: Vec<ParamUsage>,
    /// Supervisor CPU spent on the module's requests, nanoseconds.
    pub cpu_ns: u64,
}

/// Usage integrals of a service set's virtual resources over the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    pub core_seconds: f64,
    pub gib_seconds: f64,
    pub gpu_seconds: f64,
    pub nic_bytes: u64,
}

/// The accounts and service set a cost-benefit contract settles between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    pub customer: String,
    pub vendor: String,
    pub service_set: String,
}

/// Request fees (one per parameter), the response-byte fee and the compute
/// fee of one module instance for `period`, paid to the operator. Billable
/// requests and their bytes are split between the customer and the vendor
/// per `contract` (the one for the usage's plane and module; `None`, or no
/// vendor, means the customer pays); the module's faulty requests (late,
/// rejected, clipped, over quota) and their bytes are the vendor's alone —
/// and nobody's for the operator's own modules, which have no vendor.
pub fn request_charges(
    sheet: &PriceSheet,
    contract: Option<&Contract>,
    usage: &ModuleUsage,
    period: &str,
    at_ms: i64,
) -> Vec<Charge> {
    let customer_ppm = match (&usage.vendor, contract) {
        (Some(_), Some(c)) => c.payer.customer_ppm(),
        _ => SHARE_SCALE,
    };
    let payers = Payers {
        usage,
        period,
        at_ms,
        customer_ppm,
    };
    let kind = usage.kind.as_str();
    let mut out = Vec::new();
    for p in &usage.per_parameter {
        let fee = sheet.request_fee(usage.kind, &p.parameter);
        let faults = p.faults();
        let billable = p.requests - faults;
        let description = if faults == 0 {
            format!("requests {kind}/{}: {billable} at {fee} µ", p.parameter)
        } else {
            format!(
                "requests {kind}/{}: {billable} of {} at {fee} µ ({} late, {} rejected, {} clipped: the vendor's)",
                p.parameter, p.requests, p.late, p.rejected, p.clipped
            )
        };
        let line = Line {
            kind: ChargeKind::RequestFee,
            detail: Some(&p.parameter),
            amount: price(billable, fee, 1),
            quantity: billable as f64,
            unit_price: fee,
            description,
        };
        payers.push(&mut out, line);
        payers.push_fault(
            &mut out,
            Line {
                kind: ChargeKind::RequestFee,
                detail: Some(&p.parameter),
                amount: price(faults, fee, 1),
                quantity: faults as f64,
                unit_price: fee,
                description: format!(
                    "faulty requests {kind}/{}: {} late, {} rejected ({} over quota), {} clipped at {fee} µ",
                    p.parameter, p.late, p.rejected, p.over_quota, p.clipped
                ),
            },
        );
    }
    let sum = |f: fn(&ParamUsage) -> u64| {
        usage
            .per_parameter
            .iter()
            .fold(0u64, |b, p| b.saturating_add(f(p)))
    };
    let (bytes, fault_bytes) = (sum(|p| p.bytes), sum(|p| p.fault_bytes));
    let billable_bytes = bytes.saturating_sub(fault_bytes);
    let per_kb = sheet.response_fee_per_kb;
    payers.push(
        &mut out,
        Line {
            kind: ChargeKind::ResponseBytes,
            detail: None,
            amount: price(billable_bytes, per_kb, 1000),
            quantity: billable_bytes as f64 / 1e3,
            unit_price: per_kb,
            description: if billable_bytes == bytes {
                format!("response bytes {kind}: {bytes} B at {per_kb} µ/kB")
            } else {
                format!("response bytes {kind}: {billable_bytes} of {bytes} B at {per_kb} µ/kB")
            },
        },
    );
    let fault_bytes = fault_bytes.min(bytes);
    payers.push_fault(
        &mut out,
        Line {
            kind: ChargeKind::ResponseBytes,
            detail: None,
            amount: price(fault_bytes, per_kb, 1000),
            quantity: fault_bytes as f64 / 1e3,
            unit_price: per_kb,
            description: format!(
                "response bytes {kind} of faulty requests: {fault_bytes} B at {per_kb} µ/kB"
            ),
        },
    );
    let per_ms = sheet.compute_fee_per_ms;
    payers.push(
        &mut out,
        Line {
            kind: ChargeKind::Compute,
            detail: None,
            amount: price(usage.cpu_ns, per_ms, 1_000_000),
            quantity: usage.cpu_ns as f64 / 1e6,
            unit_price: per_ms,
            description: format!(
                "supervisor cpu {kind}: {} ns at {per_ms} µ/ms",
                usage.cpu_ns
            ),
        },
    );
    out
}

/// A fee before it is split between the payers.
struct Line<'a> {
    kind: ChargeKind,
    detail: Option<&'a str>,
    amount: i64,
    quantity: f64,
    unit_price: i64,
    description: String,
}

struct Payers<'a> {
    usage: &'a ModuleUsage,
    period: &'a str,
    at_ms: i64,
    customer_ppm: i64,
}

impl Payers<'_> {
    /// The idempotency key of `line` for payer `role`.
    fn key(&self, line: &Line<'_>, role: &str) -> String {
        let u = self.usage;
        let mut key = vec![
            self.period,
            line.kind.as_str(),
            &u.control_plane,
            &u.module,
            &u.customer,
            u.kind.as_str(),
        ];
        key.extend(line.detail);
        key.push(role);
        idempotency_key(&key)
    }

    /// A line the module's vendor pays whole (its faults); nothing when
    /// the module has no vendor.
    fn push_fault(&self, out: &mut Vec<Charge>, line: Line<'_>) {
        let u = self.usage;
        let Some(vendor) = &u.vendor else { return };
        if line.amount <= 0 {
            return;
        }
        out.push(Charge {
            key: self.key(&line, "vendor-faults"),
            at_ms: self.at_ms,
            debit: vendor_account(vendor),
            credit: OPERATOR_ACCOUNT.to_owned(),
            amount: line.amount,
            module: u.module.clone(),
            control_plane: u.control_plane.clone(),
            kind: line.kind.as_str().to_owned(),
            description: line.description,
            quantity: line.quantity,
            unit_price: line.unit_price,
        });
    }

    fn push(&self, out: &mut Vec<Charge>, line: Line<'_>) {
        let u = self.usage;
        let (customer_part, vendor_part) = split_customer_share(line.amount, self.customer_ppm);
        let parts = [
            (
                "customer",
                customer_part,
                self.customer_ppm,
                Some(&u.customer),
            ),
            (
                "vendor",
                vendor_part,
                SHARE_SCALE - self.customer_ppm,
                u.vendor.as_ref(),
            ),
        ];
        for (role, amount, ppm, id) in parts {
            let Some(id) = id else { continue };
            if amount <= 0 {
                continue;
            }
            let description = if ppm == SHARE_SCALE {
                line.description.clone()
            } else {
                format!("{}; {role} pays {}", line.description, percent(ppm))
            };
            out.push(Charge {
                key: self.key(&line, role),
                at_ms: self.at_ms,
                debit: if role == "customer" {
                    customer_account(id)
                } else {
                    vendor_account(id)
                },
                credit: OPERATOR_ACCOUNT.to_owned(),
                amount,
                module: u.module.clone(),
                control_plane: u.control_plane.clone(),
                kind: line.kind.as_str().to_owned(),
                description,
                quantity: scale_quantity(line.quantity, ppm),
                unit_price: line.unit_price,
            });
        }
    }
}

/// One resource's priced usage.
struct ResourceLine {
    resource: &'static str,
    amount: i64,
    quantity: f64,
    unit_price: i64,
    unit: &'static str,
}

fn resource_lines(sheet: &PriceSheet, usage: &ResourceUsage) -> [ResourceLine; 4] {
    const HOUR_MICROS: i128 = 3600 * 1_000_000;
    let r = &sheet.resources;
    let hourly = |resource, seconds: f64, unit_price, unit| {
        let micro = micro_quantity(seconds);
        ResourceLine {
            resource,
            amount: price(micro, unit_price, HOUR_MICROS),
            quantity: micro as f64 / 3.6e9,
            unit_price,
            unit,
        }
    };
    [
        hourly("cpu", usage.core_seconds, r.cpu_core_hour, "core-hour"),
        hourly("memory", usage.gib_seconds, r.memory_gib_hour, "GiB-hour"),
        hourly("gpu", usage.gpu_seconds, r.gpu_hour, "GPU-hour"),
        ResourceLine {
            resource: "nic",
            amount: price(usage.nic_bytes, r.nic_gb, 1_000_000_000),
            quantity: usage.nic_bytes as f64 / 1e9,
            unit_price: r.nic_gb,
            unit: "GB",
        },
    ]
}

/// The resource cost of `usage`: exactly the sum of the amounts
/// [`resource_charge`] emits for it (each resource rounded on its own).
pub fn resource_cost(sheet: &PriceSheet, usage: &ResourceUsage) -> i64 {
    resource_lines(sheet, usage)
        .iter()
        .fold(0i64, |sum, l| sum.saturating_add(l.amount.max(0)))
}

/// The customer pays the operator for the virtual resources of
/// `service_set`: one charge per resource (cpu, memory, gpu, nic).
pub fn resource_charge(
    sheet: &PriceSheet,
    customer: &str,
    service_set: &str,
    usage: ResourceUsage,
    period: &str,
    at_ms: i64,
) -> Vec<Charge> {
    let kind = ChargeKind::Resource.as_str();
    resource_lines(sheet, &usage)
        .into_iter()
        .filter(|l| l.amount > 0)
        .map(|l| Charge {
            key: idempotency_key(&[period, kind, customer, service_set, l.resource]),
            at_ms,
            debit: customer_account(customer),
            credit: OPERATOR_ACCOUNT.to_owned(),
            amount: l.amount,
            module: String::new(),
            control_plane: String::new(),
            kind: kind.to_owned(),
            description: format!(
                "{} of service set {service_set}: {:.6} {}s at {} µ/{}",
                l.resource, l.quantity, l.unit, l.unit_price, l.unit
            ),
            quantity: l.quantity,
            unit_price: l.unit_price,
        })
        .collect()
}

/// Whether the goal conditions held for the whole period, from evaluation
/// windows: the required share of windows met is 1.0 (every window), and a
/// period with no window has no evidence and does not count as held.
pub fn goals_held(windows_met: u64, windows: u64) -> bool {
    windows > 0 && windows_met >= windows
}

/// Cost-benefit settlement of `contract` for one period of `parties`'
/// service set. `goal_met`: the goal conditions held for the whole period
/// (see [`goals_held`]). If so and `actual_cost < baseline_cost`, the
/// customer pays the vendor `round_half_even((baseline − actual) × share)`;
/// if not, the vendor pays the customer the contract's penalty, if any.
/// A contract without cost-benefit sharing gives nothing.
pub fn cost_benefit(
    contract: &Contract,
    baseline_cost: i64,
    actual_cost: i64,
    goal_met: bool,
    period: &str,
    at_ms: i64,
    parties: &Parties,
) -> Vec<Charge> {
    let Some(cb) = &contract.cost_benefit else {
        return Vec::new();
    };
    let charge = |kind: ChargeKind, debit, credit, amount, quantity, unit_price, description| {
        let key = idempotency_key(&[
            period,
            kind.as_str(),
            &contract.control_plane,
            &contract.module,
            &parties.customer,
            &parties.service_set,
        ]);
        Charge {
            key,
            at_ms,
            debit,
            credit,
            amount,
            module: contract.module.clone(),
            control_plane: contract.control_plane.clone(),
            kind: kind.as_str().to_owned(),
            description,
            quantity,
            unit_price,
        }
    };
    let set = &parties.service_set;
    if goal_met {
        let saving = i128::from(baseline_cost) - i128::from(actual_cost);
        if saving <= 0 {
            return Vec::new();
        }
        let ppm = cb.share_ppm();
        let amount = saturate(div_round_half_even(
            saving * i128::from(ppm),
            i128::from(SHARE_SCALE),
        ));
        if amount <= 0 {
            return Vec::new();
        }
        let description = format!(
            "savings share, service set {set}: (baseline {baseline_cost} µ − actual \
             {actual_cost} µ) × {}, goals held all period",
            percent(ppm)
        );
        vec![charge(
            ChargeKind::SavingsShare,
            customer_account(&parties.customer),
            vendor_account(&parties.vendor),
            amount,
            ppm as f64 / SHARE_SCALE as f64,
            saturate(saving),
            description,
        )]
    } else {
        match cb.penalty {
            Some(penalty) if penalty > 0 => vec![charge(
                ChargeKind::Penalty,
                vendor_account(&parties.vendor),
                customer_account(&parties.customer),
                penalty,
                1.0,
                penalty,
                format!("penalty, service set {set}: a goal condition broke in the period"),
            )],
            _ => Vec::new(),
        }
    }
}
