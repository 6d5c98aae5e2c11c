//! Round trips and bad input of every frame type.
use super::*;
use crate::module::Proposal;

fn all_frames() -> Vec<Frame> {
    vec![
        Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            agent_id: "host-17".into(),
            hostname: "rack3-u12.example".into(),
            incarnation: 1_732_612_345_678,
            first_seq: 42,
        }),
        Frame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            last_applied: Some(41),
        }),
        Frame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            last_applied: None,
        }),
        Frame::Batch(vec![0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]),
        Frame::Batch(Vec::new()),
        Frame::Ack { seq: u64::MAX },
        Frame::Dropped {
            up_to: 99,
            readings: 6000,
        },
        Frame::Close {
            reason: "protocol error: batch 7: unknown series 12".into(),
        },
        Frame::Register(crate::module::tests::sample_spec()),
        Frame::Registered(Registered {
            protocol: PROTOCOL_VERSION,
            control_plane: "vcp-acme".into(),
            customer: "acme".into(),
        }),
        Frame::Solicit(Solicitation {
            round: 7,
            kind: crate::module::Kind::Autoscaling,
            budget_ms: 50,
            view: crate::view::SensorView {
                at_ms: 1_732_612_345_678,
                hosts: vec![crate::view::HostReadings {
                    host: "agent-2".into(),
                    readings: vec![crate::view::Reading {
                        resource: "cpu".into(),
                        metric: "cpu.utilization".into(),
                        value: 0.25,
                        at_ms: 1_732_612_345_000,
                    }],
                }
                .into()],
                ..Default::default()
            },
        }),
        Frame::Respond(Response {
            round: 7,
            proposals: vec![Proposal {
                target: crate::module::Target::ServiceSet("acme-shop".into()),
                parameter: "instances".into(),
                value: 3.0,
            }],
        }),
        Frame::Configure(Configure {
            id: 3,
            round: 7,
            target: crate::module::Target::ServiceSet("acme-shop".into()),
            parameter: "instances".into(),
            value: 4.0,
        }),
        Frame::Applied(Applied {
            id: 3,
            ok: false,
            detail: "cgroup/web: no such group".into(),
        }),
        Frame::Enrol(Enrol {
            protocol: PROTOCOL_VERSION,
            token: "vcp_00ff".into(),
            csr_der: vec![0x30, 0x82, 1, 2],
        }),
        Frame::Issued(Issued {
            certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
            not_after_ms: 1_800_000_000_000,
        }),
    ]
}

#[test]
fn every_frame_type_round_trips() {
    let frames = all_frames();
    let mut seen: Vec<FrameType> = frames.iter().map(Frame::frame_type).collect();
    seen.dedup();
    assert_eq!(seen, FrameType::ALL, "a frame type lacks a round-trip case");
    let mut wire = Vec::new();
    for f in &frames {
        let before = wire.len();
        encode_frame(f, &mut wire);
        let (got, used) = decode_frame(&wire[before..], 1 << 20).unwrap().unwrap();
        assert_eq!(&got, f);
        assert_eq!(used, wire.len() - before);
    }
    // Back to back in one buffer.
    let mut at = 0;
    for f in &frames {
        let (got, used) = decode_frame(&wire[at..], 1 << 20).unwrap().unwrap();
        assert_eq!(&got, f);
        at += used;
    }
    assert_eq!(at, wire.len());
}

#[test]
fn codes_are_stable() {
    for t in FrameType::ALL {
        assert_eq!(FrameType::from_u8(t.code()), Some(*t));
    }
    let mut wire = Vec::new();
    encode_frame(&Frame::Ack { seq: 300 }, &mut wire);
    assert_eq!(wire, [3, 0, 0, 0, 4, 0xac, 0x02]);
}

