//! Applies the supervisor's configurations with the host's actuator, one at
//! a time on the blocking pool, and reports each outcome. A failing or
//! panicking actuator yields a `failed` outcome with the reason; it never
//! takes the agent down.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::sync::mpsc;
use tracing::{info, warn};
use vcp_common::frame::{Applied, Configure};

use crate::actuators::{Actuator, Configuration};

/// Starts the applier: configurations in, outcomes out.
pub fn spawn(actuator: Box<dyn Actuator>) -> (mpsc::Sender<Configure>, mpsc::Receiver<Applied>) {
    let (tx, mut rx) = mpsc::channel::<Configure>(64);
    let (out_tx, out_rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut actuator = Some(actuator);
        while let Some(c) = rx.recv().await {
            let config = Configuration {
                round: c.round,
                target: c.target.clone(),
                parameter: c.parameter.clone(),
                value: c.value,
            };
            let outcome = match actuator.take() {
                Some(mut a) => {
                    let joined = tokio::task::spawn_blocking(move || {
                        let r = catch_unwind(AssertUnwindSafe(|| a.apply(&config)));
                        (a, config, r)
                    })
                    .await;
                    match joined {
                        Ok((a, config, r)) => {
                            let name = a.name();
                            actuator = Some(a);
                            match r {
                                Ok(Ok(done)) => {
                                    info!(actuator = name, %config, detail = %done.detail, "configuration applied");
                                    Ok(done.detail)
                                }
                                Ok(Err(e)) => Err(e.to_string()),
                                Err(_) => Err(format!("the {name} actuator panicked")),
                            }
                        }
                        Err(e) => Err(format!("the actuator was lost: {e}")),
                    }
                }
                None => Err("no actuator (an earlier one was lost)".into()),
            };
            let applied = match outcome {
                Ok(detail) => Applied {
                    id: c.id,
                    ok: true,
                    detail,
                },
                Err(detail) => {
                    warn!(target = %c.target, parameter = %c.parameter, %detail, "configuration failed");
                    Applied {
                        id: c.id,
                        ok: false,
                        detail,
                    }
                }
            };
            if out_tx.send(applied).await.is_err() {
                return;
            }
        }
    });
    (tx, out_rx)
}
