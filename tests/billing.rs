//! Billing end to end: the demo scenario's contracts over real QUIC — fees
//! split between customer and vendor, savings shared while the goal holds,
//! a penalty when it breaks, the allocation settled exactly, debits equal
//! credits, and every statement summing to its total.

mod common;

use std::time::Duration;

use common::{init_logs, wait_until};
use vcp_common::module::ModuleLogic;
use vcp_module_sdk::predictive::PredictiveAutoscaler;
use vcp_store::ledger::{LedgerReader, Period, Statement};
use vcp_supervisor::config::SupervisorFile;

fn lines_of<'a>(s: &'a Statement, kind: &str) -> Vec<&'a vcp_store::ledger::Line> {
    s.lines.iter().filter(|l| l.kind == kind).collect()
}

async fn run(scenario: String) -> (LedgerReader, tempfile::TempDir) {
    run_with(
        scenario,
        PredictiveAutoscaler::new(vcp::demo::scenario::CUSTOM_MODULE, "predictive-labs"),
    )
    .await
}

async fn run_with<M: ModuleLogic + 'static>(
    scenario: String,
    module: M,
) -> (LedgerReader, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::fast(3, dir.path());
    opts.control = SupervisorFile::parse(&scenario, std::path::Path::new("scenario.toml")).unwrap();
    let (fleet, _services) = vcp::demo::closed_loop::start_scenario(dir.path(), 3, opts)
        .await
        .unwrap();
    let m = fleet.spawn_module(module).unwrap();
    let control = fleet.supervisor().control.clone();
    // Two goal windows (2 s each) with the module deciding.
    wait_until("goal windows", Duration::from_secs(30), || {
        control
            .judge
            .report
            .load()
            .goals
            .iter()
            .any(|g| g.service_set == "acme-shop" && g.windows >= 2)
    })
    .await;
    control.bill_now(false).await.unwrap();
    control.bill_now(true).await.unwrap();
    m.stop();
    fleet.stop().await;
    (LedgerReader::open(dir.path()).unwrap(), dir)
}

