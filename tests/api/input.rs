//! Bad input: a clear 4xx, nothing created.

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let post = |body: &'static str| {
        call(
            addr,
            "POST",
            "/v1/control-planes",
            Some(&t.globex),
            Some(body),
        )
    };
    let cases: [(&str, u16, &str); 9] = [
        ("{\"modules\": ", 400, "malformed JSON"),
        ("[1, 2]", 422, "invalid request"),
        (
            r#"{"modules": {}, "colour": "red"}"#,
            422,
            "unknown field `colour`",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "replace", "module": "nope"}}}"#,
            422,
            "unknown custom module \"nope\"",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "replace", "module": "acme-predictive"}}}"#,
            422,
            "offered to customer \"acme\"",
        ),
        (
            r#"{"modules": {"spread": {"mode": "replace", "module": "globex-scaler"}}}"#,
            422,
            "is a autoscaling module, not spread",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "keep", "module": "globex-scaler"}}}"#,
            422,
            "remove `module`",
        ),
        (
            r#"{"modules": {"autoscaling": {"mode": "sideways"}}}"#,
            422,
            "unknown variant `sideways`",
        ),
        (
            r#"{"customer": "acme"}"#,
            403,
            "may not provision for \"acme\"",
        ),
    ];
    for (body, want, says) in cases {
        let (status, err) = post(body).await;
        assert_eq!(status, want, "{body} -> {err}");
        let msg = err["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{body}: {msg:?} does not say {says:?}");
    }
    // Acme already has a plane (from the configuration file).
    let (status, err) = call(
        addr,
        "POST",
        "/v1/control-planes",
        Some(&t.acme),
        Some("{}"),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    let (status, err) = call(
        addr,
        "DELETE",
        "/v1/control-planes/vcp-acme",
        Some(&t.acme),
        None,
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("configuration file"));
    let (status, _) = call(
        addr,
        "DELETE",
        "/v1/control-planes/default",
        Some(&t.operator),
        None,
    )
    .await;
    assert_eq!(status, 409);
    // The dashboard's cookie reads but does not change anything.
    let (status, err) = tokio::task::spawn_blocking({
        let cookie = format!("vcp_token={}", t.globex);
        move || {
            common::http::request(
                addr,
                "POST",
                "/v1/control-planes",
                &[("Cookie", cookie.as_str())],
                Some(b"{}"),
            )
        }
    })
    .await
    .map(|r| (r.status, r.body))
    .unwrap();
    assert_eq!(status, 401, "{err}");
    // Bad query parameters get a JSON error naming them.
    let (status, err) = get(addr, "/v1/decisions?limit=lots", &t.acme).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("limit"), "{err}");
    // Feedback out of range, unknown module, bad statement period/format.
    let fb = |m: &str, body: &'static str| {
        let path = format!("/v1/modules/{m}/feedback");
        let token = t.acme.clone();
        async move { call(addr, "POST", &path, Some(&token), Some(body)).await }
    };
    assert_eq!(fb("acme-predictive", r#"{"rating": 7}"#).await.0, 422);
    assert_eq!(fb("acme-predictive", r#"{"rating": "good"}"#).await.0, 422);
    assert_eq!(fb("acme-predictive", r#"{"stars": 3}"#).await.0, 422);
    assert_eq!(fb("no-such-module", r#"{"rating": 3}"#).await.0, 404);
    let (status, err) = get(addr, "/v1/statements/customer:acme?period=2026-13", &t.acme).await;
    assert_eq!(status, 422, "{err}");
    assert!(err["error"].as_str().unwrap().contains("month 13"), "{err}");
    let (status, _) = get(addr, "/v1/statements/customer:acme?format=xml", &t.acme).await;
    assert_eq!(status, 422);
    // Nothing was created.
    let (_, wfs) = get(addr, "/v1/workflows", &t.operator).await;
    assert_eq!(wfs, serde_json::json!([]));
    let (_, planes) = get(addr, "/v1/control-planes", &t.operator).await;
    assert_eq!(planes.as_array().unwrap().len(), 2);
    fleet.stop().await;
}

/// Two customers' service sets share `cgroup/web` of h1. The loader refuses
/// such a file; this one skipped its checks, so the API must check again.
const OVERLAP: &str = r#"
[[customers]]
id = "acme"
[[customers]]
id = "globex"
[[service_sets]]
id = "acme-web"
customer = "acme"
instances = { min = 1, max = 4, initial = 1 }
members = [{ host = "h1", resource = "cgroup/web" }]
[[service_sets]]
id = "globex-web"
customer = "globex"
instances = { min = 1, max = 4, initial = 1 }
members = [{ host = "h1", resource = "cgroup/web/worker" }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_over_members_another_customer_holds_is_refused_naming_both() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::fast(0, dir.path());
    opts.control = toml::from_str(OVERLAP).unwrap();
    assert!(
        vcp_supervisor::config::SupervisorFile::parse(OVERLAP, std::path::Path::new("o.toml"))
            .is_err(),
        "the loader refuses it"
    );
    opts.api = Some(ApiOptions::new("127.0.0.1:0".parse().unwrap()));
    let fleet = Loopback::start(opts).await.unwrap();
    let token = fleet
        .supervisor()
        .accounts
        .create_token("globex", Role::Customer)
        .unwrap();
    let (status, err) = call(
        fleet.api_addr(),
        "POST",
        "/v1/control-planes",
        Some(&token),
        Some(r#"{"modules": {}}"#),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    let msg = err["error"].as_str().unwrap_or_default().to_owned();
    for name in ["globex-web", "acme-web", "cgroup/web/worker", "cgroup/web"] {
        assert!(msg.contains(name), "{msg} lacks {name}");
    }
    fleet.stop().await;
}
