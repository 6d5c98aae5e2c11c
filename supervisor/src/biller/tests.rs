//! Settlement at most once per (period, customer, kind), whatever the
//! vendors are when it runs again.

use std::path::Path;

use vcp_common::module::{param, Kind, ModuleLogic, ModuleSpec, Proposal, Solicitation};

use super::*;
use crate::config::SupervisorFile;
use crate::control::Control;
use crate::fleet::Fleet;
use vcp_store::ledger::LedgerReader;
use vcp_store::Store;

const CONFIG: &str = r#"
[[customers]]
id = "acme"
[[vendors]]
id = "v1"
[[vendors]]
id = "v2"
[[service_sets]]
id = "shop"
customer = "acme"
instances = { min = 1, max = 4, initial = 1 }
members = [{ host = "h1" }]
[[custom_modules]]
id = "m1"
kind = "autoscaling"
vendor = "v1"
customer = "acme"
[[custom_modules]]
id = "m2"
kind = "autoscaling"
vendor = "v2"
customer = "acme"
[[control_planes]]
customer = "acme"
modules = { autoscaling = { mode = "replace", module = "m1" } }
[[settlements]]
customer = "acme"
kind = "autoscaling"
amount = 1000000
"#;

struct Quiet(&'static str);

impl ModuleLogic for Quiet {
    fn spec(&self) -> ModuleSpec {
        ModuleSpec {
            id: self.0.into(),
            kind: Kind::Autoscaling,
            vendor: String::new(),
            version: "0".into(),
            inputs: vec![],
            outputs: vec![param::INSTANCES.into()],
            goals: vec![],
            deadline_ms: 50,
            custom_sensors: vec![],
        }
    }
    fn solicit(&mut self, _: &Solicitation) -> Vec<Proposal> {
        vec![]
    }
}

#[tokio::test]
async fn a_second_settlement_in_the_period_with_other_vendors_pays_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let (store, records) = Store::open(dir.path()).unwrap();
    let fleet = Arc::new(Fleet::new(store.agents(), records));
    let file = SupervisorFile::parse(CONFIG, Path::new("s.toml")).unwrap();
    let control = Control::start(file, fleet, None, Vec::new(), &|_| Vec::new());
    let plane = control.plane("vcp-acme").unwrap();
    control.add_builtin(
        plane.clone(),
        Box::new(|| Box::new(Quiet("m1"))),
        false,
        false,
    );
    let (ledger, reader) = (store.ledger(), LedgerReader::open(dir.path()).unwrap());
    let biller = Biller {
        inputs: Inputs {
            file: control.file.clone(),
            judge: control.judge.clone(),
            fleet: control.fleet.clone(),
            settings: control.settings.clone(),
            counters: control.clone(),
        },
        ledger: ledger.clone(),
        reader,
        last_ms: 0,
        modules: HashMap::new(),
        goals: HashMap::new(),
        period: "2026-12-01T10".into(),
    };
    let first = biller.settlements("2026-12-01T10", 1).unwrap();
    assert_eq!(first.iter().map(|c| c.amount).sum::<i64>(), 1_000_000);
    ledger.record_durable(first).await.unwrap();
    // Another vendor's module joins; the period is settled already.
    control.add_builtin(plane, Box::new(|| Box::new(Quiet("m2"))), false, false);
    let again = biller.settlements("2026-12-01T10", 2).unwrap();
    assert!(again.is_empty(), "{again:?}");
    // The next period is settled afresh, among both vendors.
    let next = biller.settlements("2026-12-01T11", 3).unwrap();
    assert_eq!(next.iter().map(|c| c.amount).sum::<i64>(), 1_000_000);
    let vendors: std::collections::BTreeSet<&str> =
        next.iter().map(|c| c.credit.as_str()).collect();
    assert_eq!(vendors.len(), 2, "{next:?}");
    control.stop();
}
