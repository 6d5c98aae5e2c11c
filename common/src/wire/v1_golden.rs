//! Golden bytes of `vcp-module/1`: what a deployed module sends and
//! receives, byte for byte. A failure here means a change would break
//! every module in the field — change the conversion, not these bytes
//! (see the rules in `wire/mod.rs`).

use crate::frame::{decode_frame, encode_frame, Frame, Registered, Response};
use crate::module::{
    Cmp, Condition, CustomSensor, Goal, Kind, ModuleSpec, Objective, Proposal, SensorSelector,
    Solicitation, Target,
};
use crate::resource::ResourceId;
use crate::view::{HostReadings, Member, Reading, SensorView, ServiceSetState, Setting};

fn spec() -> ModuleSpec {
    ModuleSpec {
        id: "m".into(),
        kind: Kind::Autoscaling,
        vendor: "v".into(),
        version: "1".into(),
        inputs: vec![
            SensorSelector::metric("cpu.*"),
            SensorSelector {
                metric: "nic.rx".into(),
                resource_prefix: Some("nic/".into()),
            },
        ],
        outputs: vec!["instances".into()],
        goals: vec![Goal {
            metric: "instances".into(),
            objective: Objective::Minimise,
            target: Some(2.0),
            conditions: vec![Condition {
                metric: "lat".into(),
                cmp: Cmp::Below,
                value: 0.5,
            }],
        }],
        deadline_ms: 50,
        custom_sensors: vec![CustomSensor {
            metric: "q".into(),
            unit: "n".into(),
            help: "h".into(),
        }],
    }
}

fn targets() -> [Target; 3] {
    [
        Target::ServiceSet("s".into()),
        Target::Member {
            service_set: "s".into(),
            host: "h".into(),
        },
        Target::Resource {
            host: "h".into(),
            resource: ResourceId::new("nic/e").unwrap(),
        },
    ]
}

fn solicitation() -> Solicitation {
    Solicitation {
        round: 7,
        kind: Kind::TrafficMitigation,
        budget_ms: 10,
        view: SensorView {
            at_ms: 1000,
            hosts: vec![HostReadings {
                host: "h".into(),
                readings: vec![Reading {
                    resource: "cpu".into(),
                    metric: "u".into(),
                    value: 0.25,
                    at_ms: 999,
                }],
            }
            .into()],
            service_sets: vec![ServiceSetState {
                id: "s".into(),
                customer: "c".into(),
                members: vec![
                    Member {
                        host: "h".into(),
                        resource: None,
                    },
                    Member {
                        host: "h".into(),
                        resource: Some(ResourceId::new("cgroup/w").unwrap()),
                    },
                ],
                instances: 2,
                min_instances: 1,
                max_instances: 4,
                goals: vec![],
            }]
            .into(),
            settings: targets()
                .into_iter()
                .map(|target| Setting {
                    target,
                    parameter: "p".into(),
                    value: 1.0,
                })
                .collect::<Vec<_>>()
                .into(),
        },
    }
}

fn response() -> Response {
    Response {
        round: 7,
        proposals: targets()
            .into_iter()
            .map(|target| Proposal {
                target,
                parameter: "p".into(),
                value: -1.5,
            })
            .collect(),
    }
}

fn frames() -> Vec<(&'static str, Frame)> {
    vec![
        ("register", Frame::Register(spec())),
        (
            "registered",
            Frame::Registered(Registered {
                protocol: 2,
                control_plane: "vcp-c".into(),
                customer: "c".into(),
            }),
        ),
        ("solicit", Frame::Solicit(solicitation())),
        ("respond", Frame::Respond(response())),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of each frame, length prefix and type included — the same
/// bytes modules exchanged before the wire had types of its own.
const GOLDEN: &[(&str, &str)] = &[
    ("register", "5300000007016d020176013102056370752e2a00066e69632e727801046e69632f0109696e7374616e6365730109696e7374616e6365730001000000000000004001036c617400000000000000e03f32010171016e0168"),
    ("registered", "0a0000000802057663702d630163"),
    ("solicit", "630000000907060ad00f01016801036370750175000000000000d03fce0f010173016302016800016801086367726f75702f7702010400030001730170000000000000f03f01017301680170000000000000f03f020168056e69632f650170000000000000f03f"),
    ("respond", "320000000a07030001730170000000000000f8bf01017301680170000000000000f8bf020168056e69632f650170000000000000f8bf"),
];

#[test]
fn module_frames_encode_to_the_golden_bytes_and_back() {
    for (name, frame) in frames() {
        let mut out = Vec::new();
        encode_frame(&frame, &mut out);
        let golden = GOLDEN.iter().find(|(n, _)| *n == name).map(|(_, h)| *h);
        assert_eq!(
            Some(hex(&out).as_str()),
            golden,
            "{name}: the bytes of vcp-module/1 changed"
        );
        let (back, used) = decode_frame(&out, 1 << 20).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(back, frame, "{name}: decodes to what was encoded");
    }
}

#[test]
fn an_invalid_resource_from_a_module_is_a_bad_frame() {
    let mut out = Vec::new();
    encode_frame(&Frame::Respond(response()), &mut out);
    // The resource "nic/e" is the last string: make it "nic/."
    let at = out.windows(5).rposition(|w| w == b"nic/e").unwrap();
    out[at + 4] = b'.';
    let err = decode_frame(&out, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("invalid respond frame"), "{err}");
}
