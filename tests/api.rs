//! The provisioning API over real HTTP against a loopback fleet: every
//! endpoint, the access matrix, provisioning workflows (success, rollback,
//! resume after a restart), bad input, feedback moving reputation,
//! statements and metrics.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{acme_scenario, init_logs, wait_until, FixedInstances};
use serde_json::Value;
use vcp::loopback::Loopback;
use vcp_common::module::{ModuleLogic, ModuleSpec, Proposal, Solicitation};
use vcp_supervisor::accounts::Role;
use vcp_supervisor::ApiOptions;

/// Globex owns `globex-api` on agent-1 and may use `globex-scaler`;
/// Initech's `initech-db` is on a host whose agent never reported.
const EXTRA: &str = r#"
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

struct Tokens {
    operator: String,
    acme: String,
    globex: String,
    vendor: String,
}

async fn start(dir: &std::path::Path, hold: Option<&str>) -> (Loopback, Tokens) {
    init_logs();
    let mut opts = common::fast(2, dir);
    opts.control = acme_scenario(vcp::scenario::CUSTOM_MODULE, "replace", EXTRA);
    opts.api = Some(ApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        hold_task: hold.map(str::to_owned),
    });
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
async fn call(
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

async fn get(addr: SocketAddr, path: &str, token: &str) -> (u16, Value) {
    call(addr, "GET", path, Some(token), None).await
}

/// Polls a workflow until it is final.
async fn finished(addr: SocketAddr, id: &str, token: &str) -> Value {
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

fn task_states(wf: &Value) -> Vec<(String, String)> {
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
struct Scaler(&'static str, f64);

impl ModuleLogic for Scaler {
    fn spec(&self) -> ModuleSpec {
        common::autoscaler_spec(self.0, "v")
    }
    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let mut f = FixedInstances(self.1);
        f.solicit(s)
    }
}

const GLOBEX_PLANE: &str =
    r#"{"modules": {"autoscaling": {"mode": "complement", "module": "globex-scaler"}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_runs_a_workflow_and_removal_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let control = fleet.supervisor().control.clone();

    // Before: globex's set is under the default plane.
    let (_, planes) = get(addr, "/v1/control-planes", &t.operator).await;
    let default = planes
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "default")
        .unwrap();
    assert!(default["service_sets"]
        .as_array()
        .unwrap()
        .contains(&"globex-api".into()));

    let (status, accepted) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&t.globex),
        Some(GLOBEX_PLANE),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["control_plane"], "vcp-globex");
    let wf_id = accepted["workflow"].as_str().unwrap().to_owned();
    let wf = finished(addr, &wf_id, &t.globex).await;
    assert_eq!(wf["state"], "succeeded", "{wf}");
    assert_eq!(
        task_states(&wf),
        [
            ("validate", "done"),
            ("authorise", "done"),
            ("register_modules", "done"),
            ("subscribe_sensors", "done"),
            ("activate", "done")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    let (status, plane) = get(addr, "/v1/control-planes/vcp-globex", &t.globex).await;
    assert_eq!(status, 200, "{plane}");
    assert_eq!(plane["source"], "api");
    assert_eq!(plane["service_sets"], serde_json::json!(["globex-api"]));
    assert_eq!(
        plane["modules"]["autoscaling"],
        serde_json::json!(["default-autoscaling", "globex-scaler"])
    );
    let (_, default) = get(addr, "/v1/control-planes/default", &t.operator).await;
    assert!(!default["service_sets"]
        .as_array()
        .unwrap()
        .contains(&"globex-api".into()));

    // The custom module can now register and its requests compete in
    // the new plane; the plane's default module runs too.
    let module = fleet.spawn_module(Scaler("globex-scaler", 3.0)).unwrap();
    wait_until("globex decisions", Duration::from_secs(20), || {
        control
            .settings
            .snapshot()
            .iter()
            .any(|d| &*d.control_plane == "vcp-globex" && d.contenders == 2)
    })
    .await;
    let (_, decisions) = get(addr, "/v1/decisions", &t.globex).await;
    let decisions = decisions.as_array().unwrap();
    assert!(!decisions.is_empty());
    assert!(
        decisions.iter().all(|d| d["control_plane"] == "vcp-globex"),
        "{decisions:?}"
    );
    let (_, m) = get(addr, "/v1/modules/globex-scaler", &t.globex).await;
    assert_eq!(m["planes"][0]["control_plane"], "vcp-globex", "{m}");
    assert_eq!(m["planes"][0]["connected"], true);

    // Removal: a deprovision workflow; the module's session is closed and
    // the set returns to the default plane.
    let (status, accepted) = call(
        addr,
        "DELETE",
        "/v1/control-planes/vcp-globex",
        Some(&t.globex),
        None,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let wf = finished(addr, accepted["workflow"].as_str().unwrap(), &t.globex).await;
    assert_eq!(wf["state"], "succeeded", "{wf}");
    let (status, _) = get(addr, "/v1/control-planes/vcp-globex", &t.globex).await;
    assert_eq!(status, 404);
    let (_, default) = get(addr, "/v1/control-planes/default", &t.operator).await;
    assert!(default["service_sets"]
        .as_array()
        .unwrap()
        .contains(&"globex-api".into()));
    wait_until("module session closed", Duration::from_secs(10), || {
        control
            .modules()
            .iter()
            .filter(|m| m.id == "globex-scaler")
            .all(|m| !m.connected)
    })
    .await;
    assert!(!control
        .registry
        .all()
        .iter()
        .any(|m| &*m.plane_id == "vcp-globex"));
    module.stop();
    // Provisioning again works (nothing was left behind).
    let (status, again) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&t.globex),
        Some(GLOBEX_PLANE),
    )
    .await;
    assert_eq!(status, 202, "{again}");
    let wf = finished(addr, again["workflow"].as_str().unwrap(), &t.globex).await;
    assert_eq!(wf["state"], "succeeded", "{wf}");
    // The workflows are listed for their owner only.
    let (_, mine) = get(addr, "/v1/workflows", &t.globex).await;
    assert_eq!(mine.as_array().unwrap().len(), 3);
    let (_, theirs) = get(addr, "/v1/workflows", &t.acme).await;
    assert_eq!(theirs.as_array().unwrap().len(), 0);
    let (status, _) = get(addr, &format!("/v1/workflows/{wf_id}"), &t.acme).await;
    assert_eq!(status, 404);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_rolls_the_workflow_back() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let initech = fleet
        .supervisor()
        .accounts
        .create_token("initech", Role::Customer)
        .unwrap();
    let body = r#"{"modules": {"autoscaling": {"mode": "replace", "module": "initech-scaler"}}}"#;
    let (status, accepted) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&initech),
        Some(body),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let wf = finished(addr, accepted["workflow"].as_str().unwrap(), &initech).await;
    assert_eq!(wf["state"], "rolled_back", "{wf}");
    let error = wf["error"].as_str().unwrap();
    assert!(
        error.contains("subscribe_sensors") && error.contains("agent-9"),
        "{error}"
    );
    let states = task_states(&wf);
    let state = |n: &str| states.iter().find(|(t, _)| t == n).unwrap().1.clone();
    assert_eq!(state("validate"), "undone");
    assert_eq!(state("authorise"), "undone");
    assert_eq!(state("subscribe_sensors"), "failed");
    assert_eq!(state("activate"), "skipped");
    // register_modules ran in parallel: either it finished and was undone,
    // or the rollback began before it started.
    assert!(["undone", "skipped"].contains(&state("register_modules").as_str()));
    // Nothing half-created: no plane, no record, and a retry is accepted.
    let (status, _) = get(addr, "/v1/control-planes/vcp-initech", &initech).await;
    assert_eq!(status, 404);
    assert!(fleet.supervisor().control.plane("vcp-initech").is_none());
    let (status, _) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&initech),
        Some(body),
    )
    .await;
    assert_eq!(status, 202);
    let _ = t;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_workflow_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // `activate` never finishes in this run, as if the supervisor died in it.
    let (mut fleet, t) = start(dir.path(), Some("activate")).await;
    let addr = fleet.api_addr();
    let (status, accepted) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&t.globex),
        Some(GLOBEX_PLANE),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["workflow"].as_str().unwrap().to_owned();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, wf) = get(addr, &format!("/v1/workflows/{id}"), &t.globex).await;
        let states = task_states(&wf);
        if states
            .iter()
            .any(|(n, s)| n == "activate" && s == "running")
        {
            assert_eq!(wf["state"], "running");
            break;
        }
        assert!(std::time::Instant::now() < end, "{wf}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fleet.supervisor().control.plane("vcp-globex").is_none());

    fleet.opts.api.as_mut().unwrap().hold_task = None;
    fleet
        .restart_supervisor(Duration::from_millis(100))
        .await
        .unwrap();
    let addr = fleet.api_addr();
    let wf = finished(addr, &id, &t.globex).await;
    assert_eq!(wf["state"], "succeeded", "{wf}");
    let activate = wf["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "activate")
        .unwrap();
    assert_eq!(activate["attempts"], 2, "{activate}");
    let validate = wf["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "validate")
        .unwrap();
    assert_eq!(validate["attempts"], 1, "{validate}");
    assert!(fleet.supervisor().control.plane("vcp-globex").is_some());

    // A provisioned plane survives the next restart too.
    fleet
        .restart_supervisor(Duration::from_millis(100))
        .await
        .unwrap();
    let (status, plane) = get(fleet.api_addr(), "/v1/control-planes/vcp-globex", &t.globex).await;
    assert_eq!(status, 200, "{plane}");
    assert_eq!(plane["source"], "api");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let post = |body: &'static str| {
        call(
            addr,
            "POST",
            "/v1/control-planes",
            Some(&t.globex),
            Some(body),
        )
    };
    let cases: [(&str, u16, &str); 9] = [
        ("{\"modules\": ", 400, "malformed JSON"),
        ("[1, 2]", 422, "invalid request"),
        (
            r#"{"modules": {}, "colour": "red"}"#,
            422,
            "unknown field `colour`",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "replace", "module": "nope"}}}"#,
            422,
            "unknown custom module \"nope\"",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "replace", "module": "acme-predictive"}}}"#,
            422,
            "offered to customer \"acme\"",
        ),
        (
            r#"{"modules": {"spread": {"mode": "replace", "module": "globex-scaler"}}}"#,
            422,
            "is a autoscaling module, not spread",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "keep", "module": "globex-scaler"}}}"#,
            422,
            "remove `module`",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "sideways"}}}"#,
            422,
            "unknown variant `sideways`",
        ),
        (
            r#"{"customer": "acme"}"#,
            403,
            "may not provision for \"acme\"",
        ),
    ];
    for (body, want, says) in cases {
        let (status, err) = post(body).await;
        assert_eq!(status, want, "{body} -> {err}");
        let msg = err["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{body}: {msg:?} does not say {says:?}");
    }
    // Acme already has a plane (from the configuration file).
    let (status, err) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&t.acme),
        Some("{}"),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    let (status, err) = call(
        addr,
        "DELETE",
        "/v1/control-planes/vcp-acme",
        Some(&t.acme),
        None,
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("configuration file"));
    let (status, _) = call(
        addr,
        "DELETE",
        "/v1/control-planes/default",
        Some(&t.operator),
        None,
    )
    .await;
    assert_eq!(status, 409);
    // The dashboard's cookie reads but does not change anything.
    let (status, err) = tokio::task::spawn_blocking({
        let cookie = format!("vcp_token={}", t.globex);
        move || {
            common::http::request(
                addr,
                "POST",
                "/v1/control-planes",
                &[("Cookie", cookie.as_str())],
                Some(b"{}"),
            )
        }
    })
    .await
    .map(|r| (r.status, r.body))
    .unwrap();
    assert_eq!(status, 401, "{err}");
    // Bad query parameters get a JSON error naming them.
    let (status, err) = get(addr, "/v1/decisions?limit=lots", &t.acme).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("limit"), "{err}");
    // Feedback out of range, unknown module, bad statement period/format.
    let fb = |m: &str, body: &'static str| {
        let path = format!("/v1/modules/{m}/feedback");
        let token = t.acme.clone();
        async move { call(addr, "POST", &path, Some(&token), Some(body)).await }
    };
    assert_eq!(fb("acme-predictive", r#"{"rating": 7}"#).await.0, 422);
    assert_eq!(fb("acme-predictive", r#"{"rating": "good"}"#).await.0, 422);
    assert_eq!(fb("acme-predictive", r#"{"stars": 3}"#).await.0, 422);
    assert_eq!(fb("no-such-module", r#"{"rating": 3}"#).await.0, 404);
    let (status, err) = get(addr, "/v1/statements/customer:acme?period=2026-13", &t.acme).await;
    assert_eq!(status, 422, "{err}");
    assert!(err["error"].as_str().unwrap().contains("month 13"), "{err}");
    let (status, _) = get(addr, "/v1/statements/customer:acme?format=xml", &t.acme).await;
    assert_eq!(status, 422);
    // Nothing was created.
    let (_, wfs) = get(addr, "/v1/workflows", &t.operator).await;
    assert_eq!(wfs, serde_json::json!([]));
    let (_, planes) = get(addr, "/v1/control-planes", &t.operator).await;
    assert_eq!(planes.as_array().unwrap().len(), 2);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_moves_reputation_and_statements_read_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let control = fleet.supervisor().control.clone();
    let module = fleet.spawn_module(FixedInstances(2.0)).unwrap();
    let feedback_of = || async {
        let (_, m) = get(addr, "/v1/modules/acme-predictive", &t.acme).await;
        m["planes"][0]["reputation"]["feedback"].as_f64()
    };
    wait_until(
        "acme-predictive registered",
        Duration::from_secs(20),
        || {
            control
                .modules()
                .iter()
                .any(|m| m.id == "acme-predictive" && m.connected)
        },
    )
    .await;
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let before = loop {
        if let Some(f) = feedback_of().await {
            break f;
        }
        assert!(std::time::Instant::now() < end, "no reputation published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for _ in 0..5 {
        let (status, rec) = call(
            addr,
            "POST",
            "/v1/modules/acme-predictive/feedback",
            Some(&t.acme),
            Some(r#"{"rating": 1, "comment": "scaled too late"}"#),
        )
        .await;
        assert_eq!(status, 201, "{rec}");
        assert_eq!(rec["control_plane"], "vcp-acme");
    }
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = feedback_of().await.unwrap();
        if now < before - 0.2 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "feedback {before} -> {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // At most 10 ratings a minute per account and module.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let body = Some(r#"{"rating": 3}"#);
        let path = "/v1/modules/acme-predictive/feedback";
        statuses.push(call(addr, "POST", path, Some(&t.acme), body).await.0);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429]);
    // Globex may not rate Acme's module, nor may a vendor rate at all.
    let (status, _) = call(
        addr,
        "POST",
        "/v1/modules/acme-predictive/feedback",
        Some(&t.globex),
        Some(r#"{"rating": 5}"#),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        addr,
        "POST",
        "/v1/modules/acme-predictive/feedback",
        Some(&t.vendor),
        Some(r#"{"rating": 5}"#),
    )
    .await;
    assert_eq!(status, 403);

    // Statements: JSON equals the ledger's, CSV has its header.
    control.bill_now(true).await.unwrap();
    module.stop();
    let ledger = vcp_supervisor::ledger::LedgerReader::open(dir.path()).unwrap();
    let want = ledger
        .statement("customer:acme", &vcp_supervisor::ledger::Period::All)
        .unwrap();
    assert!(!want.lines.is_empty());
    let (status, st) = get(addr, "/v1/statements/customer:acme?period=all", &t.acme).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["total"].as_i64().unwrap(), want.total);
    assert_eq!(st["lines"].as_array().unwrap().len(), want.lines.len());
    let (status, csv) = get(
        addr,
        "/v1/statements/customer:acme?period=all&format=csv",
        &t.acme,
    )
    .await;
    assert_eq!(status, 200);
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("account,period,time,module"), "{csv}");
    assert_eq!(csv.lines().count(), want.lines.len() + 1, "{csv}");
    let (status, vst) = get(addr, "/v1/statements/vendor:v?period=all", &t.vendor).await;
    assert_eq!(status, 200, "{vst}");
    fleet.stop().await;
}

/// Who calls: no token, an unknown token, then the four accounts.
const WHO: [&str; 6] = ["none", "bad", "operator", "acme", "globex", "vendor"];

/// One request of the access matrix.
struct Row {
    /// The path as documented, and the method.
    doc: &'static str,
    method: &'static str,
    path: String,
    body: Option<&'static str>,
    /// The status each of `WHO` gets.
    want: [u16; 6],
}

/// Order matters only for the last row, which creates.
fn matrix(wf: &str) -> Vec<Row> {
    let fb = Some(r#"{"rating": 4, "control_plane": "vcp-acme"}"#);
    vec![
        Row {
            doc: "/v1/openapi.json",
            method: "get",
            path: "/v1/openapi.json".into(),
            body: None,
            want: [200, 200, 200, 200, 200, 200],
        },
        Row {
            doc: "/v1/control-planes",
            method: "get",
            path: "/v1/control-planes".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/control-planes/{id}",
            method: "get",
            path: "/v1/control-planes/vcp-acme".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 403],
        },
        Row {
            doc: "/v1/control-planes/{id}",
            method: "delete",
            path: "/v1/control-planes/vcp-acme".into(),
            body: None,
            want: [401, 401, 409, 409, 404, 403],
        },
        Row {
            doc: "/v1/service-sets",
            method: "get",
            path: "/v1/service-sets".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/service-sets/{id}",
            method: "get",
            path: "/v1/service-sets/acme-shop".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 403],
        },
        Row {
            doc: "/v1/workflows",
            method: "get",
            path: "/v1/workflows".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/workflows/{id}",
            method: "get",
            path: format!("/v1/workflows/{wf}"),
            body: None,
            want: [401, 401, 200, 404, 200, 403],
        },
        Row {
            doc: "/v1/modules",
            method: "get",
            path: "/v1/modules".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 200],
        },
        Row {
            doc: "/v1/modules/{id}",
            method: "get",
            path: "/v1/modules/globex-scaler".into(),
            body: None,
            want: [401, 401, 200, 404, 200, 200],
        },
        Row {
            doc: "/v1/modules/{id}",
            method: "get",
            path: "/v1/modules/default-autoscaling".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 404],
        },
        Row {
            doc: "/v1/modules/{id}/feedback",
            method: "post",
            path: "/v1/modules/acme-predictive/feedback".into(),
            body: fb,
            want: [401, 401, 201, 201, 404, 403],
        },
        Row {
            doc: "/v1/decisions",
            method: "get",
            path: "/v1/decisions".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/statements/{account}",
            method: "get",
            path: "/v1/statements/customer:acme".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 404],
        },
        Row {
            doc: "/v1/statements/{account}",
            method: "get",
            path: "/v1/statements/vendor:v".into(),
            body: None,
            want: [401, 401, 200, 404, 404, 200],
        },
        Row {
            doc: "/v1/hosts",
            method: "get",
            path: "/v1/hosts".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/hosts/{id}",
            method: "get",
            path: "/v1/hosts/agent-2".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 403],
        },
        Row {
            doc: "/metrics",
            method: "get",
            path: "/metrics".into(),
            body: None,
            want: [401, 401, 200, 403, 403, 403],
        },
        // Creates globex's plane (once): the operator then gets 409.
        Row {
            doc: "/v1/control-planes",
            method: "post",
            path: "/v1/control-planes".into(),
            body: Some(r#"{"customer": "globex"}"#),
            want: [401, 401, 202, 403, 409, 403],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_checks_role_and_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let control = fleet.supervisor().control.clone();
    let module = fleet.spawn_module(FixedInstances(2.0)).unwrap();
    wait_until(
        "acme-predictive registered",
        Duration::from_secs(20),
        || {
            control
                .modules()
                .iter()
                .any(|m| m.id == "acme-predictive" && m.connected)
        },
    )
    .await;
    // Globex provisions a plane (all defaults) and removes it again.
    let (status, a) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&t.globex),
        Some("{}"),
    )
    .await;
    assert_eq!(status, 202, "{a}");
    let wf = a["workflow"].as_str().unwrap().to_owned();
    finished(addr, &wf, &t.globex).await;
    let (status, a) = call(
        addr,
        "DELETE",
        "/v1/control-planes/vcp-globex",
        Some(&t.globex),
        None,
    )
    .await;
    assert_eq!(status, 202, "{a}");
    finished(addr, a["workflow"].as_str().unwrap(), &t.globex).await;

    let tokens: [Option<&str>; 6] = [
        None,
        Some("vcp_0000000000000000000000000000000000000000000000000000000000000000"),
        Some(&t.operator),
        Some(&t.acme),
        Some(&t.globex),
        Some(&t.vendor),
    ];
    let rows = matrix(&wf);
    for Row {
        method,
        path,
        body,
        want,
        ..
    } in &rows
    {
        for (i, token) in tokens.iter().enumerate() {
            let (status, resp) = call(addr, &method.to_uppercase(), path, *token, *body).await;
            assert_eq!(status, want[i], "{} {method} {path}: {resp}", WHO[i]);
            if status == 202 {
                finished(addr, resp["workflow"].as_str().unwrap(), &t.operator).await;
            }
            if status >= 400 {
                assert!(
                    resp["error"].is_string(),
                    "{} {method} {path}: error body {resp}",
                    WHO[i]
                );
            }
        }
    }
    // The matrix covers every documented operation, and only those.
    let (_, doc) = call(addr, "GET", "/v1/openapi.json", None, None).await;
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(|m| (p.clone(), m.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    documented.push(("/metrics".into(), "get".into()));
    documented.sort();
    let mut tested: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.doc.to_owned(), r.method.to_owned()))
        .collect();
    tested.sort();
    tested.dedup();
    assert_eq!(documented, tested);

    // What each sees.
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, planes) = get(addr, "/v1/control-planes", &t.acme).await;
    assert_eq!(ids(&planes, "id"), ["vcp-acme"]);
    let (_, mods) = get(addr, "/v1/modules", &t.vendor).await;
    assert_eq!(
        ids(&mods, "id"),
        ["acme-predictive", "globex-scaler", "initech-scaler"]
    );
    let (_, mods) = get(addr, "/v1/modules", &t.acme).await;
    let acme_mods = ids(&mods, "id");
    assert!(
        acme_mods.contains(&"acme-predictive".to_owned())
            && !acme_mods.contains(&"globex-scaler".to_owned())
    );
    for m in mods.as_array().unwrap() {
        for p in m["planes"].as_array().unwrap() {
            assert_eq!(p["customer"], "acme", "acme sees another's record: {m}");
        }
    }
    let (_, sets) = get(addr, "/v1/service-sets", &t.acme).await;
    assert_eq!(ids(&sets, "id"), ["acme-shop"]);
    assert_eq!(sets[0]["control_plane"], "vcp-acme");
    let (_, sets) = get(addr, "/v1/service-sets", &t.operator).await;
    assert_eq!(
        ids(&sets, "id"),
        // Planes in order: default, vcp-acme, then vcp-globex (the matrix's
        // last row provisioned it).
        ["ops-web", "initech-db", "acme-shop", "globex-api"]
    );
    let (_, hosts) = get(addr, "/v1/hosts", &t.globex).await;
    assert_eq!(ids(&hosts, "id"), ["agent-1"]);
    for r in hosts[0]["readings"].as_object().unwrap().keys() {
        assert!(r == "cpu" || r.starts_with("cpu/"), "globex sees {r}");
    }
    let (_, hosts) = get(addr, "/v1/hosts", &t.operator).await;
    assert_eq!(ids(&hosts, "id"), ["agent-1", "agent-2"]);
    let mem = hosts[0]["memory_total_bytes"].as_f64().unwrap();
    assert_eq!(mem, common::mem_total_bytes());
    let (_, decisions) = get(addr, "/v1/decisions", &t.acme).await;
    assert!(decisions
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["control_plane"] == "vcp-acme"));
    module.stop();
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let control = fleet.supervisor().control.clone();
    wait_until("a round", Duration::from_secs(10), || {
        control.rounds().iter().any(|r| r.rounds > 0)
    })
    .await;
    control.bill_now(false).await.unwrap();
    let (status, text) = get(fleet.api_addr(), "/metrics", &t.operator).await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_owned();
    assert!(text.contains("vcp_"), "{text}");
    let promtool = common::require_tool("promtool", "prometheus");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fleet.stop().await;
}

#[test]
fn token_create_prints_a_token_that_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vcp = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vcp"))
            .args(["token", "create", "--data-dir"])
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let out = vcp(&["--account", "acme", "--role", "customer"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let accounts = vcp_supervisor::accounts::Accounts::open(&data).unwrap();
    let who = accounts.authenticate(&token).unwrap().unwrap();
    assert_eq!((who.account.as_str(), who.role), ("acme", Role::Customer));

    // The operator's account is "operator"; with a configuration, the
    // account must exist there in that role.
    let out = vcp(&["--account", "acme", "--role", "operator"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"operator\""));
    let config = dir.path().join("sup.toml");
    std::fs::write(&config, "[[customers]]\nid = \"acme\"\n").unwrap();
    let config = config.to_str().unwrap();
    let out = vcp(&[
        "--account",
        "globex",
        "--role",
        "customer",
        "--config",
        config,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no customer \"globex\""));
    assert!(vcp(&[
        "--account",
        "acme",
        "--role",
        "customer",
        "--config",
        config
    ])
    .status
    .success());
}
