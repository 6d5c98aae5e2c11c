//! The engine's tests: a scripted [`Actions`] over one template, a fresh
//! database per test.

mod pure;
mod restart;
mod run;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Barrier;

use super::{Actions, BoxFuture, Engine, TaskDef, TaskState, Template, WorkflowInfo, WorkflowView};

const fn task(name: &'static str, after: &'static [&'static str]) -> TaskDef {
    TaskDef { name, after }
}

/// validate → authorise → {register_modules ∥ subscribe_sensors} → activate.
static DIAMOND: Template = Template {
    name: "diamond",
    tasks: &[
        task("validate", &[]),
        task("authorise", &["validate"]),
        task("register_modules", &["authorise"]),
        task("subscribe_sensors", &["authorise"]),
        task("activate", &["register_modules", "subscribe_sensors"]),
    ],
};

const WAIT: Duration = Duration::from_secs(10);

/// Records `run:<task>` / `undo:<task>` as each call starts; can fail,
/// delay or block given tasks, and make a group of runs meet at a barrier.
#[derive(Default)]
struct Script {
    log: Mutex<Vec<String>>,
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
        assert_eq!(wf.template, DIAMOND.name);
        self.log.lock().unwrap().push(format!("{op}:{task}"));
        let run = op == "run";
        let fail = if run { &self.fail_run } else { &self.fail_undo }.contains(&task);
        let block = run && self.block.contains(&task);
        let delay = self.delay.get(task).copied().filter(|_| run);
        let barrier = self
            .meet
            .as_ref()
            .filter(|(tasks, _)| run && tasks.contains(&task))
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

    fn called(&self, call: &str) -> bool {
        self.calls().iter().any(|c| c == call)
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

fn workflows(dir: &std::path::Path) -> vcp_store::workflows::Workflows {
    vcp_store::Store::open(dir).unwrap().0.workflows()
}

/// An engine over a fresh database with a script; reopened on the same
/// database to play a restart.
struct Bench {
    _dir: tempfile::TempDir,
    path: PathBuf,
    script: Arc<Script>,
    engine: Arc<Engine>,
}

impl Bench {
    fn new(script: Script) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        // In a directory that does not exist yet: the store creates it.
        let path = dir.path().join("data");
        let script = Arc::new(script);
        let engine = Engine::open(workflows(&path), vec![&DIAMOND], script.clone()).unwrap();
        Bench {
            _dir: dir,
            path,
            script,
            engine,
        }
    }

    /// Drops the engine (as a crash would) and opens the database again
    /// with `templates` and a new script.
    fn restart(&mut self, templates: Vec<&'static Template>, script: Script) {
        // What dropping the engine does; done first, so that two engines
        // never share the database.
        self.engine.stop();
        self.script = Arc::new(script);
        self.engine = Engine::open(workflows(&self.path), templates, self.script.clone()).unwrap();
    }

    /// Submits a workflow of `owner` on `subject` with an empty payload.
    fn submit(&self, owner: &str, subject: &str) -> String {
        self.engine
            .submit(DIAMOND.name, owner, subject, json!({}))
            .unwrap()
    }

    /// Waits for the workflow's final state.
    async fn finish(&self, id: &str) -> WorkflowView {
        self.engine.wait(id, WAIT).await.unwrap()
    }

    /// Polls until `pred` holds for the workflow.
    async fn until(&self, id: &str, pred: impl Fn(&WorkflowView) -> bool) {
        tokio::time::timeout(WAIT, async {
            while !pred(&self.engine.get(id).unwrap().unwrap()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("condition never held");
    }
}

/// One workflow of `acme` on `cp-1` under `script`, run to its end.
async fn run_one(script: Script) -> (Bench, WorkflowView) {
    let bench = Bench::new(script);
    let id = bench.submit("acme", "cp-1");
    let view = bench.finish(&id).await;
    (bench, view)
}

/// (task, state) in template order.
fn states(view: &WorkflowView) -> Vec<(&str, TaskState)> {
    view.tasks
        .iter()
        .map(|t| (t.name.as_str(), t.state))
        .collect()
}
