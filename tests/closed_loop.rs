//! The closed loop on measured outcomes: two SIMULATED services under the
//! same load curve, one scaled by the default autoscaler, the other by a
//! deliberately bad custom autoscaler that keeps one instance. The bad one
//! misses the latency goal, loses reputation against the default, and is
//! not paid a savings share — it pays the penalty instead.

mod common;

use std::time::Duration;

use common::{init_logs, wait_until};
use vcp_store::ledger::{LedgerReader, Period};
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::judge::module_key;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_autoscaler_loses_reputation_and_its_savings_share() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::fast(2, dir.path());
    let text =
        vcp::demo::scenario::toml(2).replace("evaluation_window_s = 2", "evaluation_window_s = 1");
    opts.control = SupervisorFile::parse(&text, std::path::Path::new("scenario.toml")).unwrap();
    let (fleet, _services) = vcp::demo::closed_loop::start_scenario(dir.path(), 2, opts)
        .await
        .unwrap();
    let m = fleet.spawn_module(common::FixedInstances(1.0)).unwrap();
    let control = fleet.supervisor().control.clone();
    let goals = |set: &str| {
        control
            .judge
            .report
            .load()
            .goals
            .iter()
            .find(|g| g.service_set == set)
            .map(|g| (g.windows, g.met))
            .unwrap_or_default()
    };
    wait_until(
        "eight goal windows of each set",
        Duration::from_secs(40),
        || goals("acme-shop").0 >= 8 && goals("ops-web").0 >= 8,
    )
    .await;
    let (bad_windows, bad_met) = goals("acme-shop");
    let (good_windows, good_met) = goals("ops-web");
    assert!(
        bad_met <= 1,
        "one instance cannot keep p95 under 100 ms: {bad_met}/{bad_windows}"
    );
    assert!(
        good_met + 3 >= good_windows,
        "the default autoscaler scales out in time: {good_met}/{good_windows}"
    );

    let rep = control.judge.reputation.load();
    let bad = rep.get(&module_key("vcp-acme", vcp::demo::scenario::CUSTOM_MODULE));
    let good = rep.get(&module_key("default", "default-autoscaling"));
    assert!(
        bad + 0.1 < good,
        "reputation follows measured outcomes: bad {bad:.3}, default {good:.3}"
    );

    control.bill_now(true).await.unwrap();
    m.stop();
    fleet.stop().await;
    let ledger = LedgerReader::open(dir.path()).unwrap();
    let vendor = ledger
        .statement("vendor:predictive-labs", &Period::All)
        .unwrap();
    assert!(
        !vendor.lines.iter().any(|l| l.kind == "savings_share"),
        "no savings share for a broken goal"
    );
    assert!(vendor
        .lines
        .iter()
        .any(|l| l.kind == "penalty" && l.counterparty == "customer:acme"));
}
