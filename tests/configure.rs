//! Closing the loop, first part: mediated configurations reach the agent of
//! the host they concern, are applied by its actuator, and the outcome —
//! applied or failed — is counted per module; a configuration for an
//! offline host is delivered when it reconnects.

mod common;

use std::time::Duration;

use common::{init_logs, wait_until};
use vcp::loopback::Loopback;
use vcp_agent::actuators::ActuatorConfig;
use vcp_agent::Agent;
use vcp_common::module::{param, ModuleLogic, ModuleSpec, Proposal, Solicitation, Target};
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::dispatch::DeliveryCounts;

const MODULE: &str = "acme-counter";

fn scenario() -> SupervisorFile {
    common::acme_scenario(MODULE, "replace", "")
}

/// Proposes 1, 2, 3, 4, 5, 1, … instances: every decision is a change.
struct Counter;

impl ModuleLogic for Counter {
    fn spec(&self) -> ModuleSpec {
        common::autoscaler_spec(MODULE, "v")
    }
    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        vec![Proposal {
            target: Target::ServiceSet("acme-shop".into()),
            parameter: param::INSTANCES.into(),
            value: (1 + s.round % 5) as f64,
        }]
    }
}

fn exec(script: &str) -> ActuatorConfig {
    ActuatorConfig::Exec {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        timeout_ms: 5_000,
        env: Default::default(),
        pass_env: Vec::new(),
    }
}

fn counts(fleet: &Loopback, module: &str) -> DeliveryCounts {
    fleet
        .supervisor()
        .control
        .dispatch
        .counts
        .load()
        .iter()
        .find(|c| c.module == module)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_counted_and_offline_hosts_catch_up() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("applied.jsonl");
    let mut opts = common::fast(0, dir.path());
    opts.control = scenario();
    let fleet = Loopback::start(opts).await.unwrap();
    // agent-1 applies by appending the configuration to a file; agent-2's
    // actuator fails every time.
    let start = |id: &str, actuator: ActuatorConfig| {
        let mut o = fleet.agent_options(id, fleet.ca.material(&fleet.ca.agent(id).unwrap()));
        o.actuator = actuator;
        Agent::start(o).unwrap()
    };
    let a1 = start("agent-1", exec(&format!("cat >> {}", journal.display())));
    let a2 = start("agent-2", exec("echo 'no orchestrator here' >&2; exit 3"));
    let m = fleet.spawn_module(Counter).unwrap();

    wait_until("outcomes of both kinds", Duration::from_secs(30), || {
        counts(&fleet, "default-autoscaling").applied >= 1 && counts(&fleet, MODULE).failed >= 2
    })
    .await;
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.contains("\"ops-web\"") && text.contains("\"instances\""),
        "the actuator got the JSON: {text}"
    );
    let failed = counts(&fleet, MODULE);
    assert!(
        failed
            .last_failure
            .as_deref()
            .unwrap_or("")
            .contains("no orchestrator here"),
        "{failed:?}"
    );

    // agent-2 goes offline; Acme's decisions keep changing meanwhile.
    a2.stop().await;
    wait_until(
        "the supervisor to see agent-2 go",
        Duration::from_secs(20),
        || {
            !fleet
                .supervisor()
                .fleet
                .agent("agent-2")
                .stats
                .connected
                .load(std::sync::atomic::Ordering::Relaxed)
        },
    )
    .await;
    let before = counts(&fleet, MODULE);
    wait_until(
        "newer decisions to replace waiting ones",
        Duration::from_secs(20),
        || counts(&fleet, MODULE).superseded > before.superseded,
    )
    .await;
    let offline = counts(&fleet, MODULE);
    assert_eq!(
        offline.sent, before.sent,
        "nothing is sent to an offline host"
    );
    assert!(
        offline.superseded > before.superseded,
        "newer decisions replace waiting ones"
    );
    // It comes back (a new incarnation, now with a working actuator) and
    // receives what waited.
    let a2 = start("agent-2", ActuatorConfig::DryRun);
    wait_until(
        "the waiting configuration to be applied",
        Duration::from_secs(30),
        || counts(&fleet, MODULE).applied >= 1,
    )
    .await;
    m.stop();
    a1.stop().await;
    a2.stop().await;
    fleet.stop().await;
}

/// Asks the same number of instances every round.
struct Steady(f64);

impl ModuleLogic for Steady {
    fn spec(&self) -> ModuleSpec {
        common::autoscaler_spec(MODULE, "v")
    }
    fn solicit(&mut self, _: &Solicitation) -> Vec<Proposal> {
        vec![Proposal {
            target: Target::ServiceSet("acme-shop".into()),
            parameter: param::INSTANCES.into(),
            value: self.0,
        }]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_offline_past_the_ttl_converges_to_the_decision_in_force() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("applied.jsonl");
    let mut opts = common::fast(0, dir.path());
    opts.control = common::acme_scenario(MODULE, "replace", "");
    opts.control.configuration_ttl_s = 1;
    let fleet = Loopback::start(opts).await.unwrap();
    // The decision never changes while agent-2 is away: only the level
    // (in force, not applied) says it must be sent when the host is back.
    let m = fleet.spawn_module(Steady(5.0)).unwrap();
    wait_until("the expiry", Duration::from_secs(30), || {
        counts(&fleet, MODULE).expired >= 1
    })
    .await;
    let mut o = fleet.agent_options(
        "agent-2",
        fleet.ca.material(&fleet.ca.agent("agent-2").unwrap()),
    );
    o.actuator = exec(&format!("cat >> {}", journal.display()));
    let a2 = Agent::start(o).unwrap();
    wait_until(
        "the decision in force applied",
        Duration::from_secs(30),
        || counts(&fleet, MODULE).applied >= 1,
    )
    .await;
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains("\"value\":5"), "{text}");
    m.stop();
    a2.stop().await;
    fleet.stop().await;
}
