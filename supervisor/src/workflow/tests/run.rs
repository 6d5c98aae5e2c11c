//! Workflows run to success or roll back.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Barrier;

use super::{run_one, states, Bench, Script, DIAMOND, WAIT};
use crate::workflow::{TaskState, WorkflowError, WorkflowState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_runs_in_order_with_the_middle_in_parallel() {
    let bench = Bench::new(Script {
        meet: Some((
            vec!["register_modules", "subscribe_sensors"],
            Arc::new(Barrier::new(2)),
        )),
        ..Script::default()
    });
    let id = bench
        .engine
        .submit(DIAMOND.name, "acme", "cp-acme", json!({"modules": 2}))
        .unwrap();
    assert_eq!(id, "wf-1");
    let view = bench.finish(&id).await;
    assert_eq!(view.state, WorkflowState::Succeeded, "{view:?}");
    assert_eq!(view.error, None);
    assert!(view.finished_ms.is_some());
    assert!(view
        .tasks
        .iter()
        .all(|t| t.state == TaskState::Done && t.attempts == 1 && t.finished_ms.is_some()));
    assert_eq!(
        view.tasks[4].after,
        ["register_modules", "subscribe_sensors"]
    );
    let calls = bench.script.calls();
    assert_eq!(calls[..2], ["run:validate", "run:authorise"]);
    let mut middle = calls[2..4].to_vec();
    middle.sort();
    assert_eq!(middle, ["run:register_modules", "run:subscribe_sensors"]);
    assert_eq!(calls[4..], ["run:activate"]);
    // The view serialises with snake_case states, without the engine's
    // completion ranks.
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["state"], "succeeded");
    assert_eq!(json["tasks"][0]["state"], "done");
    assert!(json["tasks"][0].get("done_order").is_none(), "{json}");
    assert_eq!(bench.engine.list(Some("acme")).unwrap(), vec![view]);
    assert!(bench.engine.list(Some("globex")).unwrap().is_empty());
}

#[tokio::test]
async fn failure_waits_for_in_flight_then_undoes_and_skips() {
    let (bench, view) = run_one(Script {
        fail_run: vec!["subscribe_sensors"],
        delay: [("register_modules", Duration::from_millis(50))].into(),
        ..Script::default()
    })
    .await;
    assert_eq!(view.state, WorkflowState::RolledBack, "{view:?}");
    assert_eq!(
        view.error.as_deref(),
        Some("task subscribe_sensors failed: subscribe_sensors broke")
    );
    assert_eq!(
        states(&view),
        [
            ("validate", TaskState::Undone),
            ("authorise", TaskState::Undone),
            // Still running when subscribe_sensors failed: waited for, undone.
            ("register_modules", TaskState::Undone),
            ("subscribe_sensors", TaskState::Failed),
            ("activate", TaskState::Skipped),
        ]
    );
    assert_eq!(
        view.tasks[3].error.as_deref(),
        Some("subscribe_sensors broke")
    );
    assert_eq!(
        bench.script.calls()[4..],
        ["undo:register_modules", "undo:authorise", "undo:validate"]
    );
    assert!(!bench.script.called("run:activate"));
}

#[tokio::test]
async fn rollback_undoes_in_reverse_completion_order() {
    // register_modules finishes after subscribe_sensors although it comes
    // first in the template.
    let (bench, view) = run_one(Script {
        fail_run: vec!["activate"],
        delay: [("register_modules", Duration::from_millis(50))].into(),
        ..Script::default()
    })
    .await;
    assert_eq!(view.state, WorkflowState::RolledBack, "{view:?}");
    assert_eq!(
        view.error.as_deref(),
        Some("task activate failed: activate broke")
    );
    let undos: Vec<String> = bench
        .script
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("undo:"))
        .collect();
    assert_eq!(
        undos,
        [
            "undo:register_modules",
            "undo:subscribe_sensors",
            "undo:authorise",
            "undo:validate"
        ]
    );
}

#[tokio::test]
async fn failed_undo_ends_in_rollback_failed() {
    let (bench, view) = run_one(Script {
        fail_run: vec!["register_modules"],
        fail_undo: vec!["authorise"],
        ..Script::default()
    })
    .await;
    assert_eq!(view.state, WorkflowState::RollbackFailed, "{view:?}");
    assert_eq!(
        view.error.as_deref(),
        Some(
            "task register_modules failed: register_modules broke; \
             undo of task authorise failed: authorise broke"
        )
    );
    assert_eq!(
        view.tasks[0].state,
        TaskState::Done,
        "validate is not undone"
    );
    assert_eq!(view.tasks[1].state, TaskState::Failed);
    assert_eq!(
        view.tasks[1].error.as_deref(),
        Some("undo failed: authorise broke")
    );
    assert!(!bench.script.called("undo:validate"));
    // Final: nothing more happens.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(bench.engine.get(&view.id).unwrap().unwrap(), view);
}

#[tokio::test]
async fn wait_times_out() {
    let bench = Bench::new(Script {
        block: vec!["validate"],
        ..Script::default()
    });
    let id = bench.submit("acme", "cp-1");
    assert!(matches!(
        bench.engine.wait(&id, Duration::from_millis(30)).await,
        Err(WorkflowError::Timeout { .. })
    ));
}

#[tokio::test]
async fn lookups_of_unknown_workflows_and_templates_fail_cleanly() {
    let bench = Bench::new(Script::default());
    assert_eq!(bench.engine.get("wf-99").unwrap(), None);
    assert!(matches!(
        bench.engine.wait("wf-99", WAIT).await,
        Err(WorkflowError::NotFound(_))
    ));
    assert!(matches!(
        bench.engine.submit("nope", "acme", "cp-1", json!({})),
        Err(WorkflowError::UnknownTemplate(t)) if t == "nope"
    ));
}
