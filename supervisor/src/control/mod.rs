//! The control planes at run time: builds them from the configuration,
//! starts the operator's default modules and one solicitor per kind, and
//! admits remote custom modules as they connect.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use vcp_common::module::Kind;

use crate::biller::{self, BillNow};
use crate::checkpoint::{self, Checkpoint};
use crate::config::{CustomModuleConfig, SupervisorFile};
use crate::dispatch::{self, DispatchHandle};
use crate::fleet::Fleet;
use crate::judge::{self, module_key, Evidence, JudgeHandle, JudgeState};
use crate::modules::instance::ModuleInstance;
use crate::modules::registry::Registry;
use crate::modules::runner::{run_builtin, Factory};
use crate::solicit::{KindStats, RoundContext, Solicitor};
use vcp_core::constraints::Constraints;
use vcp_core::instance::Instance;
use vcp_core::mediation::{Mediator, PolicyCounts, PolicyTable};
use vcp_core::plane::PlaneSpec;
use vcp_core::plane::{self, ControlPlane, ModuleRef, Planes};
use vcp_core::settings::Settings;
use vcp_core::stats::ModuleStats;
use vcp_store::ledger::{Ledger, LedgerReader};
use vcp_store::planes::FeedbackRecord;

/// A module instance ever registered, kept for reports after it left.
struct Known {
    id: String,
    kind: Kind,
    plane: Arc<ControlPlane>,
    remote: bool,
    shadow: bool,
    stats: Arc<ModuleStats>,
    since: std::time::Instant,
}

mod counts;

