//! A whole remote module session from arbitrary bytes — registration,
//! solicitations, answers — with every answer admitted into a round the way
//! the supervisor admits it, and the request statistics the biller reads
//! checked against what admission let through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vcp_common::frame::{Registered, PROTOCOL_VERSION};
use vcp_common::module::{param, Kind, ModuleSpec, SensorSelector, Solicitation};
use vcp_common::session::module::{ModuleEvent, ModuleSession, ModuleSessionLimits};
use vcp_common::view::{Member, SensorView};
use vcp_core::constraints::Constraints;
use vcp_core::constraints::{ModuleLimits, OnViolation, ParamConstraint};
use vcp_core::instance::Instance;
use vcp_core::mediation::{Mediator, PolicyTable};
use vcp_core::plane::Instances;
use vcp_core::plane::{ControlPlane, Scope, ServiceSetDef};
use vcp_core::round::RoundCore;
use vcp_core::settings::SettingsMap;

use super::Script;

/// The module's id, as its certificate would name it.
pub const PEER: &str = "fuzz-module";
/// Requests admitted from one answer.
pub const QUOTA: u32 = 16;

pub fn limits() -> ModuleSessionLimits {
    ModuleSessionLimits {
        max_frame: 1 << 16,
        register_timeout: Duration::from_secs(5),
        frames_per_second: 50.0,
        frames_burst: 50.0,
        max_outputs: 8,
        max_inputs: 8,
        max_goals: 4,
        max_name: 64,
    }
}

/// The spec the module is configured with (what it registers as).
pub fn spec() -> ModuleSpec {
    ModuleSpec {
        id: PEER.into(),
        kind: Kind::Autoscaling,
        vendor: "fuzz".into(),
        version: "1".into(),
        inputs: vec![SensorSelector::metric("*")],
        outputs: vec![param::INSTANCES.into(), param::LB_WEIGHT.into()],
        goals: vec![],
        deadline_ms: 50,
        custom_sensors: vec![],
    }
}

/// Script steps (each one byte, then its arguments).
pub mod op {
    /// `u16` length, then that many stream bytes.
    pub const FEED: u8 = 0;
    /// Solicit the module for the next round, if it is idle.
    pub const SOLICIT: u8 = 1;
    /// One byte: time passes by that many × 20 ms.
    pub const WAIT: u8 = 2;
    /// The module finishes its stream.
    pub const FINISH: u8 = 3;
    /// The supervisor ends the session (the plane left force).
    pub const END: u8 = 4;
    pub const COUNT: u8 = 5;
}

fn instance() -> Instance {
    let sets = (0..3)
        .map(|i| ServiceSetDef {
            id: format!("s{i}"),
            customer: "c".into(),
            members: vec![Member {
                host: format!("h{i}"),
                resource: None,
            }],
            instances: Instances {
                min: 1,
                max: 8,
                initial: 2,
            },
            goals: vec![],
            instance: None,
        })
        .collect();
    let plane = Arc::new(ControlPlane {
        id: "vcp-c".into(),
        customer: "c".into(),
        scope: Arc::new(Scope::new(sets, false)),
        modules: std::array::from_fn(|_| vec![]),
        provisioned: true,
    });
    let limits = ModuleLimits {
        rate_per_second: 200.0,
        max_requests_per_round: QUOTA,
    };
    Instance::new(spec(), plane, false, true, limits, None)
}

fn core() -> RoundCore {
    let constraints = Constraints::new(&[ParamConstraint {
        parameter: param::INSTANCES.into(),
        min: Some(1.0),
        max: Some(8.0),
        max_step: None,
        on_violation: OnViolation::Clip,
    }]);
    let mediator = Mediator::new(
        Kind::Autoscaling,
        Arc::new(PolicyTable::new(vec![])),
        Arc::default(),
        1,
    );
    RoundCore::new(constraints, mediator)
}

/// Drives one module session with the script in `data`.
pub fn module_session(data: &[u8]) {
    run(data);
}

/// How far a script got: answers admitted, requests admitted, whether the
/// session closed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub answers: u64,
    pub admitted: u64,
    pub closed: bool,
}

/// [`module_session`], saying how far the script got.
pub fn run(data: &[u8]) -> Reached {
    let mut answers = 0;
    let mut script = Script::new(data);
    let start = Instant::now();
    let mut now = start;
    let mut s = ModuleSession::new(PEER, limits(), now);
    let m = instance();
    let mut core = core();
    let settings = SettingsMap::default();
    let (mut round, mut asked) = (0u64, None::<u64>);
    let (mut received, mut admitted) = (0u64, 0u64);
    let mut closed = false;
    while let Some(step) = script.byte() {
        match step % op::COUNT {
            op::FEED => {
                let n = usize::from(script.u16().unwrap_or(0));
                s.handle_input(script.take(n), now);
            }
            op::SOLICIT => {
                let idle = s.is_idle();
                round += 1;
                let sent = s.solicit(&Solicitation {
                    round,
                    kind: Kind::Autoscaling,
                    budget_ms: 50,
                    view: SensorView::default(),
                });
                assert_eq!(sent, idle, "only an idle module is solicited");
                if sent {
                    asked = Some(round);
                }
            }
            op::WAIT => {
                let n = script.byte().unwrap_or(0);
                now += Duration::from_millis(20 * u64::from(n));
                s.handle_timeout(now);
            }
            op::FINISH => s.handle_finished(),
            op::END => s.end(vcp_common::protocol::close::NORMAL, "retired".into()),
            _ => {}
        }
        while let Some(ev) = s.poll_event() {
            assert!(!closed, "an event after the session closed: {ev:?}");
            match ev {
                ModuleEvent::Register(spec) => {
                    assert_eq!(spec.id, PEER, "registered under another id");
                    s.accept(Registered {
                        protocol: PROTOCOL_VERSION,
                        control_plane: "vcp-c".into(),
                        customer: "c".into(),
                    });
                }
                ModuleEvent::Response {
                    round: r,
                    proposals,
                    ..
                } => {
                    assert_eq!(asked.take(), Some(r), "an answer nobody asked for");
                    answers += 1;
                    received += proposals.len() as u64;
                    core.begin();
                    let ms = now.duration_since(start).as_millis() as i64;
                    core.admit(0, &m, proposals, &settings, ms);
                    admitted += core.admitted() as u64;
                }
                ModuleEvent::Closed(_) => closed = true,
            }
        }
        s.take_transmit();
        let t = m.stats.totals();
        assert_eq!(
            t.requests, received,
            "every request counted once, none made up"
        );
        let faults = t.late + t.rejected + t.clipped;
        assert!(faults <= t.requests && t.over_quota <= t.rejected);
        assert!(
            t.requests - faults <= admitted,
            "billable {} > admitted {admitted}",
            t.requests - faults
        );
        assert!(t.fault_bytes <= t.bytes);
    }
    Reached {
        answers,
        admitted,
        closed,
    }
}
