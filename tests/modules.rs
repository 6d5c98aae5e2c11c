//! Control planes and modules over real QUIC: deadlines, constraints,
//! customer isolation, containment of misbehaving modules, credentials.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{init_logs, wait_until};
use vcp::loopback::{Loopback, LoopbackOptions, RemoteModule};
use vcp_common::module::{param, Kind, ModuleLogic, ModuleSpec, Proposal, Solicitation, Target};
use vcp_core::stats::ModuleSummary;
use vcp_module_sdk::{forever, serve, ModuleError};
use vcp_supervisor::config::SupervisorFile;

const MODULE: &str = "acme-test";

/// The shared Acme scenario, with constraints: instances clipped to 1..12
/// and at most 4 per round, LB weights above 1 rejected.
fn scenario() -> SupervisorFile {
    common::acme_scenario(
        MODULE,
        "replace",
        r#"
[[constraints]]
parameter = "instances"
min = 1
max = 12
max_step = 4
on_violation = "clip"
[[constraints]]
parameter = "lb.weight"
max = 1.0
on_violation = "reject"
"#,
    )
}

async fn start(dir: &std::path::Path) -> Loopback {
    let mut opts = common::fast(2, dir);
    opts.control = scenario();
    Loopback::start(opts).await.unwrap()
}

fn spec(id: &str, outputs: &[&str]) -> ModuleSpec {
    ModuleSpec {
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        ..common::autoscaler_spec(id, "v")
    }
}

fn instances(set: &str, value: f64) -> Proposal {
    Proposal {
        target: Target::ServiceSet(set.into()),
        parameter: param::INSTANCES.into(),
        value,
    }
}

/// A remote module whose behaviour the test scripts.
struct Scripted {
    id: String,
    sleep: Duration,
    proposals: Vec<Proposal>,
    /// Hosts and resources seen in each view.
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Scripted {
    fn new(proposals: Vec<Proposal>) -> Self {
        Scripted {
            id: MODULE.into(),
            sleep: Duration::ZERO,
            proposals,
            seen: Arc::default(),
        }
    }
}

impl ModuleLogic for Scripted {
    fn spec(&self) -> ModuleSpec {
        spec(&self.id, &[param::INSTANCES])
    }
    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let mut seen = self.seen.lock().unwrap();
        for h in &s.view.hosts {
            for r in &h.readings {
                seen.push((h.host.clone(), r.resource.clone()));
            }
        }
        drop(seen);
        std::thread::sleep(self.sleep);
        self.proposals.clone()
    }
}

fn try_module(fleet: &Loopback, id: &str) -> Option<ModuleSummary> {
    fleet
        .supervisor()
        .control
        .modules()
        .into_iter()
        .find(|m| m.id == id && m.control_plane == "vcp-acme")
}

/// The module's counters once its rounds have stopped: the module and the
/// fleet are stopped first, so no round is between two of its counters.
async fn final_summary(m: RemoteModule, fleet: Loopback, id: &str) -> ModuleSummary {
    m.stop();
    let stopped = fleet.stop().await;
    stopped
        .control
        .modules()
        .into_iter()
        .find(|m| m.id == id)
        .expect("the module was counted")
}

fn module(fleet: &Loopback, id: &str) -> ModuleSummary {
    try_module(fleet, id).unwrap_or_else(|| panic!("module {id} not registered"))
}

fn autoscaling_rounds(fleet: &Loopback) -> u64 {
    fleet
        .supervisor()
        .control
        .rounds()
        .iter()
        .find(|r| r.kind == Kind::Autoscaling)
        .unwrap()
        .rounds
}

