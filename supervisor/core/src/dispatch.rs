//! Configuration delivery, level-triggered: for every (target, parameter)
//! the dispatcher keeps the decision in force and the value the host last
//! confirmed applied, and whenever the two differ — a new decision, a
//! failed or unanswered apply, a host back from offline — it hands the one
//! in force to the agent of the host it concerns. A configuration for a
//! host that is offline waits for it, or expires with a recorded reason
//! after the TTL (and is sent again, if still in force, when the host is
//! back); one with no answer within [`ANSWER_MS`] counts as failed; a
//! failed one is tried again after [`RETRY_MS`]. A newer decision replaces
//! one still waiting (the older one is counted as superseded). Pure: time
//! comes in as an argument, and an agent is reached through an [`Outbox`].

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use tracing::{debug, warn};
use vcp_common::frame::{Applied, Configure};
use vcp_common::module::Target;

use crate::plane::{ControlPlane, Planes};
use crate::settings::Decision;

/// How configurations reach one agent (its session's channel).
pub trait Outbox {
    /// Hands `c` over; gives it back when there is no room now.
    fn offer(&self, c: Configure) -> Result<(), Configure>;
    /// Whether the two reach the same session.
    fn same(&self, other: &Self) -> bool;
}

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

/// What moves the dispatcher; `O` is how an agent's session is reached.
pub enum DispatchMsg<O> {
    Decisions(Vec<Arc<Decision>>),
    Connected {
        agent: String,
        tx: O,
    },
    /// The session that used `tx` ended (a newer session of the same agent
    /// keeps its own channel).
    Disconnected {
        agent: String,
        tx: O,
    },
    Applied {
        agent: String,
        applied: Applied,
    },
}

/// A configuration with no outcome after this long counts as failed.
pub const ANSWER_MS: i64 = 30_000;
/// A failed configuration is tried again after this long.
pub const RETRY_MS: i64 = 5_000;

type Key = (Target, String);
type ModuleId = (Arc<str>, Arc<str>);

/// A decision in force and the host it concerns.
struct Wanted {
    value: f64,
    round: u64,
    module: ModuleId,
    host: String,
}

struct Pending {
    configure: Configure,
    module: ModuleId,
    since_ms: i64,
}

pub struct Dispatcher<O> {
    planes: Planes,
    ttl_ms: i64,
    next_id: u64,
    in_force: HashMap<Key, Wanted>,
    /// Per host, the keys whose decisions concern it.
    by_host: HashMap<String, HashSet<Key>>,
    /// The value each host last confirmed applied.
    applied: HashMap<Key, f64>,
    /// Not to be sent again before then (after a failure or no answer).
    hold: HashMap<Key, i64>,
    /// Per host, what waits for delivery: the newest per key.
    outbox: HashMap<String, HashMap<Key, Pending>>,
    in_flight: HashMap<u64, (String, Pending)>,
    /// The delivery in flight per key.
    flying: HashMap<Key, u64>,
    online: HashMap<String, O>,
    counts: HashMap<ModuleId, DeliveryCounts>,
    published: Arc<ArcSwap<Vec<DeliveryCounts>>>,
}

impl<O: Outbox> Dispatcher<O> {
    pub fn new(planes: Planes, ttl_ms: i64, published: Arc<ArcSwap<Vec<DeliveryCounts>>>) -> Self {
        Dispatcher {
            planes,
            ttl_ms,
            next_id: 1,
            in_force: HashMap::default(),
            by_host: HashMap::default(),
            applied: HashMap::default(),
            hold: HashMap::default(),
            outbox: HashMap::default(),
            in_flight: HashMap::default(),
            flying: HashMap::default(),
            online: HashMap::default(),
            counts: HashMap::default(),
            published,
        }
    }

    /// The agent of the host a target concerns: the host itself, or for a
    /// whole service set the host of its first member (which runs the set's
    /// instance control).
    fn host_of(planes: &[Arc<ControlPlane>], target: &Target) -> Option<String> {
        match target {
            Target::Member { host, .. } | Target::Resource { host, .. } => Some(host.clone()),
            Target::ServiceSet(id) => planes
                .iter()
                .find_map(|p| p.scope.set(id))
                .and_then(|s| s.members.first())
                .map(|m| m.host.clone()),
        }
    }