fn check_sums(ledger: &LedgerReader) {
    assert!(
        !ledger
            .accounts()
            .unwrap()
            .iter()
            .any(|a| a == "customer:operator"),
        "the operator never bills itself"
    );
    let totals = ledger.totals().unwrap();
    assert!(totals.entries > 0);
    assert_eq!(totals.total_debits, totals.total_credits, "double entry");
    for account in ledger.accounts().unwrap() {
        let s = ledger.statement(&account, &Period::All).unwrap();
        assert_eq!(
            s.lines.iter().map(|l| l.amount).sum::<i64>(),
            s.total,
            "{account}: lines sum to the total"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fees_split_savings_shared_allocation_settled() {
    init_logs();
    let (ledger, _dir) = run(vcp::demo::scenario::toml(3)).await;
    check_sums(&ledger);
    let acme = ledger.statement("customer:acme", &Period::All).unwrap();
    let vendor = ledger
        .statement("vendor:predictive-labs", &Period::All)
        .unwrap();

    // The 30/70 split: per run, the customer's and the vendor's request fee
    // lines add up to requests × 100 µ.
    let fees = |s: &Statement| {
        lines_of(s, "request_fee")
            .iter()
            .filter(|l| l.module == vcp::demo::scenario::CUSTOM_MODULE)
            .map(|l| l.amount)
            .sum::<i64>()
    };
    let (customer_fees, vendor_fees) = (fees(&acme), fees(&vendor));
    assert!(vendor_fees > 0 && customer_fees > 0);
    assert_eq!(
        (customer_fees + vendor_fees) % 100,
        0,
        "whole requests at 100 µ"
    );
    let requests = (customer_fees + vendor_fees) / 100;
    assert_eq!(
        customer_fees,
        requests * 30,
        "the customer pays 30 % of 100 µ per request"
    );

    // Savings: the goal held, so the vendor was paid its share by Acme.
    let savings = lines_of(&vendor, "savings_share");
    assert!(
        !savings.is_empty()
            && savings
                .iter()
                .all(|l| l.amount < 0 && l.counterparty == "customer:acme")
    );
    assert!(lines_of(&vendor, "penalty").is_empty());

    // Settlement: Acme's whole allocation went to the only vendor, once
    // per billing period (hours), although the billing ran twice. A run
    // that crosses the hour settles the hour that ended and the new one.
    let settled: i64 = lines_of(&vendor, "settlement")
        .iter()
        .map(|l| -l.amount)
        .sum();
    let hours: std::collections::BTreeSet<i64> =
        acme.lines.iter().map(|l| l.at_ms / 3_600_000).collect();
    assert_eq!(settled, 1_000_000 * hours.len() as i64, "hours {hours:?}");
    // Resources: Acme pays the operator for its instances.
    assert!(lines_of(&acme, "resource")
        .iter()
        .all(|l| l.amount > 0 && l.counterparty == "operator"));
    assert!(!lines_of(&acme, "resource").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_goal_earns_nothing_and_costs_the_penalty() {
    init_logs();
    // No latency is ever below -1 s: the goal breaks in every window.
    let scenario = vcp::demo::scenario::toml(3).replace("value = 0.1", "value = -1.0");
    let (ledger, _dir) = run(scenario).await;
    check_sums(&ledger);
    let vendor = ledger
        .statement("vendor:predictive-labs", &Period::All)
        .unwrap();
    assert!(
        lines_of(&vendor, "savings_share").is_empty(),
        "no savings share when the goal broke"
    );
    let penalties = lines_of(&vendor, "penalty");
    assert!(!penalties.is_empty());
    assert!(penalties
        .iter()
        .all(|l| l.amount == 500_000 && l.counterparty == "customer:acme"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savings_measured_against_the_default_module_in_the_shadow() {
    init_logs();
    // A lenient goal (p95 below 10 s) that two instances meet, and savings
    // measured against what the default autoscaler would have run.
    let scenario = vcp::demo::scenario::toml(3)
        .replace(
            "baseline = { prior_period_cost = 456000 }",
            "baseline = \"default_module\"",
        )
        .replace("value = 0.1", "value = 10.0");
    assert!(scenario.contains("\"default_module\""));
    let (ledger, _dir) = run_with(scenario, common::FixedInstances(2.0)).await;
    check_sums(&ledger);
    let acme = ledger.statement("customer:acme", &Period::All).unwrap();
    assert!(
        !acme.lines.iter().any(|l| l.module == "default-autoscaling"),
        "the shadow default module costs the customer nothing"
    );
    // The default autoscaler, in the shadow, scales the set out beyond two
    // instances; the vendor's share of the difference is paid.
    let vendor = ledger
        .statement("vendor:predictive-labs", &Period::All)
        .unwrap();
    assert!(
        vendor
            .lines
            .iter()
            .any(|l| l.kind == "savings_share" && l.amount < 0),
        "savings against the default module's baseline: {:?}",
        vendor.lines.iter().map(|l| &l.kind).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ledger_write_is_charged_exactly_once_later() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::fast(3, dir.path());
    opts.control = SupervisorFile::parse(
        &vcp::demo::scenario::toml(3),
        std::path::Path::new("s.toml"),
    )
    .unwrap();
    let (fleet, _services) = vcp::demo::closed_loop::start_scenario(dir.path(), 3, opts)
        .await
        .unwrap();
    let m = fleet
        .spawn_module(PredictiveAutoscaler::new(
            vcp::demo::scenario::CUSTOM_MODULE,
            "predictive-labs",
        ))
        .unwrap();
    let control = fleet.supervisor().control.clone();
    let requests = || {
        control
            .modules()
            .iter()
            .find(|m| m.id == vcp::demo::scenario::CUSTOM_MODULE)
            .map_or(0, |m| m.requests)
    };
    wait_until("requests", Duration::from_secs(30), || requests() >= 10).await;
    // A real failure of the ledger's database: a trigger refuses every
    // insert while `fail` holds a row.
    let db = rusqlite::Connection::open(dir.path().join(vcp_store::STORE_FILE)).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "CREATE TABLE fail (x); INSERT INTO fail VALUES (1);
         CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN EXISTS (SELECT 1 FROM fail)
         BEGIN SELECT RAISE(ABORT, 'injected: disk I/O error'); END;",
    )
    .unwrap();
    let failed = control.bill_now(false).await;
    assert!(
        failed.is_err_and(|e| e.contains("injected")),
        "the write fails"
    );
    m.stop();
    tokio::time::sleep(Duration::from_millis(600)).await; // answers in flight
    db.execute("DELETE FROM fail", []).unwrap();
    control.bill_now(false).await.unwrap();
    let total = requests();
    fleet.stop().await;
    let ledger = LedgerReader::open(dir.path()).unwrap();
    let charged: f64 = ["customer:acme", "vendor:predictive-labs"]
        .iter()
        .flat_map(|a| ledger.statement(a, &Period::All).unwrap().lines)
        .filter(|l| l.kind == "request_fee" && l.module == vcp::demo::scenario::CUSTOM_MODULE)
        .filter(|l| l.amount > 0)
        .map(|l| l.quantity)
        .sum();
    assert!(
        (charged - total as f64).abs() < 1e-6,
        "every request charged once: {charged} charged of {total}"
    );
    check_sums(&ledger);
}
