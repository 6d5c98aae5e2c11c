//! Configuration delivery: each mediated decision whose value changed goes
//! to the agent of the host it concerns, on that agent's connection; the
//! agent answers applied or failed, and the outcome is counted per module.
//! A configuration for a host that is offline waits for it to reconnect, or
//! expires with a recorded reason after `ttl` — never dropped silently. A
//! newer decision for the same (target, parameter) replaces one still
//! waiting (the older one is counted as superseded).
//!
//! One task owns all of this state; rounds hand it decisions on a channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use vcp_common::frame::{Applied, Configure};
use vcp_common::module::Target;

use crate::control_plane::Planes;
use crate::queue::Lossy;
use crate::settings::Decision;
use crate::unix_ms;

/// Outcomes of one module's configurations.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub module: String,
    pub control_plane: String,
    pub sent: u64,
    pub applied: u64,
    pub failed: u64,
    pub expired: u64,
    pub superseded: u64,
    pub last_failure: Option<String>,
}

pub enum DispatchMsg {
    Decisions(Vec<Arc<Decision>>),
    Connected {
        agent: String,
        tx: mpsc::Sender<Configure>,
    },
    /// The session that used `tx` ended (a newer session of the same agent
    /// keeps its own channel).
    Disconnected {
        agent: String,
        tx: mpsc::Sender<Configure>,
    },
    Applied {
        agent: String,
        applied: Applied,
    },
}

/// Messages queued for the dispatcher at most. Rounds and outcomes past
/// it are dropped and counted (a round never waits); a connect or
/// disconnect waits for room.
pub const QUEUE: usize = 16_384;

/// The handle rounds and ingest use.
#[derive(Clone)]
pub struct DispatchHandle {
    pub queue: Lossy<DispatchMsg>,
    pub counts: Arc<ArcSwap<Vec<DeliveryCounts>>>,
}

impl DispatchHandle {
    /// Decisions and outcomes: never waits, drops (counted) when full.
    pub fn send(&self, m: DispatchMsg) {
        self.queue.send(m);
    }

    /// An agent came online with its configuration channel.
    pub async fn connected(&self, agent: &str, tx: mpsc::Sender<Configure>) {
        let m = DispatchMsg::Connected {
            agent: agent.to_owned(),
            tx,
        };
        self.queue.send_wait(m).await;
    }

    /// The agent's session that used `tx` ended (from a `Drop`).
    pub fn disconnected(&self, agent: &str, tx: mpsc::Sender<Configure>) {
        self.queue.send_later(DispatchMsg::Disconnected {
            agent: agent.to_owned(),
            tx,
        });
    }
}

struct Pending {
    configure: Configure,
    module: (Arc<str>, Arc<str>),
    since_ms: i64,
}

struct Dispatcher {
    planes: Planes,
    ttl_ms: i64,
    next_id: u64,
    /// The last value handed out per (target, parameter).
    last: HashMap<(Target, String), f64>,
    /// Per host, what waits for delivery: one configuration per
    /// (target, parameter), the newest.
    outbox: HashMap<String, HashMap<(Target, String), Pending>>,
    in_flight: HashMap<u64, (String, Pending)>,
    online: HashMap<String, mpsc::Sender<Configure>>,
    counts: HashMap<(Arc<str>, Arc<str>), DeliveryCounts>,
    published: Arc<ArcSwap<Vec<DeliveryCounts>>>,
}

/// Starts the dispatcher task.
pub fn start(planes: Planes, ttl: Duration) -> (DispatchHandle, tokio::task::JoinHandle<()>) {
    let (queue, mut rx) = crate::queue::lossy("dispatch", QUEUE);
    let published = Arc::new(ArcSwap::from_pointee(Vec::new()));
    let mut d = Dispatcher {
        planes,
        ttl_ms: ttl.as_millis() as i64,
        next_id: 1,
        last: HashMap::new(),
        outbox: HashMap::new(),
        in_flight: HashMap::new(),
        online: HashMap::new(),
        counts: HashMap::new(),
        published: published.clone(),
    };
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => d.take(m, unix_ms()),
                    None => return,
                },
                _ = tick.tick() => d.expire(unix_ms()),
            }
            d.flush();
        }
    });
    (
        DispatchHandle {
            queue,
            counts: published,
        },
        task,
    )
}

impl Dispatcher {
    /// The agent of the host a target concerns: the host itself, or for a
    /// whole service set the host of its first member (which runs the set's
    /// instance control).
    fn host_of(&self, target: &Target) -> Option<String> {
        match target {
            Target::Member { host, .. } | Target::Resource { host, .. } => Some(host.clone()),
            Target::ServiceSet(id) => self
                .planes
                .load()
                .iter()
                .find_map(|p| p.scope.set(id))
                .and_then(|s| s.members.first())
                .map(|m| m.host.clone()),
        }
    }

