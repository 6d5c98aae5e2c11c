//! The judge task: the single writer of judgement (reputation,
//! contribution, goal windows — the core's [`Judgement`]). Rounds send it
//! evidence on a queue; every evaluation window it has the goals measured
//! on the fleet view. It publishes an immutable reputation snapshot for the
//! mediators, a report for operators and its state for checkpoints —
//! nobody else touches judgement, so there are no locks, and nothing here
//! runs on a round's path.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use crate::fleet::Fleet;
use crate::queue::Lossy;
use crate::unix_ms;
use vcp_core::judgement::Judgement;
use vcp_core::plane::Planes;
use vcp_core::reputation::{shared, ReputationConfig, ReputationSnapshot, SharedReputation};
use vcp_core::settings::Settings;

pub use vcp_core::judgement::{
    Evidence, GoalRecord, JudgeReport, JudgeState, ModuleContribution, ModuleReputation, TargetKey,
};
pub use vcp_core::{module_key, ModuleKey};

/// Evidence on the judge's queue, with where to say how it was taken (a
/// rating from the API waits for its outcome).
pub struct Queued {
    evidence: Evidence,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Evidence queued for the judge at most.
pub const QUEUE: usize = 16_384;

/// The handle rounds and the API use.
#[derive(Clone)]
pub struct JudgeHandle {
    pub queue: Lossy<Queued>,
    /// The judge's state ([`JudgeState::encode`]), republished with the
    /// report, for checkpoints.
    pub state: Arc<ArcSwap<Vec<u8>>>,
    pub reputation: Arc<SharedReputation<ModuleKey>>,
    pub report: Arc<ArcSwap<JudgeReport>>,
}

impl JudgeHandle {
    /// Evidence from a round: never waits; dropped (and counted) when the
    /// judge is [`QUEUE`] messages behind.
    pub fn send(&self, evidence: Evidence) {
        self.queue.send(Queued {
            evidence,
            done: None,
        });
    }

    /// Records a customer's rating (1–5) of a module instance, stored as
    /// `number` if it was stored; waits for room in the queue (feedback is
    /// never dropped).
    pub async fn feedback(
        &self,
        key: ModuleKey,
        rating: f64,
        number: Option<i64>,
    ) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send_wait(Queued {
                evidence: Evidence::Feedback {
                    key,
                    rating,
                    number,
                },
                done: Some(done),
            })
            .await;
        wait.await
            .map_err(|_| "the judge has stopped".to_string())?
    }
}

struct Judge {
    judgement: Judgement,
    shared: Arc<SharedReputation<ModuleKey>>,
    report: Arc<ArcSwap<JudgeReport>>,
    state: Arc<ArcSwap<Vec<u8>>>,
    planes: Planes,
    fleet: Arc<Fleet>,
    settings: Arc<Settings>,
}

/// Starts the judge task, from what an earlier run had learnt if
/// `restored` holds it.
pub fn start(
    config: ReputationConfig,
    window: Duration,
    planes: Planes,
    fleet: Arc<Fleet>,
    settings: Arc<Settings>,
    restored: Option<JudgeState>,
) -> (JudgeHandle, tokio::task::JoinHandle<()>) {
    let (queue, rx) = crate::queue::lossy("judge", QUEUE);
    let judgement = Judgement::new(config, &planes.load(), restored);
    let shared = Arc::new(shared(ReputationSnapshot::empty(
        judgement.prior(),
        unix_ms(),
    )));
    let report = Arc::new(ArcSwap::from_pointee(JudgeReport::default()));
    let state = Arc::new(ArcSwap::from_pointee(Vec::new()));
    let judge = Judge {
        judgement,
        shared: shared.clone(),
        report: report.clone(),
        state: state.clone(),
        planes,
        fleet,
        settings,
    };
    judge.publish(unix_ms());
    let task = tokio::spawn(judge.run(rx, window));
    (
        JudgeHandle {
            queue,
            state,
            reputation: shared,
            report,
        },
        task,
    )
}

impl Judge {
    async fn run(mut self, mut rx: mpsc::Receiver<Queued>, window: Duration) {
        let mut windows = tokio::time::interval(window);
        windows.tick().await;
        let mut publish = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => self.take(e, unix_ms()),
                    None => return,
                },
                _ = windows.tick() => {
                    let now = unix_ms();
                    let planes = self.planes.load();
                    let settings = self.settings.snapshot();
                    self.judgement.evaluate(&planes, &self.fleet.view, &settings, now);
                    self.publish(now);
                }
                _ = publish.tick() => self.publish(unix_ms()),
            }
        }
    }

    fn take(&mut self, Queued { evidence, done }: Queued, now: i64) {
        let outcome = self.judgement.take(evidence, now);
        if let Some(done) = done {
            let _ = done.send(outcome);
        }
    }

    fn publish(&self, now: i64) {
        self.judgement.publish(&self.shared, now);
        self.report.store(Arc::new(self.judgement.report(now)));
        self.state.store(Arc::new(self.judgement.encode_state()));
    }
}
