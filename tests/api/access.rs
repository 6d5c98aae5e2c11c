//! The access matrix over every endpoint, and what each caller sees.

use serde_json::Value;

use crate::common::{self, FixedInstances};
use crate::*;

const WHO: [&str; 8] = [
    "none", "bad", "operator", "acme", "globex", "vendor", "expired", "revoked",
];

/// One request of the access matrix.
struct Row {
    /// The path as documented, and the method.
    doc: &'static str,
    method: &'static str,
    path: String,
    body: Option<&'static str>,
    /// The status each of `WHO` but the last two gets (an expired or a
    /// revoked token gets 401 wherever no token does).
    want: [u16; 6],
}

/// Order matters only for the last row, which creates.
fn matrix(wf: &str, spare: &str) -> Vec<Row> {
    let fb = Some(r#"{"rating": 4, "control_plane": "vcp-acme"}"#);
    vec![
        Row {
            doc: "/v1/openapi.json",
            method: "get",
            path: "/v1/openapi.json".into(),
            body: None,
            want: [200, 200, 200, 200, 200, 200],
        },
        Row {
            doc: "/v1/control-planes",
            method: "get",
            path: "/v1/control-planes".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/control-planes/{id}",
            method: "get",
            path: "/v1/control-planes/vcp-acme".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 403],
        },
        Row {
            doc: "/v1/control-planes/{id}",
            method: "delete",
            path: "/v1/control-planes/vcp-acme".into(),
            body: None,
            want: [401, 401, 409, 409, 404, 403],
        },
        Row {
            doc: "/v1/service-sets",
            method: "get",
            path: "/v1/service-sets".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/service-sets/{id}",
            method: "get",
            path: "/v1/service-sets/acme-shop".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 403],
        },
        Row {
            doc: "/v1/workflows",
            method: "get",
            path: "/v1/workflows".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/workflows/{id}",
            method: "get",
            path: format!("/v1/workflows/{wf}"),
            body: None,
            want: [401, 401, 200, 404, 200, 403],
        },
        Row {
            doc: "/v1/modules",
            method: "get",
            path: "/v1/modules".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 200],
        },
        Row {
            doc: "/v1/modules/{id}",
            method: "get",
            path: "/v1/modules/globex-scaler".into(),
            body: None,
            want: [401, 401, 200, 404, 200, 200],
        },
        Row {
            doc: "/v1/modules/{id}",
            method: "get",
            path: "/v1/modules/default-autoscaling".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 404],
        },
        Row {
            doc: "/v1/modules/{id}/feedback",
            method: "post",
            path: "/v1/modules/acme-predictive/feedback".into(),
            body: fb,
            want: [401, 401, 201, 201, 404, 403],
        },
        Row {
            doc: "/v1/decisions",
            method: "get",
            path: "/v1/decisions".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/statements/{account}",
            method: "get",
            path: "/v1/statements/customer:acme".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 404],
        },
        Row {
            doc: "/v1/statements/{account}",
            method: "get",
            path: "/v1/statements/vendor:v".into(),
            body: None,
            want: [401, 401, 200, 404, 404, 200],
        },
        Row {
            doc: "/v1/hosts",
            method: "get",
            path: "/v1/hosts".into(),
            body: None,
            want: [401, 401, 200, 200, 200, 403],
        },
        Row {
            doc: "/v1/hosts/{id}",
            method: "get",
            path: "/v1/hosts/agent-2".into(),
            body: None,
            want: [401, 401, 200, 200, 404, 403],
        },
        Row {
            doc: "/v1/tokens",
            method: "get",
            path: "/v1/tokens".into(),
            body: None,
            want: [401, 401, 200, 403, 403, 403],
        },
        Row {
            doc: "/v1/tokens",
            method: "post",
            path: "/v1/tokens".into(),
            body: Some(r#"{"account": "acme", "role": "customer", "ttl": "1h"}"#),
            want: [401, 401, 201, 403, 403, 403],
        },
        Row {
            doc: "/v1/tokens/{id}",
            method: "delete",
            path: format!("/v1/tokens/{spare}"),
            body: None,
            want: [401, 401, 200, 403, 403, 403],
        },
        Row {
            doc: "/v1/sign-in-codes",
            method: "post",
            path: "/v1/sign-in-codes".into(),
            body: None,
            want: [401, 401, 201, 201, 201, 201],
        },
        Row {
            doc: "/v1/audit",
            method: "get",
            path: "/v1/audit".into(),
            body: None,
            want: [401, 401, 200, 403, 403, 403],
        },
        Row {
            doc: "/metrics",
            method: "get",
            path: "/metrics".into(),
            body: None,
            want: [401, 401, 200, 403, 403, 403],
        },
        // Creates globex's plane (once): the operator then gets 409.
        Row {
            doc: "/v1/control-planes",
            method: "post",
            path: "/v1/control-planes".into(),
            body: Some(r#"{"customer": "globex"}"#),
            want: [401, 401, 202, 403, 409, 403],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_checks_role_and_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let control = fleet.supervisor().control.clone();
    let module = fleet.spawn_module(FixedInstances(2.0)).unwrap();
    wait_connected(&control, "acme-predictive").await;
    // Globex provisions a plane (all defaults) and removes it again.
    let wf = workflow(addr, "POST", "/v1/control-planes", &t.globex, Some("{}")).await;
    let wf = wf["id"].as_str().unwrap().to_owned();
    let path = "/v1/control-planes/vcp-globex";
    workflow(addr, "DELETE", path, &t.globex, None).await;

    // A token that expired, one revoked, and one the matrix revokes.
    let accounts = fleet.supervisor().accounts.clone();
    let brief = accounts.issue("acme", Role::Customer, "1s".parse().unwrap(), "test");
    let revoked = accounts.create_token("operator", Role::Operator).unwrap();
    let id = |token: &str| vcp_store::accounts::digest(token)[..12].to_owned();
    accounts.revoke(&id(&revoked), "test").unwrap();
    let spare = accounts.create_token("globex", Role::Customer).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let tokens: [Option<&str>; 8] = [
        None,
        Some("vcp_0000000000000000000000000000000000000000000000000000000000000000"),
        Some(&t.operator),
        Some(&t.acme),
        Some(&t.globex),
        Some(&t.vendor),
        Some(&brief.unwrap().token),
        Some(&revoked),
    ];
    let rows = matrix(&wf, &id(&spare));
    for Row {
        method,
        path,
        body,
        want,
        ..
    } in &rows
    {
        for (i, token) in tokens.iter().enumerate() {
            let (status, resp) = call(addr, &method.to_uppercase(), path, *token, *body).await;
            let want = want.get(i).copied().unwrap_or(want[0]);
            assert_eq!(status, want, "{} {method} {path}: {resp}", WHO[i]);
            let reason = ["expired at", "revoked at"].get(i.wrapping_sub(6));
            if let (Some(reason), 401) = (reason, status) {
                let error = resp["error"].as_str().unwrap_or_default();
                assert!(error.contains(reason), "{} {path}: {resp}", WHO[i]);
            }
            if status == 202 {
                finished(addr, resp["workflow"].as_str().unwrap(), &t.operator).await;
            }
            if status >= 400 {
                assert!(
                    resp["error"].is_string(),
                    "{} {method} {path}: error body {resp}",
                    WHO[i]
                );
            }
        }
    }
    // The matrix covers every documented operation, and only those.
    let (_, doc) = call(addr, "GET", "/v1/openapi.json", None, None).await;
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(|m| (p.clone(), m.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    documented.push(("/metrics".into(), "get".into()));
    documented.sort();
    let mut tested: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.doc.to_owned(), r.method.to_owned()))
        .collect();
    tested.sort();
    tested.dedup();
    assert_eq!(documented, tested);

    // What each sees.
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, planes) = get(addr, "/v1/control-planes", &t.acme).await;
    assert_eq!(ids(&planes, "id"), ["vcp-acme"]);
    let (_, mods) = get(addr, "/v1/modules", &t.vendor).await;
    assert_eq!(
        ids(&mods, "id"),
        ["acme-predictive", "globex-scaler", "initech-scaler"]
    );
    let (_, mods) = get(addr, "/v1/modules", &t.acme).await;
    let acme_mods = ids(&mods, "id");
    assert!(
        acme_mods.contains(&"acme-predictive".to_owned())
            && !acme_mods.contains(&"globex-scaler".to_owned())
    );
    for m in mods.as_array().unwrap() {
        for p in m["planes"].as_array().unwrap() {
            assert_eq!(p["customer"], "acme", "acme sees another's record: {m}");
        }
    }
    let (_, sets) = get(addr, "/v1/service-sets", &t.acme).await;
    assert_eq!(ids(&sets, "id"), ["acme-shop"]);
    assert_eq!(sets[0]["control_plane"], "vcp-acme");
    let (_, sets) = get(addr, "/v1/service-sets", &t.operator).await;
    assert_eq!(
        ids(&sets, "id"),
        // Planes in order: default, vcp-acme, then vcp-globex (the matrix's
        // last row provisioned it).
        ["ops-web", "initech-db", "acme-shop", "globex-api"]
    );
    let (_, hosts) = get(addr, "/v1/hosts", &t.globex).await;
    assert_eq!(ids(&hosts, "id"), ["agent-1"]);
    for r in hosts[0]["readings"].as_object().unwrap().keys() {
        assert!(r == "cpu" || r.starts_with("cpu/"), "globex sees {r}");
    }
    let (_, hosts) = get(addr, "/v1/hosts", &t.operator).await;
    assert_eq!(ids(&hosts, "id"), ["agent-1", "agent-2"]);
    let mem = hosts[0]["memory_total_bytes"].as_f64().unwrap();
    assert_eq!(mem, common::mem_total_bytes());
    let (_, decisions) = get(addr, "/v1/decisions", &t.acme).await;
    assert!(decisions
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["control_plane"] == "vcp-acme"));
    module.stop();
    fleet.stop().await;
}