    fn count(&mut self, module: &(Arc<str>, Arc<str>)) -> &mut DeliveryCounts {
        self.counts
            .entry(module.clone())
            .or_insert_with(|| DeliveryCounts {
                module: module.0.to_string(),
                control_plane: module.1.to_string(),
                ..Default::default()
            })
    }

    fn take(&mut self, m: DispatchMsg, now: i64) {
        match m {
            DispatchMsg::Decisions(decisions) => {
                for d in decisions {
                    self.enqueue(&d, now);
                }
            }
            DispatchMsg::Connected { agent, tx } => {
                self.online.insert(agent, tx);
            }
            DispatchMsg::Disconnected { agent, tx } => {
                if !self.online.get(&agent).is_some_and(|t| t.same_channel(&tx)) {
                    return; // a newer session already took over
                }
                self.online.remove(&agent);
                // Unanswered deliveries go back to wait for the reconnect.
                let back: Vec<u64> = self
                    .in_flight
                    .iter()
                    .filter(|(_, (a, _))| *a == agent)
                    .map(|(id, _)| *id)
                    .collect();
                for id in back {
                    if let Some((a, p)) = self.in_flight.remove(&id) {
                        // Unless a newer value already waits.
                        let key = (p.configure.target.clone(), p.configure.parameter.clone());
                        self.outbox.entry(a).or_default().entry(key).or_insert(p);
                    }
                }
            }
            DispatchMsg::Applied { agent, applied } => match self.in_flight.remove(&applied.id) {
                Some((from, p)) if from == agent => {
                    let c = self.count(&p.module);
                    if applied.ok {
                        c.applied += 1;
                    } else {
                        c.failed += 1;
                        c.last_failure =
                            Some(format!("{}: {}", p.configure.target, applied.detail));
                    }
                }
                Some(other) => {
                    warn!(%agent, id = applied.id, "outcome from the wrong agent ignored");
                    self.in_flight.insert(applied.id, other);
                }
                None => debug!(%agent, id = applied.id, "outcome of an unknown delivery"),
            },
        }
    }

    fn enqueue(&mut self, d: &Decision, now: i64) {
        let key = (d.target.clone(), d.parameter.to_string());
        if self.last.get(&key) == Some(&d.value) {
            return; // nothing changed
        }
        let Some(host) = self.host_of(&d.target) else {
            return;
        };
        self.last.insert(key, d.value);
        let module = (d.module.clone(), d.control_plane.clone());
        let id = self.next_id;
        self.next_id += 1;
        let pending = Pending {
            configure: Configure {
                id,
                round: d.round,
                target: d.target.clone(),
                parameter: d.parameter.to_string(),
                value: d.value,
            },
            module,
            since_ms: now,
        };
        let key = (
            pending.configure.target.clone(),
            pending.configure.parameter.clone(),
        );
        let superseded = self.outbox.entry(host).or_default().insert(key, pending);
        if let Some(old) = superseded {
            self.count(&old.module).superseded += 1;
        }
    }

    /// Sends what waits for agents that are online.
    fn flush(&mut self) {
        let mut sent = Vec::new();
        for (agent, tx) in &self.online {
            let Some(queue) = self.outbox.get_mut(agent) else {
                continue;
            };
            let mut full = false;
            queue.retain(|_, p| {
                if full {
                    return true;
                }
                match tx.try_send(p.configure.clone()) {
                    Ok(()) => {
                        sent.push((
                            agent.clone(),
                            p.configure.clone(),
                            p.module.clone(),
                            p.since_ms,
                        ));
                        false
                    }
                    Err(_) => {
                        full = true;
                        true
                    }
                }
            });
        }
        for (agent, configure, module, since_ms) in sent {
            self.count(&module).sent += 1;
            let p = Pending {
                configure,
                module,
                since_ms,
            };
            self.in_flight.insert(p.configure.id, (agent, p));
        }
        self.publish();
    }

    /// Configurations that waited longer than the TTL expire, with why.
    fn expire(&mut self, now: i64) {
        let ttl = self.ttl_ms;
        let mut expired = Vec::new();
        for (agent, queue) in &mut self.outbox {
            queue.retain(|_, p| {
                let keep = now - p.since_ms <= ttl;
                if !keep {
                    expired.push((agent.clone(), p.configure.target.clone(), p.module.clone()));
                }
                keep
            });
        }
        for (agent, target, module) in expired {
            let c = self.count(&module);
            c.expired += 1;
            c.last_failure = Some(format!(
                "{target}: expired: host {agent} offline for {} s",
                ttl / 1000
            ));
            warn!(%agent, %target, "configuration expired: host offline");
        }
    }

