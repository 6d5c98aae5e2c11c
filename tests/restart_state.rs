//! Judgement and money across a supervisor's death: a supervisor in a
//! child process bills a remote module's requests every second and
//! checkpoints its state; it is SIGKILLed after the module stopped and
//! restarted on the same data directory. Every request is charged exactly
//! once, and the module's reputation and contribution are what they were.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::child::{free_udp_port, material, ChildSupervisor};
use common::{fast, init_logs, wait_until};
use vcp::loopback::RemoteModule;
use vcp_agent::Agent;
use vcp_common::identity::SUPERVISOR_NAME;
use vcp_module_sdk::predictive::PredictiveAutoscaler;
use vcp_module_sdk::ModuleConnect;
use vcp_store::ledger::{LedgerReader, Period};
use vcp_supervisor::checkpoint::{self, Checkpoint};
use vcp_supervisor::judge::{module_key, JudgeState};

/// Not a test by itself: the body of a child supervisor process.
#[test]
#[ignore = "started by other tests as a child process"]
fn child_supervisor() {
    common::child::run_if_child();
}

const MODULE: &str = "acme-predictive";

/// Billing every second, a fee per request, and the remote module's plane.
fn config() -> String {
    format!(
        "evaluation_window_s = 1\nbilling_interval_s = 1\n{}[prices]\ndefault_request_fee = 50\n",
        common::REMOTE_AUTOSCALER_PLANE
    )
}

fn saved(dir: &Path) -> Option<Checkpoint> {
    let ledger = LedgerReader::open(&dir.join("store")).ok()?;
    let row = ledger.state(checkpoint::NAME).ok()??;
    Checkpoint::decode(&row.bytes)
}

fn requests(c: &Checkpoint) -> u64 {
    c.usage("vcp-acme", MODULE)
        .map_or(0, |u| u.stats.params.iter().map(|(_, n)| n[0]).sum())
}

/// Request fee quantities charged for the module, customer and vendor.
fn charged(dir: &Path) -> f64 {
    let ledger = LedgerReader::open(&dir.join("store")).unwrap();
    ledger
        .accounts()
        .unwrap()
        .iter()
        .flat_map(|a| ledger.statement(a, &Period::All).unwrap().lines)
        .filter(|l| l.kind == "request_fee" && l.module == MODULE && l.amount > 0)
        .map(|l| l.quantity)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_supervisor_resumes_reputation_contribution_and_unbilled_usage() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    vcp::certs::write_fleet(dir.path(), &["agent-1".into()], &[MODULE.into()]).unwrap();
    std::fs::write(dir.path().join("supervisor.toml"), config()).unwrap();
    let port = free_udp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = ChildSupervisor::spawn(dir.path(), port);
    let opts = fast(1, dir.path());
    let agent = Agent::start(vcp::loopback::agent_options(
        "agent-1",
        addr,
        material(dir.path(), "agent-1"),
        &opts,
    ))
    .unwrap();
    let connect = ModuleConnect {
        supervisor: addr,
        server_name: SUPERVISOR_NAME.into(),
        tls: material(dir.path(), MODULE),
        max_frame: 16 << 20,
        renewal: None,
    };
    let module = RemoteModule::spawn(
        PredictiveAutoscaler::new(MODULE, "predictive-labs"),
        connect,
    );
    // Requests billed, goal windows credited to the module.
    wait_until("usage and judgement", Duration::from_secs(60), || {
        saved(dir.path()).is_some_and(|c| {
            let judge = JudgeState::decode(&c.judge);
            requests(&c) >= 10
                && judge.is_some_and(|j| {
                    j.contribution
                        .contributions()
                        .iter()
                        .any(|(_, c, _)| *c > 0.0)
                })
        })
    })
    .await;
    module.stop();
    // A checkpoint after the last request, not necessarily a billing run.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = saved(dir.path()).unwrap();
    child.kill();

    let child = ChildSupervisor::spawn(dir.path(), port);
    wait_until(
        "the restarted supervisor billing",
        Duration::from_secs(30),
        || saved(dir.path()).is_some_and(|c| c.at_ms > before.at_ms + 2_000),
    )
    .await;
    let after = saved(dir.path()).unwrap();
    let total = requests(&before);
    assert_eq!(requests(&after), total, "the counters carried over");
    let charged = charged(dir.path());
    assert!(
        (charged - total as f64).abs() < 1e-6,
        "every request charged exactly once: {charged} of {total}"
    );
    let (b, a) = (
        JudgeState::decode(&before.judge).unwrap(),
        JudgeState::decode(&after.judge).unwrap(),
    );
    let key = module_key("vcp-acme", MODULE);
    let contribution = |j: &JudgeState| {
        j.contribution
            .contributions()
            .into_iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, c, w)| (c, w))
    };
    assert_eq!(
        contribution(&a),
        contribution(&b),
        "contribution as before the kill"
    );
    assert!(contribution(&b).is_some_and(|(c, _)| c > 0.0));
    let score = |j: &JudgeState, at: i64| {
        vcp_core::reputation::Reputation::restore(Default::default(), j.reputation.clone())
            .components(&key, at)
    };
    let at = after.at_ms;
    assert_eq!(
        score(&a, at),
        score(&b, at),
        "reputation as before the kill"
    );
    assert!(score(&b, at).evidence.deadline > 0.0);
    eprintln!(
        "supervisor killed: {total} requests, {charged} charged; reputation {:.4} before and after",
        score(&a, at).score
    );
    drop(child);
    agent.stop().await;
}
