//! What the biller charges per service set and per contract, and how it
//! settles customers' allocations among vendors.

use super::*;

impl Biller {
    /// What a service set used over the interval: its instances in force
    /// times its instance size, and the NIC traffic of its whole-host members.
    pub(super) fn usage(&self, set: &ServiceSetDef, secs: f64) -> ResourceUsage {
        let instances = self
            .inputs
            .settings
            .value(&Target::ServiceSet(set.id.clone()), param::INSTANCES)
            .unwrap_or(f64::from(set.instances.initial));
        self.usage_at(set, instances, secs)
    }

    /// The set's usage over `secs` had it run `instances` instances.
    pub(super) fn usage_at(&self, set: &ServiceSetDef, instances: f64, secs: f64) -> ResourceUsage {
        let instances = instances.max(0.0);
        let size = set.instance.unwrap_or_default();
        let hosts = self.inputs.fleet.view.hosts();
        let nic_rate: f64 = set
            .members
            .iter()
            .filter(|m| m.resource.is_none())
            .filter_map(|m| hosts.get(m.host.as_str()))
            .map(|cell| {
                cell.load()
                    .readings()
                    .filter(|(d, _)| d.resource.starts_with("nic/") && d.resource != "nic/lo")
                    .filter(|(d, _)| d.metric == NIC_RX_BYTES.name || d.metric == NIC_TX_BYTES.name)
                    .map(|(_, l)| l.value.max(0.0))
                    .sum::<f64>()
            })
            .sum();
        ResourceUsage {
            core_seconds: instances * size.cores * secs,
            gib_seconds: instances * size.memory_gib * secs,
            gpu_seconds: instances * size.gpus * secs,
            nic_bytes: (nic_rate * secs) as u64,
        }
    }

    pub(super) fn resource_and_contract_charges(
        &self,
        label: &str,
        now: i64,
        secs: f64,
        staged: &mut Staged,
    ) -> Vec<Charge> {
        let sheet = &self.inputs.file.prices;
        let report = self.inputs.judge.report.load_full();
        let period_ms = Period::parse(&self.period)
            .map(|p| p.range_ms())
            .map_or(3_600_000, |(a, b)| (b - a).max(1));
        let mut out = Vec::new();
        for plane in self.inputs.counters.planes().iter() {
            for set in plane
                .scope
                .service_sets
                .iter()
                .filter(|s| s.customer != OPERATOR)
            {
                let usage = self.usage(set, secs);
                out.extend(resource_charge(
                    sheet,
                    &set.customer,
                    &set.id,
                    usage,
                    label,
                    now,
                ));
                let (windows, met) =
                    goal_delta(&report.goals, &set.id, self.goals.get(&set.id).copied());
                let record = report.goals.iter().find(|g| g.service_set == set.id);
                staged.goals.push((
                    set.id.clone(),
                    record.map_or((0, 0), |g| (g.windows, g.met)),
                ));
                // Cost-benefit: the contracts of the modules serving this plane.
                // (Judged on the interval's goal windows; without one, no verdict.)
                for contract in self
                    .inputs
                    .file
                    .contracts
                    .iter()
                    .filter(|c| c.control_plane == plane.id && windows > 0)
                {
                    let Some(cb) = &contract.cost_benefit else {
                        continue;
                    };
                    let baseline = match cb.baseline {
                        Baseline::PriorPeriodCost(c) => {
                            ((i128::from(c) * i128::from((secs * 1000.0) as i64))
                                / i128::from(period_ms)) as i64
                        }
                        // What the set would have cost at the instances the
                        // default module, running in the shadow, asked for.
                        Baseline::DefaultModule => {
                            let target = Target::ServiceSet(set.id.clone());
                            let Some(n) =
                                self.inputs.settings.shadow_value(&target, param::INSTANCES)
                            else {
                                continue; // no shadow decision yet: no verdict
                            };
                            resource_cost(sheet, &self.usage_at(set, n, secs))
                        }
                    };
                    let Some(vendor) = self
                        .inputs
                        .file
                        .custom(&contract.module)
                        .map(|m| m.vendor.get_ref().clone())
                    else {
                        continue;
                    };
                    let parties = Parties {
                        customer: set.customer.clone(),
                        vendor,
                        service_set: set.id.clone(),
                    };
                    let actual = resource_cost(sheet, &usage);
                    out.extend(cost_benefit(
                        contract,
                        baseline,
                        actual,
                        goals_held(met, windows),
                        label,
                        now,
                        &parties,
                    ));
                }
            }
        }
        out
    }

    /// Each customer allocation of the period not settled yet, split among
    /// the vendors of the customer's modules of that kind by contribution ×
    /// reputation, rounded so the parts sum exactly to the amount.
    pub(super) fn settlements(
        &self,
        period: &str,
        now: i64,
    ) -> Result<Vec<Charge>, vcp_store::ledger::LedgerError> {
        let report = self.inputs.judge.report.load_full();
        let modules = self.inputs.counters.modules();
        let mut out = Vec::new();
        for s in &self.inputs.file.settlements {
            let key = settlement_key(period, &s.customer, s.kind);
            if self.reader.has_key(&key)? {
                continue; // settled already: the allocation goes out once
            }
            let mut weights: Vec<(String, f64)> = Vec::new();
            for m in modules
                .iter()
                .filter(|m| m.customer == s.customer && m.kind == s.kind)
            {
                let Some(vendor) = &m.vendor else { continue };
                let contribution = report
                    .contribution
                    .iter()
                    .find(|c| c.module == m.id && c.control_plane == m.control_plane)
                    .map_or(0.0, |c| c.cumulative.max(0.0));
                let reputation = report
                    .reputation
                    .iter()
                    .find(|r| r.module == m.id && r.control_plane == m.control_plane)
                    .map_or(0.0, |r| r.components.score);
                match weights.iter_mut().find(|(v, _)| v == vendor) {
                    Some((_, w)) => *w += contribution * reputation,
                    None => weights.push((vendor.clone(), contribution * reputation)),
                }
            }
            for (i, (vendor, amount)) in split_amount(s.amount, &weights).into_iter().enumerate() {
                out.push(Charge {
                    // The first part carries the settlement's own key; the
                    // parts are written in one transaction.
                    key: match i {
                        0 => key.clone(),
                        _ => format!("{key}:{vendor}"),
                    },
                    at_ms: now,
                    debit: customer_account(&s.customer),
                    credit: vendor_account(&vendor),
                    amount,
                    module: String::new(),
                    control_plane: String::new(),
                    kind: "settlement".into(),
                    description: format!(
                        "{} allocation to {} modules, by contribution x reputation",
                        s.customer,
                        s.kind.as_str()
                    ),
                    quantity: 1.0,
                    unit_price: amount,
                });
            }
        }
        Ok(out)
    }
}

/// The key a settlement of `customer`'s allocation to `kind` in `period`
/// carries: one per (period, payer, allocation).
pub(super) fn settlement_key(
    period: &str,
    customer: &str,
    kind: vcp_common::module::Kind,
) -> String {
    format!("{period}:settlement:{customer}:{kind}")
}

/// Goal windows (total, met) since the last run.
pub(super) fn goal_delta(
    goals: &[GoalRecord],
    set: &str,
    before: Option<(u64, u64)>,
) -> (u64, u64) {
    let (w0, m0) = before.unwrap_or((0, 0));
    goals
        .iter()
        .find(|g| g.service_set == set)
        .map_or((0, 0), |g| {
            (g.windows.saturating_sub(w0), g.met.saturating_sub(m0))
        })
}
