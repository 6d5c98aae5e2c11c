//! Remote modules that break the protocol or flood: closed and recorded,
//! and never billed to the customer for what was not admitted.

use std::time::Duration;

use serde::Serialize;
use vcp_common::frame::{Frame, Response, ALPN_MODULE};
use vcp_common::module::{param, Proposal, Target};
use vcp_common::protocol::close;
use vcp_store::ledger::{LedgerReader, Period};

use crate::common::hostile::{encode, Hostile};
use crate::common::{acme_scenario, autoscaler_spec, fast, init_logs, wait_until};
use vcp::loopback::Loopback;

const MODULE: &str = "acme-hostile";

async fn fleet(extra: &str) -> (Loopback, tempfile::TempDir) {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = fast(2, dir.path());
    opts.control = acme_scenario(MODULE, "replace", extra);
    (Loopback::start(opts).await.unwrap(), dir)
}

fn module_cert(fleet: &Loopback) -> vcp_common::identity::TlsMaterial {
    fleet.ca.material(&fleet.ca.module(MODULE).unwrap())
}

/// Registers as the configured module; returns the stream.
async fn registered(h: &Hostile) -> (quinn::SendStream, quinn::RecvStream, Vec<u8>) {
    let register = Frame::Register(autoscaler_spec(MODULE, "v"));
    let (send, mut recv) = h.open(&encode(&[register])).await;
    let mut buf = vcp_common::protocol::FrameBuffer::new(16 << 20);
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let n = recv.read(&mut chunk).await.unwrap().unwrap();
        buf.extend(&chunk[..n]);
        if let Some((f, _)) = buf.next_frame().unwrap() {
            assert!(matches!(f, Frame::Registered(_)), "{f:?}");
            return (send, recv, Vec::new());
        }
    }
}

fn instances(n: usize) -> Vec<Proposal> {
    (0..n)
        .map(|_| Proposal {
            target: Target::ServiceSet("acme-shop".into()),
            parameter: param::INSTANCES.into(),
            value: 3.0,
        })
        .collect()
}

fn module_summary(fleet: &Loopback) -> vcp_core::stats::ModuleSummary {
    fleet
        .supervisor()
        .control
        .modules()
        .into_iter()
        .find(|m| m.id == MODULE)
        .expect("the module registered")
}

