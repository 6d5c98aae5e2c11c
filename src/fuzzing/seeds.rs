//! The seed corpus: one or a few valid inputs per target, made with the
//! real encoders, so the fuzzer starts from sessions that get far and
//! mutates from there. `cargo test --test fuzz_corpus -- --ignored
//! write_seed_corpus` rewrites `fuzz/corpus/<target>/seed-*`.

use std::path::Path;

use vcp_common::batch::{Batch, Column, SeriesTable};
use vcp_common::codec::BatchEncoder;
use vcp_common::frame::{encode_frame, Applied, Frame, Hello, Response, PROTOCOL_VERSION};
use vcp_common::module::{param, Proposal, Target};

use super::{agent, module};

fn frames(fs: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fs {
        encode_frame(f, &mut out);
    }
    out
}

/// A script step feeding `bytes` (cut to what a `u16` length can say).
fn feed(script: &mut Vec<u8>, op: u8, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(usize::from(u16::MAX))];
    script.push(op);
    script.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    script.extend_from_slice(bytes);
}

/// `n` batches of a small host from a real encoder, numbered from `first`.
fn batches(first: u64, n: u64) -> Vec<Frame> {
    let mut table = SeriesTable::new();
    for r in ["cpu", "cpu/0", "memory", "nic/eth0"] {
        table.intern(r, "cpu.utilization", -4);
    }
    let mut enc = BatchEncoder::new(3).expect("an encoder");
    (first..first + n)
        .map(|seq| {
            let b = Batch {
                seq,
                timestamps: vec![
                    1_700_000_000_000 + seq as i64 * 1000,
                    1_700_000_000_500 + seq as i64 * 1000,
                ],
                columns: (0..4)
                    .map(|s| Column {
                        series: s,
                        start: 0,
                        values: vec![0.25 * f64::from(s), 0.5 + seq as f64 / 100.0],
                    })
                    .collect(),
            };
            let mut payload = Vec::new();
            enc.encode(&b, &table, &mut payload).expect("encodable");
            Frame::Batch(payload)
        })
        .collect()
}

fn hello(first_seq: u64) -> Frame {
    Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        agent_id: agent::PEER.into(),
        hostname: "seed".into(),
        incarnation: 1,
        first_seq,
    })
}

fn agent_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut fresh = vec![0u8];
    let mut stream = frames(&[hello(1)]);
    stream.extend(frames(&batches(1, 3)));
    feed(&mut fresh, agent::op::FEED, &stream);
    feed(
        &mut fresh,
        agent::op::FEED,
        &frames(&[
            Frame::Applied(Applied {
                id: 1,
                ok: true,
                detail: "done".into(),
            }),
            Frame::Dropped {
                up_to: 5,
                readings: 40,
            },
        ]),
    );
    fresh.extend_from_slice(&[agent::op::CONFIGURE, agent::op::WAIT, 60, agent::op::FINISH]);

    // Known to the supervisor up to batch 2; batches 1..=4 resent. The
    // commit of the duplicates is held while 3 and 4 arrive; theirs fails.
    let mut resend = vec![(2 << 1) | 1];
    let all = batches(1, 4);
    let mut first = frames(&[hello(1)]);
    first.extend(frames(&all[..2]));
    feed(&mut resend, agent::op::FEED, &first);
    resend.push(agent::op::HOLD);
    feed(&mut resend, agent::op::FEED, &frames(&all[2..]));
    resend.push(agent::op::FAIL);
    vec![("fresh", fresh), ("resend", resend)]
}

fn module_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let answer = |round, n| {
        Frame::Respond(Response {
            round,
            proposals: (0..n)
                .map(|i| Proposal {
                    target: Target::ServiceSet(format!("s{}", i % 4)),
                    parameter: if i % 5 == 4 {
                        param::LB_WEIGHT.into()
                    } else {
                        param::INSTANCES.into()
                    },
                    value: f64::from(i % 10),
                })
                .collect(),
        })
    };
    let mut s = Vec::new();
    feed(
        &mut s,
        module::op::FEED,
        &frames(&[Frame::Register(module::spec())]),
    );
    s.push(module::op::SOLICIT);
    feed(&mut s, module::op::FEED, &frames(&[answer(1, 3)]));
    s.push(module::op::SOLICIT);
    feed(&mut s, module::op::FEED, &frames(&[answer(2, 40)]));
    s.extend_from_slice(&[module::op::WAIT, 10, module::op::SOLICIT]);
    feed(
        &mut s,
        module::op::FEED,
        &frames(&[answer(3, 1), answer(3, 1)]),
    );
    vec![("session", s)]
}

/// Every seed: (target, name, bytes).
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |target, name: &str, bytes| out.push((target, name.to_owned(), bytes));
    let mut stream = frames(&[hello(1)]);
    stream.extend(frames(&batches(1, 2)));
    stream.extend(frames(&[
        Frame::Ack { seq: 2 },
        Frame::Close {
            reason: "bye".into(),
        },
    ]));
    add("frame", "stream", stream);
    // A record compressed by the target itself: mode = (length << 1) | 1.
    let record = [
        0x03u8, 0, 1, 0, 0, 3, b'c', b'p', b'u', 1, b'x', 1, 1, 0, 0, 1, 0, 1, 1, 10,
    ];
    let mut batch = vec![((record.len() as u8) << 1) | 1];
    batch.extend_from_slice(&record);
    add("batch", "record", batch);
    for (name, bytes) in agent_seeds() {
        add("agent_session", name, bytes);
    }
    for (name, bytes) in module_seeds() {
        add("module_session", name, bytes);
    }
    let app: [(&str, &str); 3] = [
        (
            "good",
            include_str!("../../agent/src/sensors/fixtures/app_good.txt"),
        ),
        (
            "malformed",
            include_str!("../../agent/src/sensors/fixtures/app_malformed.txt"),
        ),
        (
            "mixed",
            include_str!("../../agent/src/sensors/fixtures/app_mixed.txt"),
        ),
    ];
    for (name, text) in app {
        let mut bytes = vec![1];
        bytes.extend_from_slice(text.as_bytes());
        add("app_line", name, bytes);
    }
    let configs: [(&str, u8, &str); 2] = [
        (
            "supervisor",
            0,
            include_str!("../../supervisor/supervisor.example.toml"),
        ),
        ("agent", 1, include_str!("../../agent/agent.example.toml")),
    ];
    for (name, which, text) in configs {
        let mut bytes = vec![which];
        bytes.extend_from_slice(text.as_bytes());
        add("config", name, bytes);
    }
    out
}

/// Writes every seed under `corpus/<target>/seed-<name>`.
pub fn write(corpus: &Path) -> std::io::Result<()> {
    for (target, name, bytes) in all() {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}
