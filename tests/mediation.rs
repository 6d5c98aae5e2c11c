//! Mediation by reputation over real QUIC: in a virtual control plane that
//! complements the default autoscaler with a custom one, the module that
//! misses its deadlines loses reputation and the decisions; feedback moves
//! reputation; contribution follows influence.

mod common;

use std::time::Duration;

use common::{init_logs, wait_until};
use vcp::loopback::Loopback;
use vcp_common::module::{param, ModuleLogic, ModuleSpec, Proposal, Solicitation, Target};
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::judge::module_key;

const MODULE: &str = "acme-slow";

fn scenario() -> SupervisorFile {
    let text = format!(
        r#"
evaluation_window_s = 1
[[customers]]
id = "acme"
[[vendors]]
id = "v"
[[service_sets]]
id = "acme-shop"
customer = "acme"
instances = {{ min = 1, max = 12, initial = 2 }}
members = [{{ host = "agent-1" }}]
goals = [{{ metric = "cpu.utilization", cmp = "below", value = 2.0 }}]
[[custom_modules]]
id = "{MODULE}"
kind = "autoscaling"
vendor = "v"
customer = "acme"
[[control_planes]]
customer = "acme"
modules = {{ autoscaling = {{ mode = "complement", module = "{MODULE}" }} }}
[solicitation.autoscaling]
cadence_ms = 200
deadline_ms = 50
"#
    );
    SupervisorFile::parse(&text, std::path::Path::new("test.toml")).unwrap()
}

/// Answers with 7 instances, late every other round.
struct Flaky {
    round: u64,
}

impl ModuleLogic for Flaky {
    fn spec(&self) -> ModuleSpec {
        common::autoscaler_spec(MODULE, "v")
    }
    fn solicit(&mut self, _: &Solicitation) -> Vec<Proposal> {
        self.round += 1;
        if self.round.is_multiple_of(2) {
            std::thread::sleep(Duration::from_millis(120));
        }
        vec![Proposal {
            target: Target::ServiceSet("acme-shop".into()),
            parameter: param::INSTANCES.into(),
            value: 7.0,
        }]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_misses_deadlines_loses_reputation_and_precedence() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::fast(1, dir.path());
    opts.control = scenario();
    let fleet = Loopback::start(opts).await.unwrap();
    let m = fleet.spawn_module(Flaky { round: 0 }).unwrap();
    let control = fleet.supervisor().control.clone();
    let custom = module_key("vcp-acme", MODULE);
    let default = module_key("vcp-acme", "default-autoscaling");
    let score = |k: &vcp_supervisor::judge::ModuleKey| control.judge.reputation.load().get(k);

    wait_until("reputations to separate", Duration::from_secs(30), || {
        let rep = control.judge.reputation.load();
        rep.contains(&custom) && rep.get(&default) > rep.get(&custom) + 0.1
    })
    .await;
    // Precedence: the better reputation decides the instances.
    wait_until(
        "the default module to decide",
        Duration::from_secs(10),
        || {
            control
                .settings
                .snapshot()
                .get(&Target::ServiceSet("acme-shop".into()), param::INSTANCES)
                .is_some_and(|d| &*d.module == "default-autoscaling" && d.contenders <= 2)
        },
    )
    .await;
    wait_until(
        "the report to show the module",
        Duration::from_secs(5),
        || {
            control
                .judge
                .report
                .load()
                .reputation
                .iter()
                .any(|r| r.module == MODULE)
        },
    )
    .await;
    let judged = control.judge.report.load_full();
    let rep = judged
        .reputation
        .iter()
        .find(|r| r.module == MODULE)
        .unwrap();
    assert!(rep.components.deadline < 0.8, "{rep:?}");

    // Feedback moves reputation: five stars lift the custom module.
    let before = score(&custom);
    for _ in 0..5 {
        control
            .judge
            .feedback(custom.clone(), 5.0, None)
            .await
            .unwrap();
    }
    assert!(
        control
            .judge
            .feedback(custom.clone(), 6.0, None)
            .await
            .is_err(),
        "ratings are 1–5"
    );
    wait_until("feedback to be published", Duration::from_secs(5), || {
        score(&custom) > before
    })
    .await;

    // Contribution: goal windows were credited to the deciding modules.
    wait_until("contribution", Duration::from_secs(10), || {
        control
            .judge
            .report
            .load()
            .contribution
            .iter()
            .any(|c| c.cumulative > 0.0)
    })
    .await;
    let shares: f64 = control
        .judge
        .report
        .load()
        .contribution
        .iter()
        .map(|c| c.reward_share)
        .sum();
    assert!(
        (shares - 1.0).abs() < 1e-9,
        "reward shares sum to 1: {shares}"
    );
    m.stop();
    fleet.stop().await;
}
