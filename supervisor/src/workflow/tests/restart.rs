//! A restart (the engine dropped mid-flight, the database reopened)
//! resumes what was unfinished.

use super::{Bench, Script, DIAMOND};
use crate::workflow::{TaskState, WorkflowError, WorkflowState};

#[tokio::test]
async fn resumes_after_restart() {
    let mut bench = Bench::new(Script {
        block: vec!["subscribe_sensors"],
        ..Script::default()
    });
    let id = bench.submit("acme", "cp-1");
    bench
        .until(&id, |v| {
            v.tasks[2].state == TaskState::Done && v.tasks[3].state == TaskState::Running
        })
        .await;
    bench.engine.stop();
    assert!(matches!(
        bench
            .engine
            .submit(DIAMOND.name, "acme", "cp-2", serde_json::json!({})),
        Err(WorkflowError::Stopped)
    ));
    assert!(matches!(
        bench.engine.wait(&id, super::WAIT).await,
        Err(WorkflowError::Stopped)
    ));

    bench.restart(vec![&DIAMOND], Script::default());
    let view = bench.finish(&id).await;
    assert_eq!(view.state, WorkflowState::Succeeded, "{view:?}");
    assert_eq!(
        bench.script.calls(),
        ["run:subscribe_sensors", "run:activate"]
    );
    let attempts: Vec<u32> = view.tasks.iter().map(|t| t.attempts).collect();
    assert_eq!(attempts, [1, 1, 1, 2, 1]);
}

#[tokio::test]
async fn rollback_goes_on_after_restart() {
    // subscribe_sensors fails while register_modules hangs: the crash
    // happens while rolling back, waiting for register_modules.
    let mut bench = Bench::new(Script {
        fail_run: vec!["subscribe_sensors"],
        block: vec!["register_modules"],
        ..Script::default()
    });
    let id = bench.submit("acme", "cp-1");
    bench
        .until(&id, |v| v.state == WorkflowState::RollingBack)
        .await;

    bench.restart(vec![&DIAMOND], Script::default());
    let view = bench.finish(&id).await;
    assert_eq!(view.state, WorkflowState::RolledBack, "{view:?}");
    assert_eq!(
        bench.script.calls(),
        [
            "run:register_modules",
            "undo:register_modules",
            "undo:authorise",
            "undo:validate"
        ]
    );
    assert_eq!(view.tasks[4].state, TaskState::Skipped);
}

#[tokio::test]
async fn unknown_template_at_resume_fails_cleanly() {
    let mut bench = Bench::new(Script {
        block: vec!["validate"],
        ..Script::default()
    });
    let id = bench.submit("acme", "cp-1");
    bench
        .until(&id, |v| v.tasks[0].state == TaskState::Running)
        .await;

    bench.restart(vec![], Script::default());
    let view = bench.finish(&id).await;
    assert_eq!(view.state, WorkflowState::RollbackFailed);
    assert!(
        view.error.as_deref().unwrap().contains("\"diamond\""),
        "{view:?}"
    );
    assert!(bench.script.calls().is_empty());
    assert_eq!(view.tasks[0].state, TaskState::Failed, "{view:?}");
    assert!(view.tasks[1..]
        .iter()
        .all(|t| t.state == TaskState::Skipped));
}

#[tokio::test]
async fn ids_are_unique_across_reopen() {
    let mut bench = Bench::new(Script::default());
    let a = bench.submit("acme", "cp-1");
    let b = bench.submit("globex", "cp-2");
    bench.finish(&a).await;
    bench.finish(&b).await;

    bench.restart(vec![&DIAMOND], Script::default());
    let c = bench.submit("acme", "cp-3");
    assert_eq!(
        [a.as_str(), b.as_str(), c.as_str()],
        ["wf-1", "wf-2", "wf-3"]
    );
    bench.finish(&c).await;
    let acme: Vec<String> = bench
        .engine
        .list(Some("acme"))
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(acme, [a, c]);
    assert_eq!(bench.engine.list(None).unwrap().len(), 3);
}
