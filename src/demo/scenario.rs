//! The demo's control plane scenario: the operator's own service set
//! `ops-web` (a SIMULATED service on agent-1) under the default control
//! plane, and customer Acme's `acme-shop` (a SIMULATED service on agent-2)
//! under Acme's virtual control plane, whose autoscaling is done by a
//! vendor's remote custom module (`acme-predictive`, the example predictive
//! autoscaler). Customer Globex's `globex-api` (a SIMULATED service on
//! agent-3) starts under the default plane; Globex may provision a virtual
//! control plane with module `globex-predictive` through the API. Every
//! set must keep its p95 latency below 100 ms.

use std::path::Path;

use vcp_supervisor::config::SupervisorFile;

/// Id of the demo's custom module.
pub const CUSTOM_MODULE: &str = "acme-predictive";
/// The demo customer's service set.
pub const CUSTOMER_SET: &str = "acme-shop";
/// A second customer, with no virtual control plane until it provisions
/// one through the API, and its service set and offered module.
pub const GLOBEX_SET: &str = "globex-api";
pub const GLOBEX_MODULE: &str = "globex-predictive";

/// The scenario's configuration as TOML, for `agents` loopback agents.
pub fn toml(agents: usize) -> String {
    let mut text = String::from(
        r#"evaluation_window_s = 2
billing_interval_s = 5

[prices]
period = "hour"
default_request_fee = 50
response_fee_per_kb = 20
compute_fee_per_ms = 100
request_fees = [{ kind = "autoscaling", parameter = "instances", fee = 100 }]
resources = { cpu_core_hour = 30000, memory_gib_hour = 4000, gpu_hour = 1500000, nic_gb = 10000 }

[[customers]]
id = "acme"
name = "Acme Corp"

[[vendors]]
id = "predictive-labs"

[[service_sets]]
id = "ops-web"
customer = "operator"
instances = { min = 1, max = 8, initial = 2 }
instance = { cores = 1.0, memory_gib = 2.0 }
members = [{ host = "agent-1", resource = "app/ops-web" }]
goals = [{ metric = "app.latency.p95", cmp = "below", value = 0.1 }]
"#,
    );
    if agents >= 2 {
        text.push_str(&format!(
            r#"
[[service_sets]]
id = "{CUSTOMER_SET}"
customer = "acme"
instances = {{ min = 1, max = 12, initial = 2 }}
instance = {{ cores = 1.0, memory_gib = 2.0 }}
members = [{{ host = "agent-2", resource = "app/acme-shop" }}]
goals = [{{ metric = "app.latency.p95", cmp = "below", value = 0.1 }}]

[[custom_modules]]
id = "{CUSTOM_MODULE}"
kind = "autoscaling"
vendor = "predictive-labs"
customer = "acme"

[[control_planes]]
customer = "acme"
modules = {{ autoscaling = {{ mode = "replace", module = "{CUSTOM_MODULE}" }} }}

# Acme pays 30 % of the module's fees, the vendor 70 %; the vendor earns half
# of the saving against Acme's prior cost (12 instances all hour) while the
# goal holds, and pays 0.5 units for every interval in which it breaks.
[[contracts]]
control_plane = "vcp-acme"
module = "{CUSTOM_MODULE}"
payer = {{ split = 0.3 }}
cost_benefit = {{ share = 0.5, baseline = {{ prior_period_cost = 456000 }}, penalty = 500000 }}

# Acme allocates 1 unit per period to its autoscaling service.
[[settlements]]
customer = "acme"
kind = "autoscaling"
amount = 1000000
"#
        ));
    }
    if agents >= 3 {
        text.push_str(&format!(
            r#"
# Globex runs under the operator's default plane until it provisions its
# own virtual control plane through the API (see README).
[[customers]]
id = "globex"
name = "Globex"

[[service_sets]]
id = "{GLOBEX_SET}"
customer = "globex"
instances = {{ min = 1, max = 12, initial = 2 }}
instance = {{ cores = 1.0, memory_gib = 2.0 }}
members = [{{ host = "agent-3", resource = "app/{GLOBEX_SET}" }}]
goals = [{{ metric = "app.latency.p95", cmp = "below", value = 0.1 }}]

[[custom_modules]]
id = "{GLOBEX_MODULE}"
kind = "autoscaling"
vendor = "predictive-labs"
customer = "globex"
"#
        ));
    }
    text.push_str(
        r#"
[[constraints]]
parameter = "instances"
min = 1
max = 12
max_step = 4
"#,
    );
    text
}

/// The scenario's parsed configuration.
pub fn control(agents: usize) -> anyhow::Result<SupervisorFile> {
    Ok(SupervisorFile::parse(
        &toml(agents),
        Path::new("<demo scenario>"),
    )?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn scenario_parses_for_any_fleet_size() {
        for n in 1..=5 {
            let c = super::control(n).unwrap();
            assert_eq!(c.control_planes.len(), usize::from(n >= 2));
        }
    }
}
