//! The provisioning API over real HTTP against a loopback fleet: every
//! endpoint, the access matrix, provisioning workflows (success, rollback,
//! resume after a restart), bad input, feedback moving reputation,
//! statements and metrics.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod https;
mod input;
mod ledger;
mod limits;
mod tokens;
mod workflows;

use std::net::SocketAddr;
use std::time::Duration;

use common::{acme_scenario, init_logs, wait_until, FixedInstances};
use serde_json::Value;
use vcp::loopback::Loopback;
use vcp_common::module::{ModuleLogic, ModuleSpec, Proposal, Solicitation};
use vcp_store::accounts::Role;
use vcp_supervisor::ApiOptions;

/// Globex owns `globex-api` on agent-1 and may use `globex-scaler`;
/// Initech's `initech-db` is on a host whose agent never reported.
pub const EXTRA: &str = r#"
[[customers]]
id = "globex"
[[customers]]
id = "initech"
[[service_sets]]
id = "globex-api"
customer = "globex"
instances = { min = 1, max = 6, initial = 1 }
members = [{ host = "agent-1", resource = "cpu" }]
[[service_sets]]
id = "initech-db"
customer = "initech"
instances = { min = 1, max = 4, initial = 1 }
members = [{ host = "agent-9" }]
[[custom_modules]]
id = "globex-scaler"
kind = "autoscaling"
vendor = "v"
customer = "globex"
[[custom_modules]]
id = "initech-scaler"
kind = "autoscaling"
vendor = "v"
customer = "initech"
[prices]
period = "hour"
default_request_fee = 50
"#;

pub struct Tokens {
    pub operator: String,
    pub acme: String,
    pub globex: String,
    pub vendor: String,
}

pub async fn start(dir: &std::path::Path, hold: Option<&str>) -> (Loopback, Tokens) {
    start_with(dir, hold, |_| {}).await
}

/// As [`start`], with the fleet's options changed by `tweak` first.
pub async fn start_with(
    dir: &std::path::Path,
    hold: Option<&str>,
    tweak: impl FnOnce(&mut vcp::loopback::LoopbackOptions),
) -> (Loopback, Tokens) {
    init_logs();
    let mut opts = common::fast(2, dir);
    opts.control = acme_scenario(vcp::demo::scenario::CUSTOM_MODULE, "replace", EXTRA);
    opts.api = Some(ApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        hold_task: hold.map(str::to_owned),
        tls: None,
    });
    tweak(&mut opts);
    let fleet = Loopback::start(opts).await.unwrap();
    let a = &fleet.supervisor().accounts;
    let tokens = Tokens {
        operator: a.create_token("operator", Role::Operator).unwrap(),
        acme: a.create_token("acme", Role::Customer).unwrap(),
        globex: a.create_token("globex", Role::Customer).unwrap(),
        vendor: a.create_token("v", Role::Vendor).unwrap(),
    };
    // Both agents have reported (so their hosts are known).
    let f = fleet.supervisor().fleet.clone();
    wait_until("agents report", Duration::from_secs(20), || {
        f.summaries().iter().filter(|a| a.readings > 0).count() == 2
    })
    .await;
    (fleet, tokens)
}

/// One request; the body parsed as JSON when it is JSON.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (method, path) = (method.to_owned(), path.to_owned());
    let (token, body) = (token.map(str::to_owned), body.map(str::to_owned));
    let (status, text) = tokio::task::spawn_blocking(move || {
        common::http::send(addr, &method, &path, token.as_deref(), body.as_deref())
    })
    .await
    .unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    (status, json)
}

pub async fn get(addr: SocketAddr, path: &str, token: &str) -> (u16, Value) {
    call(addr, "GET", path, Some(token), None).await
}

/// Waits until module `id` has a live session.
pub async fn wait_connected(control: &vcp_supervisor::control::Control, id: &str) {
    wait_until(&format!("{id} connected"), Duration::from_secs(20), || {
        control.modules().iter().any(|m| m.id == id && m.connected)
    })
    .await;
}

/// A request that starts a workflow (202), and the workflow once final.
pub async fn workflow(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Value {
    let (status, accepted) = call(addr, method, path, Some(token), body).await;
    assert_eq!(status, 202, "{method} {path}: {accepted}");
    finished(addr, accepted["workflow"].as_str().unwrap(), token).await
}

/// Polls a workflow until it is final.
pub async fn finished(addr: SocketAddr, id: &str, token: &str) -> Value {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, wf) = get(addr, &format!("/v1/workflows/{id}"), token).await;
        assert_eq!(status, 200, "{wf}");
        if wf["state"] != "running" && wf["state"] != "rolling_back" {
            return wf;
        }
        assert!(std::time::Instant::now() < end, "workflow {id} stuck: {wf}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn task_states(wf: &Value) -> Vec<(String, String)> {
    wf["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A custom autoscaler with any id that asks `n` instances of every set.
pub struct Scaler(&'static str, f64);

impl ModuleLogic for Scaler {
    fn spec(&self) -> ModuleSpec {
        common::autoscaler_spec(self.0, "v")
    }
    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let mut f = FixedInstances(self.1);
        f.solicit(s)
    }
}

pub const GLOBEX_PLANE: &str =
    r#"{"modules": {"autoscaling": {"mode": "complement", "module": "globex-scaler"}}}"#;
