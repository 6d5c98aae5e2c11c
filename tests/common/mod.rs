//! Shared helpers of the loopback tests: a fleet on 127.0.0.1 with
//! ephemeral ports and fast sampling.
#![allow(dead_code)]

pub mod child;
pub mod hostile;
pub mod http;
pub mod relay;

use std::time::{Duration, Instant};

use vcp::loopback::{Loopback, LoopbackOptions};

pub fn fast(agents: usize, dir: &std::path::Path) -> LoopbackOptions {
    LoopbackOptions {
        agents,
        data_dir: dir.to_owned(),
        sample_interval: Duration::from_millis(100),
        window: Duration::from_millis(200),
        spool_batches: 10_000,
        state_dir: None,
        control: Default::default(),
        api: None,
    }
}

pub async fn start(agents: usize, dir: &std::path::Path) -> Loopback {
    Loopback::start(fast(agents, dir))
        .await
        .expect("loopback fleet starts")
}

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// MemTotal of this machine in bytes, read independently of the agent.
pub fn mem_total_bytes() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
    let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024.0
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Operator set `ops-web` on agent-1, Acme's `acme-shop` on agent-2 (whole
/// hosts), and Acme's virtual control plane using custom module `module`
/// for autoscaling in `mode` (`replace` or `complement`), solicited every
/// 200 ms with a 50 ms deadline. `extra` is appended (more tables).
pub fn acme_scenario(
    module: &str,
    mode: &str,
    extra: &str,
) -> vcp_supervisor::config::SupervisorFile {
    let text = format!(
        r#"
[[customers]]
id = "acme"
[[vendors]]
id = "v"
[[service_sets]]
id = "ops-web"
customer = "operator"
instances = {{ min = 1, max = 8, initial = 2 }}
members = [{{ host = "agent-1" }}]
[[service_sets]]
id = "acme-shop"
customer = "acme"
instances = {{ min = 1, max = 12, initial = 2 }}
members = [{{ host = "agent-2" }}]
[[custom_modules]]
id = "{module}"
kind = "autoscaling"
vendor = "v"
customer = "acme"
[[control_planes]]
customer = "acme"
modules = {{ autoscaling = {{ mode = "{mode}", module = "{module}" }} }}
[solicitation.autoscaling]
cadence_ms = 200
deadline_ms = 50
{extra}"#
    );
    vcp_supervisor::config::SupervisorFile::parse(&text, std::path::Path::new("test.toml")).unwrap()
}

/// The spec of a test autoscaler `id` that may request instances.
pub fn autoscaler_spec(id: &str, vendor: &str) -> vcp_common::module::ModuleSpec {
    use vcp_common::module::{param, Kind, ModuleSpec, SensorSelector};
    ModuleSpec {
        id: id.into(),
        kind: Kind::Autoscaling,
        vendor: vendor.into(),
        version: "0".into(),
        inputs: vec![SensorSelector::metric("*")],
        outputs: vec![param::INSTANCES.into()],
        goals: vec![],
        deadline_ms: 50,
        custom_sensors: vec![],
    }
}

/// A custom autoscaler (the demo's `acme-predictive` id) that asks the same
/// number of instances for every service set it sees.
pub struct FixedInstances(pub f64);

impl vcp_common::module::ModuleLogic for FixedInstances {
    fn spec(&self) -> vcp_common::module::ModuleSpec {
        autoscaler_spec(vcp::demo::scenario::CUSTOM_MODULE, "predictive-labs")
    }
    fn solicit(
        &mut self,
        s: &vcp_common::module::Solicitation,
    ) -> Vec<vcp_common::module::Proposal> {
        use vcp_common::module::{param, Proposal, Target};
        s.view
            .service_sets
            .iter()
            .map(|set| Proposal {
                target: Target::ServiceSet(set.id.clone()),
                parameter: param::INSTANCES.into(),
                value: self.0,
            })
            .collect()
    }
}

/// The path of a program the tests need (CI installs it; so does the
/// README's test command); fails the test with how to install it.
pub fn require_tool(name: &str, debian_package: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([std::path::PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: install Debian's `{debian_package}` package (scripts/test does)")
        })
}

/// `vcp ARGS --data-dir DIR` (the operator's commands on a store); its
/// standard output, the test failing if the command does.
pub fn vcp_on(dir: &std::path::Path, args: &[&str]) -> String {
    let out = vcp_output(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vcp {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// `vcp … --data-dir DIR`, which must fail; what it said on stderr.
pub fn vcp_fails_on(dir: &std::path::Path, args: &[&str]) -> String {
    let out = vcp_output(dir, args);
    assert!(!out.status.success(), "vcp {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn vcp_output(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vcp"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

/// Acme's plane whose autoscaler is the remote module `acme-predictive` of
/// predictive-labs, over one host `agent-1`, solicited every 200 ms (TOML:
/// top-level keys first, then tables; more tables may follow).
pub const REMOTE_AUTOSCALER_PLANE: &str = r#"
default_modules = false
[[customers]]
id = "acme"
[[vendors]]
id = "predictive-labs"
[[service_sets]]
id = "acme-shop"
customer = "acme"
instances = { min = 1, max = 12, initial = 2 }
members = [{ host = "agent-1" }]
goals = [{ metric = "cpu.utilization", cmp = "below", value = 2.0 }]
[[custom_modules]]
id = "acme-predictive"
kind = "autoscaling"
vendor = "predictive-labs"
customer = "acme"
[[control_planes]]
customer = "acme"
modules = { autoscaling = { mode = "replace", module = "acme-predictive" } }
[solicitation.autoscaling]
cadence_ms = 200
deadline_ms = 50
"#;
