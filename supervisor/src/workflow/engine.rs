//! The engine: the store, the clock and the runner (one tokio task that
//! drives every unfinished workflow's state machine).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tracing::{debug, error, info, warn};

use super::machine::{Effects, Op, Workflow};
use super::template::registry;
use super::{Actions, Template, WorkflowError, WorkflowView};
use crate::unix_ms;
use vcp_store::workflows::Workflows;

/// The runner also looks for unfinished workflows this often, in case a
/// wake-up was missed.
pub const POLL: Duration = Duration::from_secs(10);

struct Shared {
    store: Workflows,
    templates: HashMap<&'static str, &'static Template>,
    actions: Arc<dyn Actions>,
    /// Wakes the runner (a new workflow).
    wake: Notify,
    /// Bumped after every persisted transition (wakes [`Engine::wait`]).
    changed: watch::Sender<u64>,
    stopped: AtomicBool,
}

impl Shared {
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// No write after this returns; waiters wake up and see `stopped`.
    fn halt(&self) {
        self.store.close();
        self.stopped.store(true, Ordering::SeqCst);
        self.bump();
    }
}

/// A persistent workflow engine; see the [module docs](super).
///
/// Dropping it (the last `Arc`) stops it, like [`Engine::stop`].
pub struct Engine {
    shared: Arc<Shared>,
    runner: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Starts the runner over the store's workflows on the current tokio
    /// runtime; unfinished workflows resume.
    pub fn open(
        store: Workflows,
        templates: Vec<&'static Template>,
        actions: Arc<dyn Actions>,
    ) -> Result<Arc<Engine>, WorkflowError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| WorkflowError::NoRuntime)?;
        let templates = registry(templates)?;
        let shared = Arc::new(Shared {
            store,
            templates,
            actions,
            wake: Notify::new(),
            changed: watch::Sender::new(0),
            stopped: AtomicBool::new(false),
        });
        let runner = Runner {
            shared: shared.clone(),
            active: BTreeMap::new(),
            flights: JoinSet::new(),
            in_flight: HashMap::new(),
        };
        let handle = rt.spawn(runner.run());
        info!("workflow engine started");
        Ok(Arc::new(Engine {
            shared,
            runner: Mutex::new(Some(handle)),
        }))
    }

    /// Persists a new workflow (all tasks pending) and wakes the runner.
    /// Returns its id.
    pub fn submit(
        &self,
        template: &str,
        owner: &str,
        subject: &str,
        payload: serde_json::Value,
    ) -> Result<String, WorkflowError> {
        let t = self
            .shared
            .templates
            .get(template)
            .ok_or_else(|| WorkflowError::UnknownTemplate(template.to_owned()))?;
        let wf = self
            .shared
            .store
            .insert(t, owner, subject, payload, unix_ms())?;
        info!(id = %wf.info.id, template, owner, subject, "workflow submitted");
        self.shared.bump();
        self.shared.wake.notify_one();
        Ok(wf.info.id.clone())
    }

    pub fn get(&self, id: &str) -> Result<Option<WorkflowView>, WorkflowError> {
        Ok(self.shared.store.load(id)?.map(|wf| wf.view()))
    }

    /// Every workflow, or `owner`'s, oldest first.
    pub fn list(&self, owner: Option<&str>) -> Result<Vec<WorkflowView>, WorkflowError> {
        Ok(self
            .shared
            .store
            .list(owner)?
            .iter()
            .map(Workflow::view)
            .collect())
    }

    /// Waits until the workflow reaches a final state (succeeded,
    /// rolled_back, rollback_failed). Errors: `NotFound`, `Timeout`, and
    /// `Stopped` if the engine stops first.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<WorkflowView, WorkflowError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changed = self.shared.changed.subscribe();
        loop {
            let (shared, wf) = (self.shared.clone(), id.to_owned());
            let view = tokio::task::spawn_blocking(move || shared.store.load(&wf))
                .await
                .map_err(|_| WorkflowError::Stopped)??
                .ok_or_else(|| WorkflowError::NotFound(id.to_owned()))?
                .view();
            if view.state.is_final() {
                return Ok(view);
            }
            if self.shared.stopped.load(Ordering::SeqCst) {
                return Err(WorkflowError::Stopped);
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(WorkflowError::Stopped),
                Err(_) => {
                    return Err(WorkflowError::Timeout {
                        id: id.to_owned(),
                        timeout,
                    })
                }
            }
        }
    }

    /// Stops the runner. Tasks in flight are abandoned as `running` in the
    /// database, as a crash would leave them; they run again on the next
    /// open. Reads still work; `submit` fails with `Stopped`.
    pub fn stop(&self) {
        self.shared.halt();
        let handle = self.runner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            // Dropping the runner drops its JoinSet, which aborts the tasks.
            handle.abort();
            info!("workflow engine stopped");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A launched run or undo.
struct Flight {
    workflow: String,
    task: usize,
    op: Op,
}

struct Runner {
    shared: Arc<Shared>,
    /// Unfinished workflows, by id.
    active: BTreeMap<String, Workflow>,
    flights: JoinSet<Result<(), String>>,
    in_flight: HashMap<tokio::task::Id, Flight>,
}

impl Runner {
    async fn run(self) {
        let shared = self.shared.clone();
        let mut runner = self;
        let mut refresh = true;
        loop {
            runner = match runner.off_runtime(move |r| r.step(refresh)).await {
                Ok(r) => r,
                Err(e) => return Self::stopped(&shared, e),
            };
            refresh = false;
            tokio::select! {
                _ = shared.wake.notified() => refresh = true,
                _ = tokio::time::sleep(POLL) => refresh = true,
                Some(joined) = runner.flights.join_next_with_id() => {
                    runner = match runner.off_runtime(move |r| r.landed(joined)).await {
                        Ok(r) => r,
                        Err(e) => return Self::stopped(&shared, e),
                    };
                }
            }
        }
    }

    /// Runs `f` on the blocking pool: every transition is a SQLite commit
    /// with an fsync (and may wait for the database's lock), which must not
    /// stall the async runtime.
    async fn off_runtime(
        mut self,
        f: impl FnOnce(&mut Runner) -> Result<(), WorkflowError> + Send + 'static,
    ) -> Result<Runner, String> {
        tokio::task::spawn_blocking(move || f(&mut self).map(|()| self))
            .await
            .map_err(|e| format!("the runner panicked: {e}"))?
            .map_err(|e| e.to_string())
    }

    /// Memory and database may disagree now: stop, as a crash would; the
    /// next open resumes from the database.
    fn stopped(shared: &Shared, error: String) {
        error!(%error, "workflow runner stopped");
        shared.halt();
    }

    /// Adopts new unfinished workflows (if `refresh`) and advances them all.
    fn step(&mut self, refresh: bool) -> Result<(), WorkflowError> {
        if refresh {
            for id in self.shared.store.unfinished()? {
                if !self.active.contains_key(&id) {
                    self.adopt(&id)?;
                }
            }
        }
        let ids: Vec<String> = self.active.keys().cloned().collect();
        for id in ids {
            let Some(wf) = self.active.get_mut(&id) else {
                continue;
            };
            let before = wf.state;
            let fx = wf.advance(unix_ms());
            if fx == Effects::default() && wf.state == before {
                continue;
            }
            self.apply(&id, fx)?;
        }
        Ok(())
    }

    /// Loads an unfinished workflow: relaunches what was in flight.
    fn adopt(&mut self, id: &str) -> Result<(), WorkflowError> {
        let Some(mut wf) = self.shared.store.load(id)? else {
            return Ok(());
        };
        let fx = if self
            .shared
            .templates
            .contains_key(wf.info.template.as_str())
        {
            let fx = wf.resume(unix_ms());
            if !fx.launch.is_empty() {
                info!(id, tasks = fx.launch.len(), "workflow resumed");
            }
            fx
        } else {
            let reason = format!(
                "template {:?} is not registered: the workflow cannot go on",
                wf.info.template
            );
            warn!(id, %reason, "workflow abandoned");
            wf.abandon(reason, unix_ms())
        };
        self.active.insert(id.to_owned(), wf);
        self.apply(id, fx)
    }

    /// Persists the workflow and the changed tasks, then launches; forgets
    /// the workflow once it is final.
    fn apply(&mut self, id: &str, fx: Effects) -> Result<(), WorkflowError> {
        let Some(wf) = self.active.get(id) else {
            return Ok(());
        };
        self.shared.store.save(wf, &fx.changed)?;
        self.shared.bump();
        for (task, op) in fx.launch {
            let info = wf.info.clone();
            let name = wf.tasks[task].name.clone();
            debug!(id, task = %name, ?op, "task launched");
            let actions = self.shared.actions.clone();
            let handle = self.flights.spawn(async move {
                // The call may block (it may do I/O before it returns its
                // future): the blocking pool takes it; a panic is an error.
                let call = tokio::task::spawn_blocking(move || match op {
                    Op::Run => actions.run(&info, &name),
                    Op::Undo => actions.undo(&info, &name),
                });
                match call.await {
                    Ok(action) => action.await,
                    Err(e) => Err(format!("the task panicked: {e}")),
                }
            });
            let flight = Flight {
                workflow: id.to_owned(),
                task,
                op,
            };
            self.in_flight.insert(handle.id(), flight);
        }
        if wf.state.is_final() {
            info!(id, state = wf.state.as_str(), error = ?wf.error, "workflow finished");
            self.active.remove(id);
        }
        Ok(())
    }

    /// Records the outcome of a run or undo.
    fn landed(
        &mut self,
        joined: Result<(tokio::task::Id, Result<(), String>), JoinError>,
    ) -> Result<(), WorkflowError> {
        let (task_id, result) = match joined {
            Ok((task_id, result)) => (task_id, result),
            Err(e) => (
                e.id(),
                Err(format!("the task panicked or was cancelled: {e}")),
            ),
        };
        let Some(flight) = self.in_flight.remove(&task_id) else {
            return Ok(());
        };
        let Some(wf) = self.active.get_mut(&flight.workflow) else {
            return Ok(());
        };
        let name = &wf.tasks[flight.task].name;
        match &result {
            Ok(()) => debug!(id = %flight.workflow, task = %name, op = ?flight.op, "task finished"),
            Err(e) => {
                warn!(id = %flight.workflow, task = %name, op = ?flight.op, error = %e, "task failed")
            }
        }
        if !wf.land(flight.task, flight.op, result, unix_ms()) {
            return Ok(());
        }
        let fx = Effects {
            changed: vec![flight.task],
            launch: Vec::new(),
        };
        self.apply(&flight.workflow, fx)
    }
}