    fn count(&mut self, module: &ModuleId) -> &mut DeliveryCounts {
        self.counts
            .entry(module.clone())
            .or_insert_with(|| DeliveryCounts {
                module: module.0.to_string(),
                control_plane: module.1.to_string(),
                ..Default::default()
            })
    }

    pub fn take(&mut self, m: DispatchMsg<O>, now: i64) {
        match m {
            DispatchMsg::Decisions(decisions) => {
                let planes = self.planes.load_full();
                for d in decisions {
                    self.decide(&planes, &d, now);
                }
            }
            DispatchMsg::Connected { agent, tx } => {
                self.online.insert(agent.clone(), tx);
                // Reconcile: whatever differs from the decisions in force
                // goes out again.
                let keys: Vec<Key> = self
                    .by_host
                    .get(&agent)
                    .map(|k| k.iter().cloned().collect())
                    .unwrap_or_default();
                for key in keys {
                    self.hold.remove(&key);
                    self.want(&key, now);
                }
            }
            DispatchMsg::Disconnected { agent, tx } => {
                if !self.online.get(&agent).is_some_and(|t| t.same(&tx)) {
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
                    if let Some((a, p)) = self.take_flight(id) {
                        // Unless a newer value already waits.
                        let key = (p.configure.target.clone(), p.configure.parameter.clone());
                        self.outbox.entry(a).or_default().entry(key).or_insert(p);
                    }
                }
            }
            DispatchMsg::Applied { agent, applied } => self.outcome(&agent, applied, now),
        }
    }

    fn decide(&mut self, planes: &[Arc<ControlPlane>], d: &Decision, now: i64) {
        let key = (d.target.clone(), d.parameter.to_string());
        let unchanged = self.in_force.get(&key).is_some_and(|w| w.value == d.value);
        if unchanged {
            return;
        }
        let Some(host) = Self::host_of(planes, &d.target) else {
            return;
        };
        let keys = self.by_host.entry(host.clone()).or_default();
        if !keys.contains(&key) {
            keys.insert(key.clone());
        }
        self.in_force.insert(
            key.clone(),
            Wanted {
                value: d.value,
                round: d.round,
                module: (d.module.clone(), d.control_plane.clone()),
                host,
            },
        );
        self.hold.remove(&key);
        self.want(&key, now);
    }

