//! Runs a built-in module: each solicitation on the blocking pool, with
//! panics caught, so that a module that panics or hangs cannot stall a
//! round or a runtime worker. A hung module keeps its inbox full and is
//! skipped (counted busy) until it returns.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;
use vcp_common::module::ModuleLogic;

use crate::modules::instance::{Ask, Fault};
use crate::modules::stats::ModuleStats;

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Serves `inbox` with `logic` until the inbox closes.
pub async fn run_builtin(
    mut logic: Box<dyn ModuleLogic>,
    mut inbox: mpsc::Receiver<Ask>,
    stats: Arc<ModuleStats>,
) {
    let id = logic.spec().id;
    while let Some(ask) = inbox.recv().await {
        let s = ask.solicitation.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let out = catch_unwind(AssertUnwindSafe(|| logic.solicit(&s)));
            (logic, out)
        })
        .await;
        let outcome = match joined {
            Ok((l, out)) => {
                logic = l;
                out.map_err(|p| Fault::Panicked(panic_message(&*p)))
            }
            Err(e) => {
                // The blocking task itself died: the module is gone.
                warn!(module = %id, error = %e, "built-in module lost");
                ask.deliver(Err(Fault::Failed(e.to_string())), &stats);
                return;
            }
        };
        if let Err(f) = &outcome {
            warn!(module = %id, fault = %f, "built-in module fault");
        }
        ask.deliver(outcome, &stats);
    }
}
