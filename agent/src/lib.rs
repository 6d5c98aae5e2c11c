//! The vcp host agent: sensors read the real machine, the sampler builds
//! columnar batches, the uplink spools them and streams them to the
//! supervisor over QUIC until they are acknowledged.

pub mod actuators;
pub mod apply;
pub mod config;
pub mod sampler;
pub mod sensors;
pub mod spool;
pub mod uplink;
pub mod uplink_status;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vcp_common::identity::TlsMaterial;

use sampler::Sampler;
use sensors::Roots;
use uplink::{UplinkConfig, UplinkCounters};
use uplink_status::UplinkStatus;

/// Everything an agent needs to run.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub uplink: UplinkConfig,
    pub tls: TlsMaterial,
    pub sample_interval: Duration,
    pub window: Duration,
    pub roots: Roots,
    /// How this host applies configurations (dry-run by default).
    pub actuator: actuators::ActuatorConfig,
    /// Virtual-resource and application sensors.
    pub sensors: sensors::SensorConfig,
    /// Series the agent defines over its life; readings of further series
    /// are refused and counted (keep it at or below the supervisor's
    /// per-agent `max_series`, whose default is the same).
    pub max_series: usize,
    /// Renew `tls` when it is due, storing the new credential there (an
    /// enrolled agent's); `None`: the operator renews the files.
    pub renewal: Option<vcp_transport::enrol::Enrolment>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Tls(#[from] vcp_transport::tls::TlsError),
    #[error("agent id: {0}")]
    Id(#[from] vcp_common::identity::IdentityError),
}

/// A running agent.
pub struct Agent {
    pub status: Arc<UplinkStatus>,
    pub counters: Arc<UplinkCounters>,
    stop: watch::Sender<bool>,
    sampler: JoinHandle<()>,
    uplink: JoinHandle<std::io::Result<()>>,
    renewal: Option<JoinHandle<()>>,
}

impl Agent {
    /// Starts the sampler over the machine's standard sensors and the
    /// uplink on the current tokio runtime.
    pub fn start(opts: AgentOptions) -> Result<Agent, AgentError> {
        let (roots, extra) = (opts.roots.clone(), opts.sensors.clone());
        Agent::start_with(opts, |status| sensors::standard(&roots, status, &extra))
    }

    /// Starts an agent whose sampler reads `sensors` (given the uplink's
    /// status), on the current tokio runtime: what a fleet simulator uses to
    /// run SIMULATED hosts through the real sampler, encoder and uplink.
    pub fn start_with(
        opts: AgentOptions,
        sensors: impl FnOnce(Arc<UplinkStatus>) -> Vec<Box<dyn sensors::Sensor>>,
    ) -> Result<Agent, AgentError> {
        vcp_common::identity::validate_id(&opts.uplink.agent_id)?;
        let client = vcp_transport::tls::client_config(
            &opts.tls,
            vcp_common::frame::ALPN_AGENT,
            opts.uplink.max_frame,
        )?;
        let (renewed, client) = tokio::sync::watch::channel(client);
        let max_frame = opts.uplink.max_frame;
        let renewal = opts.renewal.clone().map(|e| {
            tokio::spawn(vcp_transport::enrol::keep_renewed(
                e,
                opts.tls.clone(),
                move |new| {
                    let alpn = vcp_common::frame::ALPN_AGENT;
                    match vcp_transport::tls::client_config(new, alpn, max_frame) {
                        Ok(client) => renewed.send(client).is_ok(),
                        Err(e) => {
                            tracing::warn!(error = %e, "the renewed certificate is unusable");
                            true
                        }
                    }
                },
            ))
        });
        let status = Arc::new(UplinkStatus::default());
        let counters = Arc::new(UplinkCounters::default());
        let (tx, rx) = mpsc::channel(16);
        let (stop, stopped) = watch::channel(false);
        let sensors = sensors(status.clone());
        // The spool's series table is the sampler's: a restarted agent's
        // spooled batches keep their meaning.
        let (spool, table) = spool::Spool::open(opts.uplink.spool.clone(), || {
            use rand::Rng;
            rand::rng().random()
        });
        let sampler = tokio::spawn(sample_loop(
            Sampler::new(sensors, opts.max_series).with_table(table.clone()),
            opts.sample_interval,
            opts.window,
            tx,
            stopped,
            status.clone(),
        ));
        let applier = apply::spawn(actuators::build(&opts.actuator));
        let uplink = tokio::spawn(uplink::run(
            opts.uplink,
            client,
            rx,
            applier,
            status.clone(),
            counters.clone(),
            spool,
            table,
        ));
        Ok(Agent {
            status,
            counters,
            stop,
            sampler,
            uplink,
            renewal,
        })
    }

    /// Stops sampling, lets the uplink deliver what it can, and waits.
    pub async fn stop(self) {
        if let Some(r) = &self.renewal {
            r.abort();
        }
        let _ = self.stop.send(true);
        let _ = self.sampler.await;
        match self.uplink.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "uplink ended with an error"),
            Err(e) => tracing::warn!(error = %e, "uplink task failed"),
            Ok(Ok(())) => {}
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn sample_loop(
    mut sampler: Sampler,
    interval: Duration,
    window: Duration,
    tx: mpsc::Sender<sampler::Sampled>,
    mut stopped: watch::Receiver<bool>,
    status: Arc<UplinkStatus>,
) {
    let per_window = (window.as_millis() / interval.as_millis().max(1)).max(1) as usize;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut taken = 0;
    // Series defined in a batch that had to be dropped still need defining.
    let mut carry = Vec::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => break,
        }
        sampler.sample(Instant::now(), unix_ms());
        taken += 1;
        if taken < per_window {
            continue;
        }
        taken = 0;
        if let Some(mut s) = sampler.close() {
            if !carry.is_empty() {
                carry.append(&mut s.new_series);
                s.new_series = std::mem::take(&mut carry);
            }
            let n = s.batch.readings() as u64;
            match tx.try_send(s) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(s)) => {
                    carry = s.new_series;
                    status.add_dropped(n);
                    tracing::warn!(
                        readings = n,
                        "uplink is behind: batch dropped before spooling"
                    );
                }
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
    }
    if let Some(s) = sampler.close() {
        let _ = tx.try_send(s);
    }
}
