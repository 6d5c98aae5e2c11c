use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Barrier;

use super::{
    Actions, BoxFuture, Engine, TaskDef, TaskState, Template, WorkflowError, WorkflowInfo,
    WorkflowState, WorkflowView,
};

static DIAMOND: Template = Template {
    name: "provision",
    tasks: &[
        TaskDef {
            name: "validate",
            after: &[],
        },
        TaskDef {
            name: "authorise",
            after: &["validate"],
        },
        TaskDef {
            name: "register_modules",
            after: &["authorise"],
        },
        TaskDef {
            name: "subscribe_sensors",
            after: &["authorise"],
        },
        TaskDef {
            name: "activate",
            after: &["register_modules", "subscribe_sensors"],
        },
    ],
};

const WAIT: Duration = Duration::from_secs(10);

/// Records `run:<task>` / `undo:<task>` as each call starts; can fail,
/// delay or block given tasks, and make a group of runs meet at a barrier.
#[derive(Default)]
struct Script {
    log: Arc<Mutex<Vec<String>>>,
    fail_run: Vec<&'static str>,
    fail_undo: Vec<&'static str>,
    block: Vec<&'static str>,
    delay: HashMap<&'static str, Duration>,
    meet: Option<(Vec<&'static str>, Arc<Barrier>)>,
}

impl Script {
    fn call(
        &self,
        op: &'static str,
        wf: &WorkflowInfo,
        task: &str,
    ) -> BoxFuture<'static, Result<(), String>> {
        assert_eq!(wf.template, "provision");
        self.log.lock().unwrap().push(format!("{op}:{task}"));
        let fail = match op {
            "run" => self.fail_run.contains(&task),
            _ => self.fail_undo.contains(&task),
        };
        let block = op == "run" && self.block.contains(&task);
        let delay = self.delay.get(task).copied().filter(|_| op == "run");
        let barrier = self
            .meet
            .as_ref()
            .filter(|(tasks, _)| op == "run" && tasks.contains(&task))
            .map(|(_, b)| b.clone());
        let task = task.to_owned();
        Box::pin(async move {
            if block {
                std::future::pending::<()>().await;
            }
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if let Some(b) = barrier {
                tokio::time::timeout(Duration::from_secs(5), b.wait())
                    .await
                    .map_err(|_| format!("{task} never met its sibling"))?;
            }
            if fail {
                return Err(format!("{task} broke"));
            }
            Ok(())
        })
    }

    fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Actions for Script {
    fn run(&self, wf: &WorkflowInfo, task: &str) -> BoxFuture<'static, Result<(), String>> {
        self.call("run", wf, task)
    }
    fn undo(&self, wf: &WorkflowInfo, task: &str) -> BoxFuture<'static, Result<(), String>> {
        self.call("undo", wf, task)
    }
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data").join("workflows.sqlite")
}

fn open(path: &Path, script: &Arc<Script>) -> Arc<Engine> {
    Engine::open(path, vec![&DIAMOND], script.clone()).unwrap()
}

fn states(view: &WorkflowView) -> Vec<(&str, TaskState)> {
    view.tasks
        .iter()
        .map(|t| (t.name.as_str(), t.state))
        .collect()
}

/// Polls until `pred` holds for the workflow.
async fn until(engine: &Engine, id: &str, pred: impl Fn(&WorkflowView) -> bool) {
    tokio::time::timeout(WAIT, async {
        loop {
            if pred(&engine.get(id).unwrap().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition never held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_runs_in_order_with_the_middle_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        meet: Some((
            vec!["register_modules", "subscribe_sensors"],
            Arc::new(Barrier::new(2)),
        )),
        ..Script::default()
    });
    let engine = open(&db(&dir), &script);
    let id = engine
        .submit("provision", "acme", "cp-acme", json!({"modules": 2}))
        .unwrap();
    assert_eq!(id, "wf-1");
    let view = engine.wait(&id, WAIT).await.unwrap();
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
    let calls = script.calls();
    assert_eq!(calls[..2], ["run:validate", "run:authorise"]);
    let mut middle = calls[2..4].to_vec();
    middle.sort();
    assert_eq!(middle, ["run:register_modules", "run:subscribe_sensors"]);
    assert_eq!(calls[4..], ["run:activate"]);
    // The view serialises with snake_case states.
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["state"], "succeeded");
    assert_eq!(json["tasks"][0]["state"], "done");
    assert_eq!(engine.list(Some("acme")).unwrap(), vec![view]);
    assert!(engine.list(Some("globex")).unwrap().is_empty());
}

#[tokio::test]
async fn failure_waits_for_in_flight_then_undoes_and_skips() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        fail_run: vec!["subscribe_sensors"],
        delay: [("register_modules", Duration::from_millis(50))].into(),
        ..Script::default()
    });
    let engine = open(&db(&dir), &script);
    let id = engine
        .submit("provision", "acme", "cp-1", json!({}))
        .unwrap();
    let view = engine.wait(&id, WAIT).await.unwrap();
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
    let calls = script.calls();
    assert_eq!(
        calls[4..],
        ["undo:register_modules", "undo:authorise", "undo:validate"]
    );
    assert!(!calls.contains(&"run:activate".to_owned()));
}

