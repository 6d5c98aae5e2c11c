//! Runs a built-in module: each solicitation on the blocking pool, with
//! panics caught, so that a module that panics or hangs cannot stall a
//! round or a runtime worker. A hung module keeps its inbox full and is
//! skipped (counted busy) until it returns. A module that panicked may have
//! left its state half-updated, so it is built afresh before its next round.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;
use vcp_common::module::ModuleLogic;

use crate::modules::instance::{Ask, Fault};
use vcp_core::stats::ModuleStats;

/// Builds a built-in module's logic, as new.
pub type Factory = Box<dyn Fn() -> Box<dyn ModuleLogic> + Send + Sync>;

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Serves `inbox` with logic built by `make` until the inbox closes.
pub async fn run_builtin(make: Factory, mut inbox: mpsc::Receiver<Ask>, stats: Arc<ModuleStats>) {
    let mut logic = make();
    let id = logic.spec().id;
    while let Some(ask) = inbox.recv().await {
        let s = ask.solicitation.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let out = catch_unwind(AssertUnwindSafe(|| logic.solicit(&s)));
            (logic, out)
        })
        .await;
        let outcome = match joined {
            Ok((l, Ok(proposals))) => {
                logic = l;
                Ok(proposals)
            }
            Ok((_, Err(p))) => {
                // Its state may be torn: the next round gets a new one.
                logic = make();
                Err(Fault::Panicked(panic_message(&*p)))
            }
            Err(e) => {
                // The blocking task itself died: the module is gone.
                warn!(module = %id, error = %e, "built-in module lost");
                ask.deliver(Err(Fault::Failed(e.to_string())), &stats);
                return;
            }
        };
        if let Err(f) = &outcome {
            warn!(module = %id, fault = %f, "built-in module fault; rebuilt for its next round");
        }
        ask.deliver(outcome, &stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use vcp_common::module::{param, Kind, ModuleSpec, Proposal, Solicitation, Target};

    /// Counts its calls; panics on the first after an update it never
    /// finishes, leaving its count torn.
    struct Torn {
        calls: u32,
    }

    impl ModuleLogic for Torn {
        fn spec(&self) -> ModuleSpec {
            ModuleSpec {
                id: "torn".into(),
                kind: Kind::Autoscaling,
                vendor: String::new(),
                version: "0".into(),
                inputs: vec![],
                outputs: vec![param::INSTANCES.into()],
                goals: vec![],
                deadline_ms: 50,
                custom_sensors: vec![],
            }
        }
        fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
            self.calls += 10;
            if s.round == 1 {
                panic!("torn at round 1");
            }
            vec![Proposal {
                target: Target::ServiceSet("s".into()),
                parameter: param::INSTANCES.into(),
                value: f64::from(self.calls),
            }]
        }
    }

    #[tokio::test]
    async fn a_module_that_panicked_is_rebuilt_before_its_next_round() {
        let (tx, rx) = mpsc::channel(1);
        let stats = Arc::new(ModuleStats::new(&[param::INSTANCES.into()]));
        let task = tokio::spawn(run_builtin(
            Box::new(|| Box::new(Torn { calls: 0 })),
            rx,
            stats,
        ));
        let (reply, mut answers) = mpsc::channel(4);
        for round in [1, 2] {
            let ask = Ask {
                slot: 0,
                solicitation: Arc::new(Solicitation {
                    round,
                    kind: Kind::Autoscaling,
                    budget_ms: 50,
                    view: Default::default(),
                }),
                deadline: Instant::now() + Duration::from_secs(60),
                reply: reply.clone(),
            };
            tx.send(ask).await.unwrap();
            let a = answers.recv().await.unwrap();
            match round {
                1 => {
                    assert!(matches!(a.outcome, Err(Fault::Panicked(ref m)) if m.contains("torn")))
                }
                _ => assert_eq!(
                    a.outcome.unwrap()[0].value,
                    10.0,
                    "a fresh module: one call"
                ),
            }
        }
        drop(tx);
        task.await.unwrap();
    }
}