#[test]
fn incomplete_input_needs_more_bytes() {
    let mut wire = Vec::new();
    encode_frame(&all_frames()[0], &mut wire);
    for n in 0..wire.len() {
        assert!(
            decode_frame(&wire[..n], 1 << 20).unwrap().is_none(),
            "prefix {n}"
        );
    }
}

#[test]
fn oversized_length_is_refused_from_the_prefix_alone() {
    let prefix = 1001u32.to_le_bytes();
    match decode_frame(&prefix, 1000) {
        Err(FrameError::TooLarge {
            len: 1001,
            max: 1000,
        }) => {}
        other => panic!("{other:?}"),
    }
    match decode_frame(&u32::MAX.to_le_bytes(), usize::MAX) {
        // Accepted length, but nothing buffered yet.
        Ok(None) => {}
        other => panic!("{other:?}"),
    }
    // Exactly at the limit is fine.
    let mut wire = Vec::new();
    encode_frame(&Frame::Batch(vec![9; 999]), &mut wire);
    assert!(decode_frame(&wire, 1000).unwrap().is_some());
    let e = decode_frame(&wire, 999).unwrap_err();
    assert!(e.to_string().contains("1000"), "{e}");
}

#[test]
fn zero_length_is_an_error() {
    assert!(matches!(
        decode_frame(&[0, 0, 0, 0, 4, 1], 100),
        Err(FrameError::Empty)
    ));
}

#[test]
fn unknown_type_is_an_error() {
    for code in [0u8, 15, 0xff] {
        match decode_frame(&[1, 0, 0, 0, code], 100) {
            Err(FrameError::UnknownType { code: c }) if c == code => {}
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[test]
fn bad_bodies_are_errors() {
    // Ack with no body, with a truncated varint, with an overlong varint.
    for body in [&[][..], &[0x80], &[0xff; 11]] {
        let mut wire = (1 + body.len() as u32).to_le_bytes().to_vec();
        wire.push(FrameType::Ack.code());
        wire.extend_from_slice(body);
        assert!(
            matches!(
                decode_frame(&wire, 100),
                Err(FrameError::BadBody {
                    kind: FrameType::Ack,
                    ..
                })
            ),
            "{body:?}"
        );
    }
    // Hello cut short: valid length prefix over a truncated body.
    let mut wire = Vec::new();
    encode_frame(&all_frames()[0], &mut wire);
    let cut = wire.len() - 3;
    let mut short = ((cut - LEN_BYTES) as u32).to_le_bytes().to_vec();
    short.extend_from_slice(&wire[LEN_BYTES..cut]);
    assert!(matches!(
        decode_frame(&short, 100),
        Err(FrameError::BadBody {
            kind: FrameType::Hello,
            ..
        })
    ));
    // Close whose reason is not UTF-8.
    let wire = [4, 0, 0, 0, FrameType::Close.code(), 2, 0xff, 0xfe];
    assert!(matches!(
        decode_frame(&wire, 100),
        Err(FrameError::BadBody { .. })
    ));
    // Welcome with an Option tag that is neither 0 nor 1.
    let wire = [4, 0, 0, 0, FrameType::Welcome.code(), 1, 2, 5];
    assert!(matches!(
        decode_frame(&wire, 100),
        Err(FrameError::BadBody { .. })
    ));
    // String length far beyond the body.
    let wire = [
        7,
        0,
        0,
        0,
        FrameType::Close.code(),
        0xff,
        0xff,
        0xff,
        0xff,
        0x0f,
        b'x',
    ];
    assert!(matches!(
        decode_frame(&wire, 100),
        Err(FrameError::BadBody { .. })
    ));
}

#[test]
fn trailing_body_bytes_are_an_error() {
    let mut wire = Vec::new();
    encode_frame(
        &Frame::Dropped {
            up_to: 1,
            readings: 2,
        },
        &mut wire,
    );
    wire.push(0);
    wire[0] += 1;
    match decode_frame(&wire, 100) {
        Err(FrameError::TrailingBytes {
            kind: FrameType::Dropped,
            n: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
}
