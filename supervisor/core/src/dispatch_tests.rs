//! The dispatcher's state driven by hand: decisions, connections and
//! outcomes at times the test picks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use vcp_common::frame::{Applied, Configure};
use vcp_common::module::Target;
use vcp_common::view::Member;

use super::*;
use crate::plane::{ControlPlane, Instances, Scope, ServiceSetDef};
use crate::settings::Decision;

/// An agent session's channel of 16 configurations.
#[derive(Clone, Default)]
struct Chan(Arc<Mutex<VecDeque<Configure>>>);

impl Outbox for Chan {
    fn offer(&self, c: Configure) -> Result<(), Configure> {
        let mut q = self.0.lock().unwrap();
        if q.len() >= 16 {
            return Err(c);
        }
        q.push_back(c);
        Ok(())
    }

    fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Chan {
    /// The oldest configuration handed over and not yet taken.
    fn try_recv(&self) -> Option<Configure> {
        self.0.lock().unwrap().pop_front()
    }
}

fn dispatcher() -> Dispatcher<Chan> {
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
    Dispatcher::new(
        Arc::new(ArcSwap::from_pointee(vec![plane])),
        60_000,
        Arc::new(ArcSwap::from_pointee(Vec::new())),
    )
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

fn decide(d: &mut Dispatcher<Chan>, value: f64, now: i64) {
    d.take(DispatchMsg::Decisions(vec![decision(value)]), now);
}

fn connect(d: &mut Dispatcher<Chan>, now: i64) -> (Chan, Chan) {
    let tx = Chan::default();
    let rx = tx.clone();
    d.take(
        DispatchMsg::Connected {
            agent: "h1".into(),
            tx: tx.clone(),
        },
        now,
    );
    (tx, rx)
}

fn answer(d: &mut Dispatcher<Chan>, c: &Configure, ok: bool, now: i64) {
    d.take(
        DispatchMsg::Applied {
            agent: "h1".into(),
            applied: Applied {
                id: c.id,
                ok,
                detail: if ok { "done" } else { "boom" }.into(),
            },
        },
        now,
    );
}

fn sent(rx: &mut Chan) -> Vec<f64> {
    rx.0.lock().unwrap().drain(..).map(|c| c.value).collect()
}

fn counts(d: &Dispatcher<Chan>) -> DeliveryCounts {
    d.counts()[0].clone()
}

#[test]
fn offline_configurations_expire_with_a_reason_and_unchanged_ones_are_not_resent() {
    let mut d = dispatcher();
    d.take(
        DispatchMsg::Decisions(vec![decision(2.0), decision(2.0)]),
        0,
    );
    assert_eq!(d.waiting("h1"), 1, "the same value is queued once");
    decide(&mut d, 3.0, 1_000);
    assert_eq!(d.waiting("h1"), 1, "a newer value replaces a waiting one");
    d.tick(30_000);
    assert_eq!(d.waiting("h1"), 1, "not yet");
    d.tick(62_000);
    d.flush(62_000);
    let c = counts(&d);
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
fn a_host_offline_past_the_ttl_gets_the_decision_in_force_when_it_returns() {
    let mut d = dispatcher();
    decide(&mut d, 3.0, 0);
    d.tick(61_000); // expired, still in force
    assert!(d.waiting("h1") == 0);
    let (_tx, mut rx) = connect(&mut d, 120_000);
    d.flush(120_000);
    assert_eq!(sent(&mut rx), [3.0], "converges on reconnect");
    assert_eq!(counts(&d).expired, 1);
}

#[test]
fn what_the_host_has_is_not_resent_and_what_differs_is() {
    let mut d = dispatcher();
    let (tx, rx) = connect(&mut d, 0);
    decide(&mut d, 2.0, 0);
    d.flush(0);
    let c = rx.try_recv().unwrap();
    answer(&mut d, &c, true, 10);
    // A reconnect: the host has 2 already.
    d.take(
        DispatchMsg::Disconnected {
            agent: "h1".into(),
            tx,
        },
        20,
    );
    let (_tx, mut rx) = connect(&mut d, 30);
    d.flush(30);
    assert!(sent(&mut rx).is_empty());
    // A decision back to what the host has needs nothing sent either.
    decide(&mut d, 4.0, 40);
    decide(&mut d, 2.0, 41);
    d.flush(41);
    assert!(sent(&mut rx).is_empty(), "4 was superseded before it left");
    assert_eq!(counts(&d).superseded, 1);
}

#[test]
fn a_failed_apply_is_tried_again_and_so_is_one_without_an_answer() {
    let mut d = dispatcher();
    let (_tx, mut rx) = connect(&mut d, 0);
    decide(&mut d, 2.0, 0);
    d.flush(0);
    let first = rx.try_recv().unwrap();
    answer(&mut d, &first, false, 100);
    d.tick(100 + RETRY_MS - 1);
    d.flush(100 + RETRY_MS - 1);
    assert!(sent(&mut rx).is_empty(), "not before the retry delay");
    d.tick(100 + RETRY_MS);
    d.flush(100 + RETRY_MS);
    let second = rx.try_recv().unwrap();
    assert_eq!((second.value, second.id != first.id), (2.0, true));
    // No answer at all: counted failed after ANSWER_MS, then tried again.
    let t = 100 + RETRY_MS;
    d.tick(t + ANSWER_MS + 1);
    d.flush(t + ANSWER_MS + 1);
    let c = counts(&d);
    assert_eq!(c.failed, 2, "{c:?}");
    assert!(c.last_failure.unwrap().contains("no outcome within 30 s"));
    d.tick(t + ANSWER_MS + 1 + RETRY_MS);
    d.flush(t + ANSWER_MS + 1 + RETRY_MS);
    let third = rx.try_recv().unwrap();
    answer(&mut d, &third, true, t + ANSWER_MS + 2 + RETRY_MS);
    d.flush(t + ANSWER_MS + 2 + RETRY_MS);
    let c = counts(&d);
    assert_eq!((c.sent, c.applied, c.failed), (3, 1, 2));
}

#[test]
fn a_disconnect_returns_unanswered_deliveries_and_an_older_session_does_not_unplug_a_newer() {
    let mut d = dispatcher();
    let (current, mut rx) = connect(&mut d, 0);
    decide(&mut d, 4.0, 0);
    d.flush(0);
    assert_eq!(sent(&mut rx), [4.0]);
    let stale = Chan::default();
    d.take(
        DispatchMsg::Disconnected {
            agent: "h1".into(),
            tx: stale,
        },
        3,
    );
    assert!(d.is_online("h1"));
    d.take(
        DispatchMsg::Disconnected {
            agent: "h1".into(),
            tx: current,
        },
        3,
    );
    assert_eq!(d.waiting("h1"), 1, "back to wait for the host");
}