/// Every request fee line naming the module: (debit account, quantity).
fn request_fees(dir: &std::path::Path) -> Vec<(String, f64)> {
    let ledger = LedgerReader::open(dir).unwrap();
    let mut out = Vec::new();
    for account in ledger.accounts().unwrap() {
        let s = ledger.statement(&account, &Period::All).unwrap();
        for l in s
            .lines
            .iter()
            .filter(|l| l.kind == "request_fee" && l.module == MODULE)
        {
            if l.amount > 0 {
                out.push((account.clone(), l.quantity));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_responses_close_the_session_and_bill_nothing() {
    let (fleet, dir) = fleet("[prices]\ndefault_request_fee = 50\n").await;
    let h = Hostile::connect(fleet.addr, &module_cert(&fleet), ALPN_MODULE).await;
    let (mut send, recv, _) = registered(&h).await;
    // 50 answers of 20,000 proposals each, none asked for (this once
    // became 1,000,000 billed requests in a quarter of a second).
    let flood: Vec<Frame> = (0..50)
        .map(|i| {
            Frame::Respond(Response {
                round: 1_000 + i,
                proposals: instances(20_000),
            })
        })
        .collect();
    for f in &flood {
        if send
            .write_all(&encode(std::slice::from_ref(f)))
            .await
            .is_err()
        {
            break;
        }
    }
    let end = h.ending(recv).await;
    assert_eq!(end.code, u64::from(close::PROTOCOL), "{end:?}");
    // Unsolicited, or for another round than the one pending.
    assert!(end.reason.starts_with("protocol: a"), "{}", end.reason);
    assert!(end.reason.contains("response"), "{}", end.reason);
    let m = module_summary(&fleet);
    assert_eq!(
        (m.requests, m.protocol_errors, m.connected),
        (0, 1, false),
        "{m:?}"
    );
    assert!(m.last_fault.unwrap().starts_with("protocol: "));
    fleet.supervisor().control.bill_now(false).await.unwrap();
    fleet.stop().await;
    assert!(request_fees(dir.path()).is_empty(), "nothing billed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_quota_are_charged_to_the_vendor() {
    // (A sub-table of the last [[custom_modules]] entry.)
    let extra = "[custom_modules.limits]\nrate_per_second = 100000.0\nmax_requests_per_round = 10\n[prices]\ndefault_request_fee = 50\n";
    let (fleet, dir) = fleet(extra).await;
    let h = Hostile::connect(fleet.addr, &module_cert(&fleet), ALPN_MODULE).await;
    let (mut send, mut recv, _) = registered(&h).await;
    let mut buf = vcp_common::protocol::FrameBuffer::new(16 << 20);
    let mut chunk = vec![0; 64 * 1024];
    let mut answered = 0;
    while answered < 3 {
        let n = recv.read(&mut chunk).await.unwrap().unwrap();
        buf.extend(&chunk[..n]);
        while let Some((f, _)) = buf.next_frame().unwrap() {
            if let Frame::Solicit(s) = f {
                let answer = Frame::Respond(Response {
                    round: s.round,
                    proposals: instances(5_000),
                });
                send.write_all(&encode(&[answer])).await.unwrap();
                answered += 1;
            }
        }
    }
    let control = fleet.supervisor().control.clone();
    wait_until("the answers admitted", Duration::from_secs(20), || {
        module_summary(&fleet).requests >= 15_000
    })
    .await;
    let m = module_summary(&fleet);
    assert_eq!(m.requests, 15_000, "{m:?}");
    // A late answer is the vendor's whole; of an answer on time, all but
    // the quota of 10.
    let on_time = (15_000 - m.late) / 5_000;
    assert_eq!(m.over_quota, on_time * 4_990, "{m:?}");
    control.bill_now(false).await.unwrap();
    drop(h);
    fleet.stop().await;
    let fees = request_fees(dir.path());
    let paid = |who: &str| -> f64 { fees.iter().filter(|(a, _)| a == who).map(|(_, q)| q).sum() };
    let (customer, vendor) = (paid("customer:acme"), paid("vendor:v"));
    assert!(
        customer <= 30.0,
        "the customer pays at most the quota: {fees:?}"
    );
    assert_eq!(
        customer + vendor,
        15_000.0,
        "every request charged once: {fees:?}"
    );
}

/// A `Target` as it travels, without the checks a `ResourceId` makes.
#[derive(Serialize)]
enum RawTarget {
    #[allow(dead_code)]
    ServiceSet(String),
    #[allow(dead_code)]
    Member {
        service_set: String,
        host: String,
    },
    Resource {
        host: String,
        resource: String,
    },
}

#[derive(Serialize)]
struct RawResponse {
    round: u64,
    proposals: Vec<(RawTarget, String, f64)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_dot_dot_does_not_decode() {
    let (fleet, _dir) = fleet("").await;
    let h = Hostile::connect(fleet.addr, &module_cert(&fleet), ALPN_MODULE).await;
    let (mut send, recv, _) = registered(&h).await;
    let body = postcard::to_stdvec(&RawResponse {
        round: 1,
        proposals: vec![(
            RawTarget::Resource {
                host: "agent-2".into(),
                resource: "cgroup/web/../../etc".into(),
            },
            param::CPU_SHARE.into(),
            1.0,
        )],
    })
    .unwrap();
    let mut frame = ((body.len() + 1) as u32).to_le_bytes().to_vec();
    frame.push(10); // Respond
    frame.extend(body);
    send.write_all(&frame).await.unwrap();
    let end = h.ending(recv).await;
    assert_eq!(end.code, u64::from(close::PROTOCOL), "{end:?}");
    assert!(
        end.reason.contains("bad frame: invalid respond frame")
            && end.reason.contains("'..' segment"),
        "{end:?}"
    );
    fleet.stop().await;
}