#[tokio::test]
async fn rollback_undoes_in_reverse_completion_order() {
    let dir = tempfile::tempdir().unwrap();
    // register_modules finishes after subscribe_sensors although it comes
    // first in the template.
    let script = Arc::new(Script {
        fail_run: vec!["activate"],
        delay: [("register_modules", Duration::from_millis(50))].into(),
        ..Script::default()
    });
    let engine = open(&db(&dir), &script);
    let id = engine
        .submit("provision", "acme", "cp-1", json!({}))
        .unwrap();
    let view = engine.wait(&id, WAIT).await.unwrap();
    assert_eq!(view.state, WorkflowState::RolledBack, "{view:?}");
    assert_eq!(
        view.error.as_deref(),
        Some("task activate failed: activate broke")
    );
    let undos: Vec<String> = script
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
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        fail_run: vec!["register_modules"],
        fail_undo: vec!["authorise"],
        ..Script::default()
    });
    let engine = open(&db(&dir), &script);
    let id = engine
        .submit("provision", "acme", "cp-1", json!({}))
        .unwrap();
    let view = engine.wait(&id, WAIT).await.unwrap();
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
    assert!(!script.calls().contains(&"undo:validate".to_owned()));
    // Final: nothing more happens.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(engine.get(&id).unwrap().unwrap(), view);
}

#[tokio::test]
async fn resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let blocking = Arc::new(Script {
        block: vec!["subscribe_sensors"],
        ..Script::default()
    });
    let engine = open(&path, &blocking);
    let id = engine
        .submit("provision", "acme", "cp-1", json!({"n": 1}))
        .unwrap();
    until(&engine, &id, |v| {
        v.tasks[2].state == TaskState::Done && v.tasks[3].state == TaskState::Running
    })
    .await;
    engine.stop();
    assert!(matches!(
        engine.submit("provision", "acme", "cp-2", json!({})),
        Err(WorkflowError::Stopped)
    ));
    assert!(matches!(
        engine.wait(&id, WAIT).await,
        Err(WorkflowError::Stopped)
    ));
    drop(engine);

    let script = Arc::new(Script::default());
    let engine = open(&path, &script);
    let view = engine.wait(&id, WAIT).await.unwrap();
    assert_eq!(view.state, WorkflowState::Succeeded, "{view:?}");
    assert_eq!(script.calls(), ["run:subscribe_sensors", "run:activate"]);
    let attempts: Vec<u32> = view.tasks.iter().map(|t| t.attempts).collect();
    assert_eq!(attempts, [1, 1, 1, 2, 1]);
}

#[tokio::test]
async fn rollback_goes_on_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    // subscribe_sensors fails while register_modules hangs: the crash
    // happens while rolling back, waiting for register_modules.
    let blocking = Arc::new(Script {
        fail_run: vec!["subscribe_sensors"],
        block: vec!["register_modules"],
        ..Script::default()
    });
    let engine = open(&path, &blocking);
    let id = engine
        .submit("provision", "acme", "cp-1", json!({}))
        .unwrap();
    until(&engine, &id, |v| v.state == WorkflowState::RollingBack).await;
    drop(engine);

    let script = Arc::new(Script::default());
    let engine = open(&path, &script);
    let view = engine.wait(&id, WAIT).await.unwrap();
    assert_eq!(view.state, WorkflowState::RolledBack, "{view:?}");
    assert_eq!(
        script.calls(),
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
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let blocking = Arc::new(Script {
        block: vec!["validate"],
        ..Script::default()
    });
    let engine = open(&path, &blocking);
    let id = engine
        .submit("provision", "acme", "cp-1", json!({}))
        .unwrap();
    until(&engine, &id, |v| v.tasks[0].state == TaskState::Running).await;
    drop(engine);

    let script = Arc::new(Script::default());
    let engine = Engine::open(&path, vec![], script.clone()).unwrap();
    let view = engine.wait(&id, WAIT).await.unwrap();
    assert_eq!(view.state, WorkflowState::RollbackFailed);
    assert!(
        view.error.as_deref().unwrap().contains("\"provision\""),
        "{view:?}"
    );
    assert!(script.calls().is_empty());
}