fn in_force(fleet: &Loopback, set: &str) -> Option<f64> {
    fleet
        .supervisor()
        .control
        .settings
        .value(&Target::ServiceSet(set.into()), param::INSTANCES)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_is_excluded_and_counted_late() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path()).await;
    let mut slow = Scripted::new(vec![instances("acme-shop", 5.0)]);
    slow.sleep = Duration::from_millis(120);
    let m = fleet.spawn_module(slow).unwrap();
    wait_until("late answers", Duration::from_secs(20), || {
        try_module(&fleet, MODULE).is_some_and(|m| m.late >= 3)
    })
    .await;
    assert_eq!(
        in_force(&fleet, "acme-shop"),
        None,
        "a late request never takes effect"
    );
    // The operator's default autoscaler is unaffected.
    assert!(in_force(&fleet, "ops-web").is_some());
    let s = final_summary(m, fleet, MODULE).await;
    assert!(s.deadline_misses >= 3, "{s:?}");
    assert_eq!(s.requests, s.late, "every request was late: {s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_bounds_and_foreign_targets_are_clipped_or_rejected() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path()).await;
    let logic = Scripted::new(vec![
        instances("acme-shop", 1000.0),
        // Another customer's service set and another customer's host.
        instances("ops-web", 1.0),
        Proposal {
            target: Target::Resource {
                host: "agent-1".into(),
                resource: vcp_common::resource::ResourceId::new("nic/lo").unwrap(),
            },
            parameter: param::INSTANCES.into(),
            value: 1.0,
        },
        // Not in the module's declared outputs.
        Proposal {
            target: Target::Member {
                service_set: "acme-shop".into(),
                host: "agent-2".into(),
            },
            parameter: param::LB_WEIGHT.into(),
            value: 2.0,
        },
    ]);
    let seen = logic.seen.clone();
    let m = fleet.spawn_module(logic).unwrap();
    wait_until("a few answers", Duration::from_secs(20), || {
        try_module(&fleet, MODULE).is_some_and(|m| m.responses >= 3)
    })
    .await;
    // Clipped to the step (2 → 6) first, then to the maximum 12.
    wait_until(
        "instances to reach the maximum",
        Duration::from_secs(20),
        || in_force(&fleet, "acme-shop") == Some(12.0),
    )
    .await;
    let settings = fleet.supervisor().control.settings.snapshot();
    assert!(
        settings
            .iter()
            .all(|d| &*d.module != MODULE || d.target == Target::ServiceSet("acme-shop".into())),
        "acme's module configured something outside acme's resources"
    );

    // Isolation: Acme's module never saw agent-1.
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|(h, _)| h == "agent-2"),
        "acme saw another customer's host"
    );
    let s = final_summary(m, fleet, MODULE).await;
    assert_eq!(
        s.clipped, s.responses,
        "1000 instances is clipped every round: {s:?}"
    );
    assert_eq!(s.rejected, 3 * s.responses, "{s:?}");
    assert!(s.last_violation.is_some());
}

/// Panics on every solicitation.
struct Panicker;
impl ModuleLogic for Panicker {
    fn spec(&self) -> ModuleSpec {
        spec("panicker", &[param::INSTANCES])
    }
    fn solicit(&mut self, _: &Solicitation) -> Vec<Proposal> {
        panic!("module bug")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_hanging_modules_do_not_delay_rounds() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path()).await;
    let control = fleet.supervisor().control.clone();
    let plane = control.plane("vcp-acme").unwrap();
    let panicker = control.add_builtin(plane, Box::new(|| Box::new(Panicker)), false, false);
    let mut hang = Scripted::new(vec![instances("acme-shop", 3.0)]);
    hang.sleep = Duration::from_secs(3600);
    let hung = fleet.spawn_module(hang).unwrap();

