//! Provisioning workflows: success and removal, rollback, resume.

use std::time::Duration;

use vcp_store::accounts::Role;

use crate::common::wait_until;
use crate::*;

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
    let path = "/v1/control-planes/vcp-globex";
    let wf = workflow(addr, "DELETE", path, &t.globex, None).await;
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
    let path = "/v1/control-planes";
    let wf = workflow(addr, "POST", path, &t.globex, Some(GLOBEX_PLANE)).await;
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
