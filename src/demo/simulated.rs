//! A SIMULATED service for the demo and the closed-loop tests — labelled as
//! such everywhere it appears. Its offered load follows a compressed
//! daily-like curve with bursts; its latency comes from a queueing model of
//! its instances; its instance count is whatever the autoscaling decision
//! last set, delivered through the agent's real `exec` actuator (which
//! writes the configuration to a file the service reads); and it reports
//! through the agent's application-metrics endpoint like any real
//! application would.
//!
//! Model: offered load `λ(t) = base · (1 + 0.5·sin(2πt/day)) · burst(t)`,
//! where a burst multiplies the load by 1.6 for `burst_s` every `burst_every_s`.
//! Each of `c` instances serves `μ` requests/s and gets `λ/c` (an M/M/1
//! queue each): utilisation `ρ = λ/(cμ)`; response time `T = 1/(μ − λ/c)`;
//! the p95 of an exponential response time is `T·ln 20`. At `ρ ≥ 1` the
//! queue grows without bound: the service reports a p95 of 2 s and the
//! backlog as queue depth.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the simulated service behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Resource the metrics are attributed to, e.g. `app/acme-shop`.
    pub resource: String,
    /// Where the agent's exec actuator writes the instance configuration.
    pub config_file: PathBuf,
    /// The agent's application-metrics endpoint.
    pub endpoint: SocketAddr,
    pub initial_instances: u32,
    pub base_load: f64,
    pub service_rate: f64,
    pub day: Duration,
    pub burst_every_s: f64,
    pub burst_s: f64,
}

impl SimConfig {
    pub fn new(resource: &str, config_file: PathBuf, endpoint: SocketAddr) -> Self {
        SimConfig {
            resource: resource.to_owned(),
            config_file,
            endpoint,
            initial_instances: 2,
            base_load: 150.0,
            service_rate: 100.0,
            day: Duration::from_secs(120),
            burst_every_s: 30.0,
            burst_s: 5.0,
        }
    }
}

/// What the model says about one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimState {
    pub load: f64,
    pub utilization: f64,
    pub p95_s: f64,
    pub queue: f64,
}

/// The queueing model at time `t_s` with `instances` (pure).
pub fn model(cfg: &SimConfig, t_s: f64, instances: u32) -> SimState {
    let day = cfg.day.as_secs_f64().max(1.0);
    let mut load = cfg.base_load * (1.0 + 0.5 * (std::f64::consts::TAU * t_s / day).sin());
    if cfg.burst_every_s > 0.0 && t_s % cfg.burst_every_s < cfg.burst_s {
        load *= 1.6;
    }
    let c = f64::from(instances.max(1));
    let mu = cfg.service_rate;
    let rho = load / (c * mu);
    if rho >= 1.0 {
        return SimState {
            load,
            utilization: 1.0,
            p95_s: 2.0,
            queue: load - c * mu,
        };
    }
    let t = 1.0 / (mu - load / c);
    SimState {
        load,
        utilization: rho,
        p95_s: t * 20f64.ln(),
        queue: rho * rho / (1.0 - rho) * c,
    }
}

/// Reads the instance count from the last configuration the exec actuator
/// wrote (a JSON object with `"value"`), if any.
fn configured_instances(path: &PathBuf) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let at = text.rfind("\"value\":")?;
    let rest = &text[at + 8..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    let v: f64 = rest[..end].trim().parse().ok()?;
    (v.is_finite() && v >= 1.0).then_some(v.round() as u32)
}

/// A running simulated service.
pub struct SimService {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimService {
    /// Starts reporting every `every` on its own thread.
    pub fn start(cfg: SimConfig, every: Duration) -> std::io::Result<SimService> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut instances = cfg.initial_instances;
            while !stopped.load(Ordering::Relaxed) {
                if let Some(n) = configured_instances(&cfg.config_file) {
                    instances = n;
                }
                let s = model(&cfg, started.elapsed().as_secs_f64(), instances);
                let r = &cfg.resource;
                let lines = format!(
                    "app.requests_per_second:{:.2}|g|#resource:{r}\napp.latency.p95:{:.6}|g|#resource:{r}\napp.queue_depth:{:.2}|g|#resource:{r}\napp.utilization:{:.5}|g|#resource:{r}\n",
                    s.load, s.p95_s, s.queue, s.utilization
                );
                // A lost datagram is a lost sample, as for any real application.
                let _ = socket.send_to(lines.as_bytes(), cfg.endpoint);
                std::thread::sleep(every);
            }
        });
        Ok(SimService {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SimService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SimConfig {
        let mut c = SimConfig::new(
            "app/x",
            PathBuf::from("/nonexistent"),
            "127.0.0.1:9".parse().unwrap(),
        );
        c.burst_every_s = 0.0;
        c
    }

    #[test]
    fn more_instances_mean_lower_latency_and_overload_is_visible() {
        let c = cfg();
        // t = 0: load = base = 150 req/s.
        let one = model(&c, 0.0, 1);
        assert_eq!(
            (one.utilization, one.p95_s),
            (1.0, 2.0),
            "1 instance of 100 req/s is overloaded"
        );
        let three = model(&c, 0.0, 3);
        assert!((three.utilization - 0.5).abs() < 1e-12);
        // T = 1/(100 − 50) = 20 ms; p95 = 20 ms × ln 20 ≈ 59.9 ms.
        assert!((three.p95_s - 0.02 * 20f64.ln()).abs() < 1e-12);
        assert!(model(&c, 0.0, 6).p95_s < three.p95_s);
    }

    #[test]
    fn the_configuration_file_sets_instances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        assert_eq!(configured_instances(&path), None);
        std::fs::write(
            &path,
            r#"{"round":3,"target":{"ServiceSet":"x"},"parameter":"instances","value":4}"#,
        )
        .unwrap();
        assert_eq!(configured_instances(&path), Some(4));
    }
}
