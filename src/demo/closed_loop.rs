//! The closed loop on one machine: agents whose `exec` actuator writes each
//! instance configuration to a file, and a SIMULATED service per service set
//! (see [`crate::demo::simulated`]) that reads it and reports its load, latency and
//! utilisation to the agent's application-metrics endpoint. Decisions thus
//! change measured outcomes, which drive goals, reputation, contribution and
//! cost-benefit sharing.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use vcp_agent::actuators::ActuatorConfig;

use crate::demo::simulated::{SimConfig, SimService};
use crate::loopback::Loopback;

/// The actuator script: keeps the last `instances` configuration it is given.
const SCRIPT: &str = r#"read -r line
case "$line" in
  *'"parameter":"instances"'*) printf '%s\n' "$line" > "$1" ;;
esac
"#;

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts agent `agent` with an exec actuator and an application endpoint,
/// and a simulated service for `service_set` reporting as `app/<set>`.
pub fn add_service_host(
    fleet: &mut Loopback,
    dir: &Path,
    agent: &str,
    service_set: &str,
) -> anyhow::Result<SimService> {
    let script = dir.join("apply-instances.sh");
    std::fs::write(&script, SCRIPT).context("writing the actuator script")?;
    let config_file = dir.join(format!("{service_set}.instances.json"));
    let port = free_udp_port()?;
    let resource = format!("app/{service_set}");
    let (script_arg, file_arg) = (
        script.display().to_string(),
        config_file.display().to_string(),
    );
    fleet.add_agent(agent, |o| {
        o.actuator = ActuatorConfig::Exec {
            program: "sh".into(),
            args: vec![script_arg, file_arg],
            timeout_ms: 5_000,
            env: Default::default(),
            pass_env: Vec::new(),
        };
        o.sensors.app_port = Some(port);
        // The endpoint only accepts listed resources: the service's own.
        o.sensors.app_resources = vec![resource.clone()];
    })?;
    let endpoint: SocketAddr = ([127, 0, 0, 1], port).into();
    let cfg = SimConfig::new(&resource, config_file, endpoint);
    Ok(SimService::start(cfg, Duration::from_millis(250))?)
}

/// The demo scenario's fleet: agent-1 hosts `ops-web`, agent-2 `acme-shop`,
/// agent-3 `globex-api` (simulated services), any further agents only
/// report telemetry.
pub async fn start_scenario(
    dir: &Path,
    agents: usize,
    opts: crate::loopback::LoopbackOptions,
) -> anyhow::Result<(Loopback, Vec<SimService>)> {
    let mut fleet = Loopback::start(crate::loopback::LoopbackOptions { agents: 0, ..opts }).await?;
    let mut services = vec![add_service_host(&mut fleet, dir, "agent-1", "ops-web")?];
    if agents >= 2 {
        services.push(add_service_host(
            &mut fleet,
            dir,
            "agent-2",
            crate::demo::scenario::CUSTOMER_SET,
        )?);
    }
    if agents >= 3 {
        services.push(add_service_host(
            &mut fleet,
            dir,
            "agent-3",
            crate::demo::scenario::GLOBEX_SET,
        )?);
    }
    for i in 4..=agents {
        fleet.add_agent(&format!("agent-{i}"), |_| {})?;
    }
    Ok((fleet, services))
}