#[tokio::test]
async fn ids_are_unique_across_reopen_and_lookups_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let script = Arc::new(Script::default());
    let engine = open(&path, &script);
    let a = engine
        .submit("provision", "acme", "cp-1", json!({}))
        .unwrap();
    let b = engine
        .submit("provision", "globex", "cp-2", json!({}))
        .unwrap();
    engine.wait(&a, WAIT).await.unwrap();
    engine.wait(&b, WAIT).await.unwrap();
    drop(engine);

    let engine = open(&path, &script);
    let c = engine
        .submit("provision", "acme", "cp-3", json!({}))
        .unwrap();
    assert_eq!(
        [a.as_str(), b.as_str(), c.as_str()],
        ["wf-1", "wf-2", "wf-3"]
    );
    engine.wait(&c, WAIT).await.unwrap();
    let acme: Vec<String> = engine
        .list(Some("acme"))
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(acme, [a, c]);
    assert_eq!(engine.list(None).unwrap().len(), 3);

    assert_eq!(engine.get("wf-99").unwrap(), None);
    assert!(matches!(
        engine.wait("wf-99", WAIT).await,
        Err(WorkflowError::NotFound(_))
    ));
    assert!(matches!(
        engine.submit("nope", "acme", "cp-1", json!({})),
        Err(WorkflowError::UnknownTemplate(t)) if t == "nope"
    ));
}

#[tokio::test]
async fn wait_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        block: vec!["validate"],
        ..Script::default()
    });
    let engine = open(&db(&dir), &script);
    let id = engine
        .submit("provision", "acme", "cp-1", json!({}))
        .unwrap();
    assert!(matches!(
        engine.wait(&id, Duration::from_millis(30)).await,
        Err(WorkflowError::Timeout { .. })
    ));
}

#[test]
fn bad_templates_are_refused() {
    static CYCLE: Template = Template {
        name: "cycle",
        tasks: &[
            TaskDef {
                name: "a",
                after: &["b"],
            },
            TaskDef {
                name: "b",
                after: &["a"],
            },
        ],
    };
    static TWICE: Template = Template {
        name: "twice",
        tasks: &[
            TaskDef {
                name: "a",
                after: &[],
            },
            TaskDef {
                name: "a",
                after: &[],
            },
        ],
    };
    static EMPTY: Template = Template {
        name: "empty",
        tasks: &[],
    };
    for t in [&CYCLE, &TWICE, &EMPTY] {
        assert!(
            matches!(t.validate(), Err(WorkflowError::InvalidTemplate { .. })),
            "{}",
            t.name
        );
    }
    DIAMOND.validate().unwrap();
    assert!(super::template::registry(vec![&DIAMOND, &DIAMOND]).is_err());
    // No runtime, no engine (and no panic).
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Engine::open(&db(&dir), vec![&DIAMOND], Arc::new(Script::default())),
        Err(WorkflowError::NoRuntime)
    ));
}

#[test]
fn machine_is_pure_and_takes_time_as_an_argument() {
    use super::machine::{Op, Workflow};
    let info = WorkflowInfo {
        id: "wf-1".into(),
        template: "provision".into(),
        owner: "acme".into(),
        subject: "cp-1".into(),
        payload: json!(null),
        created_ms: 0,
    };
    let mut wf = Workflow::new(info, DIAMOND.tasks);
    let fx = wf.advance(10);
    assert_eq!(fx.launch, [(0, Op::Run)]);
    assert_eq!(wf.tasks[0].started_ms, Some(10));
    // Nothing landed: advancing again changes nothing.
    assert_eq!(wf.advance(11), Default::default());
    // An outcome for a task not in flight is ignored.
    assert!(!wf.land(1, Op::Run, Ok(()), 12));
    assert!(!wf.land(0, Op::Undo, Ok(()), 12));
    assert!(wf.land(0, Op::Run, Ok(()), 20));
    assert_eq!(wf.advance(21).launch, [(1, Op::Run)]);
    assert!(wf.land(1, Op::Run, Ok(()), 30));
    assert_eq!(wf.advance(31).launch, [(2, Op::Run), (3, Op::Run)]);
    assert!(wf.land(3, Op::Run, Err("no".into()), 40));
    assert_eq!(wf.state, WorkflowState::RollingBack);
    // register_modules is still in flight: nothing to do yet.
    assert_eq!(wf.advance(41), Default::default());
    assert!(wf.land(2, Op::Run, Ok(()), 50));
    let fx = wf.advance(51);
    assert_eq!(fx.launch, [(2, Op::Undo)]);
    assert_eq!(
        fx.changed,
        [4, 2],
        "activate skipped, register_modules undoing"
    );
    for (task, at) in [(2, 60), (1, 70), (0, 80)] {
        assert!(wf.land(task, Op::Undo, Ok(()), at));
        wf.advance(at + 1);
    }
    assert_eq!(wf.state, WorkflowState::RolledBack);
    assert_eq!(wf.finished_ms, Some(81));
}