pub struct Control {
    pub file: Arc<SupervisorFile>,
    pub fleet: Arc<Fleet>,
    biller: std::sync::OnceLock<tokio::sync::mpsc::Sender<BillNow>>,
    /// The control planes in force.
    pub planes: Planes,
    /// The planes provisioned at run time (in force), in order.
    provisioned: Mutex<Vec<PlaneSpec>>,
    pub registry: Arc<Registry>,
    pub settings: Arc<Settings>,
    pub kinds: Vec<(Kind, Arc<KindStats>)>,
    pub judge: JudgeHandle,
    /// Delivers decisions to the agents.
    pub dispatch: DispatchHandle,
    /// Decisions per mediation policy.
    pub policy_counts: Arc<PolicyCounts>,
    // Touched when modules register and for reports, never by a round.
    known: Mutex<Vec<Known>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Control {
    /// Builds the control planes of `file`, starts their default modules and
    /// the solicitors. Must run inside a tokio runtime.
    /// `provisioned` are the planes provisioned earlier through the API.
    /// `feedback` reads the stored ratings numbered after a number (those
    /// a restored judge has not taken).
    pub fn start(
        file: SupervisorFile,
        fleet: Arc<Fleet>,
        ledger: Option<(Ledger, LedgerReader)>,
        provisioned: Vec<PlaneSpec>,
        feedback: &dyn Fn(i64) -> Vec<(i64, FeedbackRecord)>,
    ) -> Arc<Control> {
        // What an earlier run learnt and counted, if it left a checkpoint.
        let checkpoint = ledger
            .as_ref()
            .and_then(|(_, r)| r.state(checkpoint::NAME).ok().flatten())
            .and_then(|row| Checkpoint::decode(&row.bytes));
        let planes: Planes = Arc::new(arc_swap::ArcSwap::from_pointee(
            file.planes(&provisioned)
                .into_iter()
                .map(Arc::new)
                .collect(),
        ));
        let registry = Arc::new(Registry::default());
        let settings = Arc::new(Settings::default());
        let planes_now = planes.load_full();
        let restored = checkpoint
            .as_ref()
            .and_then(|c| JudgeState::decode(&c.judge));
        let resumed = restored.as_ref().map(|j| j.feedback);
        let (judge, judge_task) = judge::start(
            file.reputation.clone(),
            std::time::Duration::from_secs(file.evaluation_window_s),
            planes.clone(),
            fleet.clone(),
            settings.clone(),
            restored,
        );
        // The configuration's ratings count once: a restored judge has them.
        let replay_after = match resumed {
            Some(taken) => taken,
            None => {
                for f in &file.feedback {
                    judge.send(Evidence::Feedback {
                        key: module_key(&f.control_plane, &f.module),
                        rating: f.rating,
                        number: None,
                    });
                }
                0
            }
        };
        // Stored ratings the judge has not taken (all of them when it
        // starts afresh).
        for (number, f) in feedback(replay_after) {
            judge.send(Evidence::Feedback {
                key: module_key(&f.control_plane, &f.module),
                rating: f.rating,
                number: Some(number),
            });
        }
        let constraints = Constraints::new(&file.constraints);
        let mut kinds = Vec::new();
        let (dispatch, dispatch_task) = dispatch::start(
            planes.clone(),
            std::time::Duration::from_secs(file.configuration_ttl_s),
        );
        let mut tasks = vec![judge_task, dispatch_task];
        let policies = Arc::new(PolicyTable::new(file.mediation.clone()));
        let policy_counts = Arc::new(PolicyCounts::default());
        let ctx = RoundContext {
            registry: registry.clone(),
            fleet: fleet.clone(),
            settings: settings.clone(),
            constraints,
            judge: judge.clone(),
            dispatch: dispatch.clone(),
        };
        for kind in Kind::ALL {
            if kind == Kind::Provisioning {
                continue;
            }
            let c = file.cadence(kind);
            let solicitor = Solicitor::new(
                kind,
                std::time::Duration::from_millis(c.cadence_ms),
                std::time::Duration::from_millis(c.deadline_ms),
                ctx.clone(),
                Mediator::new(
                    kind,
                    policies.clone(),
                    policy_counts.clone(),
                    kind.index() as u64 + 1,
                ),
            );
            kinds.push((kind, solicitor.stats.clone()));
            tasks.push(tokio::spawn(solicitor.run()));
        }
        let control = Arc::new(Control {
            planes,
            provisioned: Mutex::new(provisioned),
            registry,
            settings,
            kinds,
            judge,
            dispatch,
            policy_counts,
            known: Mutex::new(
                checkpoint
                    .as_ref()
                    .map(|c| counts::restore_known(&c.usage, &planes_now))
                    .unwrap_or_default(),
            ),
            tasks: Mutex::new(tasks),
            fleet,
            biller: std::sync::OnceLock::new(),
            file: Arc::new(file),
        });
        if let Some(ledger) = ledger {
            let interval = std::time::Duration::from_secs(control.file.billing_interval_s);
            let (ledger, reader) = ledger;
            let resumed = checkpoint.map(|c| c.biller);
            let inputs = biller::Inputs {
                file: control.file.clone(),
                judge: control.judge.clone(),
                fleet: control.fleet.clone(),
                settings: control.settings.clone(),
                counters: control.clone(),
            };
            let (tx, task) = biller::start(inputs, ledger, reader, interval, resumed);
            let _ = control.biller.set(tx);
            control.lock_tasks().push(task);
        }
        for plane in control.planes.load().iter() {
            control.start_defaults(plane);
        }
        control
    }

    /// Starts the operator's default modules a plane uses (and those that
    /// run in its shadow).
    fn start_defaults(&self, plane: &Arc<ControlPlane>) {
        if !self.file.default_modules {
            return;
        }
        for kind in Kind::ALL {
            let shadow = if plane.modules(kind).contains(&ModuleRef::Default) {
                false
            } else if self.needs_shadow(plane, kind) {
                true
            } else {
                continue;
            };
            if self.file.builtin.module(kind).is_some() {
                let config = self.file.builtin.clone();
                let make = move || config.module(kind).expect("a built-in module of this kind");
                self.add_builtin(plane.clone(), Box::new(make), true, shadow);
            }
        }
    }

    /// Starts a built-in module serving `plane`, built by `make` (again
    /// after a panic). Besides the defaults, tests use it to add
    /// misbehaving modules.
    /// A `shadow` module is solicited but never takes effect; what it would
    /// have done is kept (see `Settings::shadow_value`).
    pub fn add_builtin(
        &self,
        plane: Arc<ControlPlane>,
        make: Factory,
        is_default: bool,
        shadow: bool,
    ) -> Arc<ModuleInstance> {
        let plane_id = plane.id.clone();
        let logic = make();
        let mut instance = Instance::new(
            logic.spec(),
            plane,
            is_default,
            false,
            self.file.module_limits,
            self.known_stats(&logic.spec().id, &plane_id),
        );
        instance.shadow = shadow;
        let (instance, inbox) = ModuleInstance::new(instance);
        let instance = Arc::new(instance);
        self.lock_tasks().push(tokio::spawn(run_builtin(
            make,
            inbox,
            instance.stats.clone(),
        )));
        self.register(instance.clone());
        instance
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, Vec<Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `instance` active, replacing an earlier session of the same
    /// module in the same control plane.
    pub fn register(&self, instance: Arc<ModuleInstance>) {
        let stale: Vec<u64> = self
            .registry
            .of(instance.kind())
            .iter()
            .filter(|m| m.id() == instance.id() && m.plane.id == instance.plane.id)
            .map(|m| m.uid)
            .collect();
        for uid in stale {
            self.registry.remove(instance.kind(), uid);
        }
        let mut known = self.lock_known();
        if !known
            .iter()
            .any(|k| k.id == instance.id() && k.plane.id == instance.plane.id)
        {
            known.push(Known {
                id: instance.id().to_owned(),
                kind: instance.kind(),
                plane: instance.plane.clone(),
                remote: instance.remote,
                shadow: instance.shadow,
                stats: instance.stats.clone(),
                since: std::time::Instant::now(),
            });
        }
        drop(known);
        self.registry.add(instance);
    }

    /// Whether a plane that replaced the default module of `kind` has a
    /// contract whose savings are measured against that default module,
    /// which then runs in the shadow.
    fn needs_shadow(&self, plane: &ControlPlane, kind: Kind) -> bool {
        plane.modules(kind).iter().any(|m| match m {
            ModuleRef::Custom(id) => self.file.contracts.iter().any(|c| {
                c.control_plane == plane.id
                    && &c.module == id
                    && c.cost_benefit
                        .is_some_and(|cb| cb.baseline == vcp_core::pricing::Baseline::DefaultModule)
            }),
            ModuleRef::Default => false,
        })
    }

    pub fn custom(&self, id: &str) -> Option<&CustomModuleConfig> {
        self.file.custom(id)
    }

    pub fn plane(&self, id: &str) -> Option<Arc<ControlPlane>> {
        self.planes.load().iter().find(|p| p.id == id).cloned()
    }

    /// The control planes in force, default first.
    pub fn planes(&self) -> Arc<Vec<Arc<ControlPlane>>> {
        self.planes.load_full()
    }

    /// Brings a provisioned plane into force: its customer's service sets
    /// leave the default plane, its default modules start, its custom
    /// modules may register. Idempotent: the same spec again is a no-op.
    pub fn activate(&self, spec: PlaneSpec) -> Result<Arc<ControlPlane>, String> {
        let mut provisioned = self.lock_provisioned();
        let id = plane::virtual_plane_id(&spec.customer);
        if !provisioned.contains(&spec) {
            if let Some(p) = self.plane(&id) {
                return Err(format!(
                    "customer {:?} already has control plane {:?}",
                    spec.customer, p.id
                ));
            }
            crate::provision::validate(&spec, &self.file)?;
            provisioned.push(spec);
            self.reconcile(&provisioned);
        }
        self.plane(&id)
            .ok_or_else(|| format!("control plane {id:?} did not come into force"))
    }

    /// Takes a provisioned plane out of force: its modules stop (remote
    /// sessions are closed), its service sets return to the default plane.
    /// Idempotent.
    pub fn deactivate(&self, customer: &str) {
        let mut provisioned = self.lock_provisioned();
        let before = provisioned.len();
        provisioned.retain(|p| p.customer != customer);
        if provisioned.len() != before {
            self.reconcile(&provisioned);
        }
    }

    /// The provisioned plane of `customer`, if in force.
    pub fn provisioned(&self, customer: &str) -> Option<PlaneSpec> {
        self.lock_provisioned()
            .iter()
            .find(|p| p.customer == customer)
            .cloned()
    }

    /// Replaces the planes in force with those `provisioned` implies. A
    /// plane whose definition did not change keeps its instances; the
    /// instances of a changed or removed plane retire and a changed or new
    /// plane starts its default modules afresh (statistics carry over).
    fn reconcile(&self, provisioned: &[PlaneSpec]) {
        let old = self.planes.load_full();
        let next: Vec<Arc<ControlPlane>> = self
            .file
            .planes(provisioned)
            .into_iter()
            .map(|p| {
                old.iter()
                    .find(|o| ***o == p)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(p))
            })
            .collect();
        self.planes.store(Arc::new(next.clone()));
        // New default instances first (each replaces its predecessor in the
        // registry), so no round finds a plane without its defaults.
        for p in next
            .iter()
            .filter(|p| !old.iter().any(|o| Arc::ptr_eq(o, p)))
        {
            self.start_defaults(p);
        }
        for m in self.registry.all() {
            if !next.iter().any(|p| Arc::ptr_eq(p, &m.plane)) {
                self.registry.remove(m.kind(), m.uid);
                m.retire();
            }
        }
    }

    fn lock_provisioned(&self) -> std::sync::MutexGuard<'_, Vec<PlaneSpec>> {
        self.provisioned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the biller now (and settles the period so far when `settle`);
    /// returns the number of charges recorded, once they are durable.
    pub async fn bill_now(&self, settle: bool) -> Result<usize, String> {
        let Some(tx) = self.biller.get() else {
            return Err("no ledger: billing is off".into());
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        tx.send(BillNow { settle, done })
            .await
            .map_err(|_| "the biller has stopped".to_string())?;
        wait.await
            .map_err(|_| "the biller has stopped".to_string())?
    }

    /// Stops the solicitors and the built-in modules.
    pub fn stop(&self) {
        for t in self.lock_tasks().drain(..) {
            t.abort();
        }
    }
}

impl crate::remote::ModuleHost for Control {
    fn custom(&self, id: &str) -> Option<&CustomModuleConfig> {
        Control::custom(self, id)
    }

    fn module_limits(&self) -> vcp_core::constraints::ModuleLimits {
        self.file.module_limits
    }

    fn planes(&self) -> Arc<Vec<Arc<ControlPlane>>> {
        Control::planes(self)
    }

    fn known_stats(&self, id: &str, plane: &str) -> Option<Arc<ModuleStats>> {
        Control::known_stats(self, id, plane)
    }

    fn register(&self, instance: Arc<ModuleInstance>) {
        Control::register(self, instance)
    }

    fn unregister(&self, instance: &ModuleInstance) {
        self.registry.remove(instance.kind(), instance.uid);
    }
}

impl crate::provisioner::PlaneHost for Control {
    fn file(&self) -> &SupervisorFile {
        &self.file
    }

    fn plane(&self, id: &str) -> Option<Arc<ControlPlane>> {
        Control::plane(self, id)
    }

    fn provisioned(&self, customer: &str) -> Option<PlaneSpec> {
        Control::provisioned(self, customer)
    }

    fn activate(&self, spec: PlaneSpec) -> Result<Arc<ControlPlane>, String> {
        Control::activate(self, spec)
    }

    fn deactivate(&self, customer: &str) {
        Control::deactivate(self, customer)
    }

    fn knows_host(&self, host: &str) -> bool {
        self.fleet.knows(host)
    }
}