    let start_rounds = autoscaling_rounds(&fleet);
    wait_until("rounds to go on", Duration::from_secs(20), || {
        autoscaling_rounds(&fleet) >= start_rounds + 10
    })
    .await;
    assert!(panicker.stats.faults.load(Ordering::Relaxed) >= 5);
    let hung_stats = module(&fleet, MODULE);
    assert!(hung_stats.deadline_misses >= 5, "{hung_stats:?}");
    assert!(
        hung_stats.busy >= 4,
        "a hung module is skipped, not queued: {hung_stats:?}"
    );
    let max_us = control
        .rounds()
        .iter()
        .find(|r| r.kind == Kind::Autoscaling)
        .unwrap()
        .max_round_us;
    assert!(
        max_us < (50 + 250) * 1000,
        "a round took {max_us} µs with a 50 ms deadline"
    );
    // The default module of the operator's plane still decides.
    assert!(in_force(&fleet, "ops-web").is_some());
    drop(hung); // its thread sleeps on; the process ends with the test
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_disconnects_mid_round_is_recorded_and_rounds_go_on() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path()).await;
    // A hand-driven module: registers, takes one solicitation, then its
    // connection dies without answering.
    let connect = fleet.module_connect(MODULE).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(
        vcp_transport::tls::client_config(&connect.tls, vcp_common::frame::ALPN_MODULE, 1 << 20)
            .unwrap(),
    );
    let conn = ep
        .connect(fleet.addr, &connect.server_name)
        .unwrap()
        .await
        .unwrap();
    let (send, recv) = conn.open_bi().await.unwrap();
    let mut framed = vcp_transport::framed::Framed::new(send, recv, 16 << 20);
    framed
        .write(&vcp_common::frame::Frame::Register(spec(
            MODULE,
            &[param::INSTANCES],
        )))
        .await
        .unwrap();
    loop {
        match framed.read().await.unwrap() {
            Some((vcp_common::frame::Frame::Solicit(_), _)) => break,
            Some(_) => continue,
            None => panic!("stream ended"),
        }
    }
    conn.close(0u32.into(), b"killed");
    wait_until("the fault to be recorded", Duration::from_secs(20), || {
        try_module(&fleet, MODULE).is_some_and(|m| m.faults >= 1)
    })
    .await;
    let s = module(&fleet, MODULE);
    assert!(!s.connected);
    let r = autoscaling_rounds(&fleet);
    wait_until("the next rounds", Duration::from_secs(20), || {
        autoscaling_rounds(&fleet) >= r + 3
    })
    .await;

    // The module comes back and serves again.
    let back = fleet
        .spawn_module(Scripted::new(vec![instances("acme-shop", 4.0)]))
        .unwrap();
    wait_until(
        "the module to decide again",
        Duration::from_secs(20),
        || in_force(&fleet, "acme-shop") == Some(4.0),
    )
    .await;
    assert!(module(&fleet, MODULE).connected);
    back.stop();
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_with_a_bad_credential_is_refused() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path()).await;

    // A credential for another module id.
    let mut logic = Scripted::new(vec![]);
    let wrong = fleet.module_connect("someone-else").unwrap();
    match serve(&mut logic, &wrong, forever()).await {
        Err(ModuleError::Refused(reason)) => assert!(
            reason.contains(
                "the certificate is module \"someone-else\"'s, the spec claims \"acme-test\""
            ),
            "{reason}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A module the supervisor does not know, with its own valid credential.
    let mut unknown = Scripted::new(vec![]);
    unknown.id = "stranger".into();
    let conn = fleet.module_connect("stranger").unwrap();
    match serve(&mut unknown, &conn, forever()).await {
        Err(ModuleError::Refused(reason)) => assert!(reason.contains("not configured"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A credential from another CA fails the handshake.
    let other = vcp::certs::FleetCa::new("other").unwrap();
    let mut foreign = fleet.module_connect(MODULE).unwrap();
    let theirs = other.material(&other.module("acme-test").unwrap());
    (foreign.tls.chain, foreign.tls.key) = (theirs.chain, theirs.key);
    match serve(&mut Scripted::new(vec![]), &foreign, forever()).await {
        Err(e @ (ModuleError::Connection(_) | ModuleError::Stream(_))) => {
            assert!(e.to_string().contains("certificate"), "{e}")
        }
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    assert!(
        fleet
            .supervisor()
            .control
            .modules()
            .iter()
            .all(|m| m.id != MODULE),
        "never registered"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_scenario_runs_the_predictive_module_in_place_of_the_default() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts: LoopbackOptions = common::fast(3, dir.path());
    opts.control = vcp::demo::scenario::control(3).unwrap();
    let (fleet, _services) = vcp::demo::closed_loop::start_scenario(dir.path(), 3, opts)
        .await
        .unwrap();
    let m: RemoteModule = fleet
        .spawn_module(vcp_module_sdk::predictive::PredictiveAutoscaler::new(
            vcp::demo::scenario::CUSTOM_MODULE,
            "predictive-labs",
        ))
        .unwrap();
    wait_until("both sets to be decided", Duration::from_secs(30), || {
        let s = fleet.supervisor().control.settings.snapshot();
        let by = |set: &str| {
            s.get(&Target::ServiceSet(set.into()), param::INSTANCES)
                .map(|d| d.module.to_string())
        };
        by("acme-shop").as_deref() == Some(vcp::demo::scenario::CUSTOM_MODULE)
            && by("ops-web").as_deref() == Some("default-autoscaling")
    })
    .await;
    let stopped = {
        m.stop();
        fleet.stop().await
    };
    let report = vcp::demo::report::build(&stopped.fleet, &stopped.control, None).unwrap();
    let acme: Vec<_> = report
        .modules
        .iter()
        .filter(|m| m.customer == "acme")
        .collect();
    assert!(
        acme.iter().all(|m| m.id != "default-autoscaling"),
        "replaced, not kept"
    );
    assert!(report
        .rounds
        .iter()
        .any(|r| r.kind == Kind::Autoscaling && r.rounds > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_module_closes_its_session_at_once() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path()).await;
    let m = fleet
        .spawn_module(Scripted::new(vec![instances("acme-shop", 3.0)]))
        .unwrap();
    wait_until("the module to decide", Duration::from_secs(20), || {
        in_force(&fleet, "acme-shop") == Some(3.0)
    })
    .await;
    assert_eq!(m.stop(), "stopped", "run ends on the shutdown signal");
    // Well before the idle timeout: the module said it was leaving.
    wait_until(
        "the supervisor to see it go",
        Duration::from_secs(3),
        || try_module(&fleet, MODULE).is_some_and(|m| !m.connected),
    )
    .await;
    fleet.stop().await;
}