    fn publish(&self) {
        let mut v: Vec<_> = self.counts.values().cloned().collect();
        v.sort_by(|a, b| (&a.control_plane, &a.module).cmp(&(&b.control_plane, &b.module)));
        if **self.published.load() != v {
            self.published.store(Arc::new(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Instances;
    use crate::control_plane::{ControlPlane, Scope, ServiceSetDef};
    use vcp_common::view::Member;

    fn dispatcher() -> Dispatcher {
        let set = ServiceSetDef {
            id: "web".into(),
            customer: "acme".into(),
            members: vec![Member {
                host: "h1".into(),
                resource: None,
            }],
            instances: Instances {
                min: 1,
                max: 4,
                initial: 1,
            },
            goals: vec![],
            instance: None,
        };
        let plane = Arc::new(ControlPlane {
            id: "vcp-acme".into(),
            customer: "acme".into(),
            scope: Arc::new(Scope::new(vec![set], false)),
            modules: std::array::from_fn(|_| vec![]),
            provisioned: false,
        });
        Dispatcher {
            planes: Arc::new(arc_swap::ArcSwap::from_pointee(vec![plane])),
            ttl_ms: 60_000,
            next_id: 1,
            last: HashMap::new(),
            outbox: HashMap::new(),
            in_flight: HashMap::new(),
            online: HashMap::new(),
            counts: HashMap::new(),
            published: Arc::new(ArcSwap::from_pointee(Vec::new())),
        }
    }

    fn decision(value: f64) -> Arc<Decision> {
        Arc::new(Decision {
            round: 1,
            target: Target::ServiceSet("web".into()),
            parameter: Arc::from("instances"),
            value,
            module: Arc::from("m"),
            control_plane: Arc::from("vcp-acme"),
            contenders: 1,
            influences: vec![],
        })
    }

    #[test]
    fn offline_configurations_expire_with_a_reason_and_unchanged_ones_are_not_resent() {
        let mut d = dispatcher();
        d.take(
            DispatchMsg::Decisions(vec![decision(2.0), decision(2.0)]),
            0,
        );
        assert_eq!(d.outbox["h1"].len(), 1, "the same value is queued once");
        d.take(DispatchMsg::Decisions(vec![decision(3.0)]), 1_000);
        assert_eq!(
            d.outbox["h1"].len(),
            1,
            "a newer value replaces a waiting one"
        );
        d.expire(30_000);
        assert_eq!(d.outbox["h1"].len(), 1, "not yet");
        d.expire(62_000);
        d.flush();
        let c = &d.published.load()[0];
        assert_eq!((c.sent, c.expired, c.superseded), (0, 1, 1));
        assert!(
            c.last_failure
                .as_deref()
                .unwrap()
                .contains("host h1 offline"),
            "{c:?}"
        );
    }

    #[test]
    fn online_agents_get_configurations_and_outcomes_are_counted() {
        let mut d = dispatcher();
        let (tx, mut rx) = mpsc::channel(4);
        let current = tx.clone();
        d.take(
            DispatchMsg::Connected {
                agent: "h1".into(),
                tx,
            },
            0,
        );
        d.take(DispatchMsg::Decisions(vec![decision(2.0)]), 0);
        d.flush();
        let sent = rx.try_recv().unwrap();
        assert_eq!(sent.value, 2.0);
        d.take(
            DispatchMsg::Applied {
                agent: "h1".into(),
                applied: Applied {
                    id: sent.id,
                    ok: false,
                    detail: "boom".into(),
                },
            },
            1,
        );
        // A disconnect returns unanswered deliveries to the outbox.
        d.take(DispatchMsg::Decisions(vec![decision(4.0)]), 2);
        d.flush();
        let stale = mpsc::channel(1).0;
        d.take(
            DispatchMsg::Disconnected {
                agent: "h1".into(),
                tx: stale,
            },
            3,
        );
        assert!(
            d.online.contains_key("h1"),
            "an older session's end does not unplug a newer one"
        );
        d.take(
            DispatchMsg::Disconnected {
                agent: "h1".into(),
                tx: current.clone(),
            },
            3,
        );
        assert_eq!(d.outbox["h1"].len(), 1);
        d.flush();
        let c = &d.published.load()[0];
        assert_eq!((c.sent, c.failed), (2, 1));
    }
}