    /// Queues the decision in force for `key` unless the host has it, it is
    /// on its way, or it waits out a retry delay.
    fn want(&mut self, key: &Key, now: i64) {
        let Some(w) = self.in_force.get(key) else {
            return;
        };
        let (value, host) = (w.value, w.host.clone());
        let waiting = self
            .outbox
            .get(&host)
            .and_then(|q| q.get(key))
            .map(|p| p.configure.value);
        if self.applied.get(key) == Some(&value) {
            // In line; a waiting older value is moot.
            if waiting.is_some() {
                self.supersede(&host, key);
            }
            return;
        }
        let flying = self
            .flying
            .get(key)
            .and_then(|id| self.in_flight.get(id))
            .is_some_and(|(_, p)| p.configure.value == value);
        if flying || waiting == Some(value) || self.hold.get(key).is_some_and(|t| *t > now) {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let pending = Pending {
            configure: Configure {
                id,
                round: w.round,
                target: key.0.clone(),
                parameter: key.1.clone(),
                value,
            },
            module: w.module.clone(),
            since_ms: now,
        };
        let old = self
            .outbox
            .entry(host)
            .or_default()
            .insert(key.clone(), pending);
        if let Some(old) = old {
            self.count(&old.module).superseded += 1;
        }
    }

    fn supersede(&mut self, host: &str, key: &Key) {
        if let Some(old) = self.outbox.get_mut(host).and_then(|q| q.remove(key)) {
            self.count(&old.module).superseded += 1;
        }
    }

    /// Removes delivery `id` from what is in flight.
    fn take_flight(&mut self, id: u64) -> Option<(String, Pending)> {
        let (agent, p) = self.in_flight.remove(&id)?;
        let key = (p.configure.target.clone(), p.configure.parameter.clone());
        if self.flying.get(&key) == Some(&id) {
            self.flying.remove(&key);
        }
        Some((agent, p))
    }

    fn outcome(&mut self, agent: &str, a: Applied, now: i64) {
        match self.take_flight(a.id) {
            Some((from, p)) if from == agent => {
                let key = (p.configure.target.clone(), p.configure.parameter.clone());
                let c = self.count(&p.module);
                if a.ok {
                    c.applied += 1;
                    self.applied.insert(key.clone(), p.configure.value);
                } else {
                    c.failed += 1;
                    c.last_failure = Some(format!("{}: {}", p.configure.target, a.detail));
                    self.applied.remove(&key);
                    self.hold.insert(key.clone(), now + RETRY_MS);
                }
                self.want(&key, now);
            }
            Some(other) => {
                warn!(%agent, id = a.id, "outcome from the wrong agent ignored");
                let key = (
                    other.1.configure.target.clone(),
                    other.1.configure.parameter.clone(),
                );
                self.flying.insert(key, a.id);
                self.in_flight.insert(a.id, other);
            }
            None => debug!(%agent, id = a.id, "outcome of an unknown delivery"),
        }
    }

    /// Sends what waits for agents that are online.
    pub fn flush(&mut self, now: i64) {
        let mut sent = Vec::new();
        // Only hosts with something waiting: an emptied queue is removed,
        // so a flush costs what is waiting, not the size of the fleet.
        self.outbox.retain(|agent, queue| {
            let Some(tx) = self.online.get(agent) else {
                return !queue.is_empty();
            };
            let mut full = false;
            queue.retain(|_, p| {
                if full {
                    return true;
                }
                match tx.offer(p.configure.clone()) {
                    Ok(()) => {
                        sent.push((agent.clone(), p.configure.clone(), p.module.clone()));
                        false
                    }
                    Err(_) => {
                        full = true;
                        true
                    }
                }
            });
            !queue.is_empty()
        });
        for (agent, configure, module) in sent {
            self.count(&module).sent += 1;
            // The answer is timed from when it was sent.
            let p = Pending {
                configure,
                module,
                since_ms: now,
            };
            let key = (p.configure.target.clone(), p.configure.parameter.clone());
            self.flying.insert(key, p.configure.id);
            self.in_flight.insert(p.configure.id, (agent, p));
        }
        self.publish();
    }

    /// Every second: configurations that waited longer than the TTL for an
    /// offline host expire (with why; the host gets the one in force when
    /// it is back); those in flight with no answer fail; held ones whose
    /// delay is over go out again.
    pub fn tick(&mut self, now: i64) {
        let ttl = self.ttl_ms;
        let mut expired = Vec::new();
        self.outbox.retain(|agent, queue| {
            queue.retain(|_, p| {
                let keep = now - p.since_ms <= ttl;
                if !keep {
                    expired.push((agent.clone(), p.configure.target.clone(), p.module.clone()));
                }
                keep
            });
            !queue.is_empty()
        });
        for (agent, target, module) in expired {
            let c = self.count(&module);
            c.expired += 1;
            c.last_failure = Some(format!(
                "{target}: expired: host {agent} offline for {} s",
                ttl / 1000
            ));
            warn!(%agent, %target, "configuration expired: host offline");
        }
        let silent: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, (_, p))| now - p.since_ms > ANSWER_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            let detail = format!("no outcome within {} s", ANSWER_MS / 1000);
            if let Some((agent, _)) = self.in_flight.get(&id) {
                let agent = agent.clone();
                self.outcome(
                    &agent,
                    Applied {
                        id,
                        ok: false,
                        detail,
                    },
                    now,
                );
            }
        }
        let due: Vec<Key> = self
            .hold
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.hold.remove(&key);
            self.want(&key, now);
        }
    }

    /// Whether `agent` is online.
    #[cfg(test)]
    pub fn is_online(&self, agent: &str) -> bool {
        self.online.contains_key(agent)
    }

    /// The counts as last published.
    #[cfg(test)]
    pub fn counts(&self) -> Arc<Vec<DeliveryCounts>> {
        self.published.load_full()
    }

    /// Configurations waiting for `host`.
    #[cfg(test)]
    pub fn waiting(&self, host: &str) -> usize {
        self.outbox.get(host).map_or(0, |q| q.len())
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
#[path = "dispatch_tests.rs"]
mod tests;
