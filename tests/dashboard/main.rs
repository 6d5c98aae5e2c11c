//! The dashboard in a real browser: headless Chromium signs in with a
//! token and loads each page; the DOM must show the numbers the JSON API
//! returns to the same caller, formatted as `vcp_supervisor::dashboard::
//! format` documents; a customer sees only its own data; without a token
//! a page sends the browser to the sign-in form.
//!
//! Needs Debian's `chromium` (`chromium` on PATH or /usr/bin/chromium).

#[path = "../common/mod.rs"]
mod common;
mod dom;
mod pages;

use std::time::{Duration, Instant};

use common::http;
use common::{init_logs, wait_until};
use dom::*;
use pages::*;
use vcp_store::accounts::Role;
use vcp_supervisor::config::SupervisorFile;

/// Operator set `ops-web` on agent-1, Acme's `acme-shop` on agent-2 under
/// Acme's plane (the custom module `acme-predictive`, fees split with the
/// vendor), Globex's `globex-db` on agent-3 under Globex's plane; no
/// default modules, billing only when the test asks.
fn scenario() -> SupervisorFile {
    let text = r#"
evaluation_window_s = 2
billing_interval_s = 3600
# Only the custom module decides: stopped, nothing moves.
default_modules = false

[prices]
period = "hour"
default_request_fee = 50
response_fee_per_kb = 20
compute_fee_per_ms = 100
request_fees = [{ kind = "autoscaling", parameter = "instances", fee = 100 }]
resources = { cpu_core_hour = 30000, memory_gib_hour = 4000, gpu_hour = 1500000, nic_gb = 10000 }

[[customers]]
id = "acme"

[[customers]]
id = "globex"

[[vendors]]
id = "predictive-labs"

[[service_sets]]
id = "ops-web"
customer = "operator"
instances = { min = 1, max = 8, initial = 2 }
instance = { cores = 1.0, memory_gib = 2.0 }
members = [{ host = "agent-1" }]

[[service_sets]]
id = "acme-shop"
customer = "acme"
instances = { min = 1, max = 12, initial = 2 }
instance = { cores = 1.0, memory_gib = 2.0 }
members = [{ host = "agent-2" }]

[[service_sets]]
id = "globex-db"
customer = "globex"
instances = { min = 1, max = 4, initial = 1 }
instance = { cores = 1.0, memory_gib = 2.0 }
members = [{ host = "agent-3" }]

[[custom_modules]]
id = "acme-predictive"
kind = "autoscaling"
vendor = "predictive-labs"
customer = "acme"

[[control_planes]]
customer = "acme"
modules = { autoscaling = { mode = "replace", module = "acme-predictive" } }

[[control_planes]]
customer = "globex"

[[contracts]]
control_plane = "vcp-acme"
module = "acme-predictive"
payer = { split = 0.3 }
cost_benefit = { share = 0.5, baseline = { prior_period_cost = 456000 }, penalty = 500000 }

[solicitation.autoscaling]
cadence_ms = 200
deadline_ms = 50
"#;
    SupervisorFile::parse(text, std::path::Path::new("dashboard.toml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_show_what_the_api_returns() {
    init_logs();
    let bin = chromium();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::fast(3, dir.path());
    opts.control = scenario();
    opts.api = Some(vcp_supervisor::ApiOptions::new(
        "127.0.0.1:0".parse().unwrap(),
    ));
    let mut fleet = vcp::loopback::Loopback::start(opts).await.unwrap();
    let module = fleet.spawn_module(common::FixedInstances(3.0)).unwrap();
    let control = fleet.supervisor().control.clone();
    let addr = fleet.supervisor().api.as_ref().unwrap().addr;
    let accounts = fleet.supervisor().accounts.clone();
    let operator = accounts.create_token("operator", Role::Operator).unwrap();
    let acme = accounts.create_token("acme", Role::Customer).unwrap();

    // Readings from every host, the custom module judged, decisions in
    // both customers' planes and the operator's.
    wait_until(
        "readings, reputation and decisions",
        Duration::from_secs(30),
        || {
            let hosts = control.fleet.view.hosts();
            let report = control.judge.report.load();
            let decided = |plane: &str| {
                control
                    .settings
                    .snapshot()
                    .iter()
                    .any(|d| &*d.control_plane == plane)
            };
            hosts.len() == 3
                && report.reputation.iter().any(|r| {
                    r.module == vcp::demo::scenario::CUSTOM_MODULE && r.control_plane == "vcp-acme"
                })
                && decided("vcp-acme")
        },
    )
    .await;
    // Two billing runs at different times: a chart of more than one point.
    control.bill_now(false).await.unwrap();
    let first = std::time::SystemTime::now();
    wait_until("the clock to move on", Duration::from_secs(5), || {
        first.elapsed().is_ok_and(|d| d >= Duration::from_millis(2))
    })
    .await;
    control.bill_now(true).await.unwrap();
    // Stop what moves: the module and the agents (the supervisor and its
    // API stay up, showing the last readings).
    module.stop();
    for (_, agent) in fleet.agents.drain(..) {
        agent.stop().await;
    }
    wait_until(
        "the supervisor to see the agents go",
        Duration::from_secs(20),
        || control.fleet.summaries().iter().all(|a| !a.connected),
    )
    .await;

    let browser = Browser {
        bin,
        addr,
        dumps: Default::default(),
    };
    let started = Instant::now();
    tokio::task::block_in_place(|| {
        // The operator sees everything.
        let dom = check_fleet(&browser, &operator);
        for h in ["agent-1", "agent-2", "agent-3"] {
            assert!(
                dom.contains(&format!("data-host=\"{h}\"")),
                "{h} on the fleet page"
            );
        }
        let dom = check_planes(&browser, &operator);
        assert!(
            dom.contains("data-plane=\"vcp-acme\"") && dom.contains("data-plane=\"vcp-globex\"")
        );
        let dom = check_modules(&browser, &operator);
        assert!(dom.contains(&format!(
            "data-module=\"{}\" data-plane=\"vcp-acme\" data-field=\"score\"",
            vcp::demo::scenario::CUSTOM_MODULE
        )));
        let dom = check_decisions(&browser, &operator);
        assert!(dom.contains("data-decision=\"vcp-acme|acme-shop|instances\""));
        let dom = check_statement(
            &browser,
            &operator,
            "customer:acme",
            "?account=customer:acme&period=all",
        );
        assert!(dom.contains("id=\"cost-chart\""));

        // Acme sees its own host, plane, module records, decisions and
        // statement, and nothing of the operator's or Globex's.
        let dom = check_fleet(&browser, &acme);
        assert!(dom.contains("data-host=\"agent-2\""));
        assert!(!dom.contains("data-host=\"agent-1\"") && !dom.contains("data-host=\"agent-3\""));
        let dom = check_planes(&browser, &acme);
        assert!(dom.contains("data-plane=\"vcp-acme\""));
        assert!(
            !dom.contains("vcp-globex") && !dom.contains("globex-db") && !dom.contains("ops-web")
        );
        let dom = check_modules(&browser, &acme);
        assert!(dom.contains("data-plane=\"vcp-acme\""));
        assert!(
            !dom.contains("data-plane=\"vcp-globex\"") && !dom.contains("data-plane=\"default\"")
        );
        let dom = check_decisions(&browser, &acme);
        assert!(dom.contains("data-decision=\"vcp-acme|"));
        assert!(
            !dom.contains("data-decision=\"default|")
                && !dom.contains("data-decision=\"vcp-globex|")
        );
        assert!(!dom.contains("ops-web") && !dom.contains("globex"));
        // Its own account by default (this month; the charges are minutes old).
        check_statement(&browser, &acme, "customer:acme", "");
        // Another account's statement is not found, and shows no total.
        let dom = browser.page(
            &acme,
            "/ui/statement?account=vendor:predictive-labs&period=all",
        );
        assert!(
            dom.contains("404") && !dom.contains("id=\"total\""),
            "{dom}"
        );

        // Without a token the browser ends on the sign-in form, which
        // would come back to the page.
        let dom = browser.dump("/ui/modules");
        assert!(
            dom.contains("action=\"/ui/login\"") && dom.contains("name=\"token\""),
            "{dom}"
        );
        assert!(
            dom.contains("value=\"/ui/modules\"") && !dom.contains("data-module="),
            "{dom}"
        );
        // A made-up sign-in code neither.
        let dom = browser.dump("/ui/login?code=0123&next=/ui");
        assert!(
            dom.contains("unknown, used or expired sign-in code") && !dom.contains("data-host="),
            "{dom}"
        );
    });
    eprintln!("browser checks took {:?}", started.elapsed());
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_the_cookie_and_redirects_locally() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::fast(1, dir.path());
    opts.api = Some(vcp_supervisor::ApiOptions::new(
        "127.0.0.1:0".parse().unwrap(),
    ));
    let fleet = vcp::loopback::Loopback::start(opts).await.unwrap();
    let addr = fleet.supervisor().api.as_ref().unwrap().addr;
    let token = fleet
        .supervisor()
        .accounts
        .create_token("operator", Role::Operator)
        .unwrap();
    // The fleet page below lists agent-1: wait until it has connected.
    let f = fleet.supervisor().fleet.clone();
    wait_until("agent-1 connects", Duration::from_secs(20), || {
        f.summaries().iter().any(|a| a.id == "agent-1")
    })
    .await;
    tokio::task::block_in_place(|| {
        let get =
            |path: &str, headers: &[(&str, &str)]| http::request(addr, "GET", path, headers, None);
        // No token: to the sign-in form, coming back afterwards.
        let r = get("/ui/statement?period=all", &[]);
        assert_eq!(r.status, 303);
        assert_eq!(
            r.header("location"),
            Some("/ui/login?next=/ui/statement%3Fperiod%3Dall")
        );
        let r = get("/ui/login?next=/ui/modules", &[]);
        assert_eq!(r.status, 200);
        assert!(
            r.body.contains("name=\"next\" value=\"/ui/modules\""),
            "{}",
            r.body
        );

        // The form carries a check that its cookie must match.
        let form_page = get("/ui/login?next=/ui/decisions", &[]);
        let csrf_cookie = form_page.header("set-cookie").unwrap().to_owned();
        assert_eq!(
            csrf_cookie.split_once('=').unwrap().0,
            "vcp_csrf",
            "{csrf_cookie}"
        );
        assert!(csrf_cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/ui/login"));
        let csrf = csrf_cookie.split(['=', ';']).nth(1).unwrap().to_owned();
        assert!(form_page
            .body
            .contains(&format!("name=\"csrf\" value=\"{csrf}\"")));
        let with_check = format!("vcp_csrf={csrf}");
        let post = |fields: &str, headers: &[(&str, &str)]| {
            let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
            all.extend_from_slice(headers);
            http::request(addr, "POST", "/ui/login", &all, Some(fields.as_bytes()))
        };
        // A good token: the cookie, and back to a local page only.
        let r = post(
            &format!("token={token}&next=%2Fui%2Fdecisions&csrf={csrf}"),
            &[("Cookie", &with_check)],
        );
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.header("location"), Some("/ui/decisions"));
        let cookie = r.header("set-cookie").unwrap().to_owned();
        assert_eq!(
            cookie,
            format!("vcp_token={token}; HttpOnly; SameSite=Strict; Path=/")
        );
        for evil in ["https://evil.example/ui", "//evil.example/ui", "/v1/hosts"] {
            let fields = format!("token={token}&next={}&csrf={csrf}", encode(evil));
            let r = post(&fields, &[("Cookie", &with_check)]);
            assert_eq!(
                (r.status, r.header("location")),
                (303, Some("/ui")),
                "{evil}"
            );
        }
        // Login CSRF: a post without the form's check (another site's
        // form: the SameSite cookie is not sent), with another check, or
        // from another origin is refused, and signs no one in.
        for (fields, headers) in [
            (format!("token={token}&next=%2Fui"), vec![]),
            (format!("token={token}&csrf={csrf}"), vec![]),
            (
                format!("token={token}&csrf=forged"),
                vec![("Cookie", with_check.as_str())],
            ),
            (
                format!("token={token}&csrf={csrf}"),
                vec![
                    ("Cookie", with_check.as_str()),
                    ("Origin", "https://evil.example"),
                ],
            ),
        ] {
            let r = post(&fields, &headers);
            assert_eq!(r.status, 403, "{fields} {headers:?}");
            assert!(r.body.contains("did not come from this site"), "{}", r.body);
            assert!(!r
                .header("set-cookie")
                .unwrap_or_default()
                .starts_with("vcp_token"));
        }
        // A token in the URL signs no one in: it is the form again.
        let r = get(&format!("/ui/login?token={token}&next=/ui"), &[]);
        assert_eq!(r.status, 200);
        assert!(!r
            .header("set-cookie")
            .unwrap_or_default()
            .starts_with("vcp_token"));
        // A bad token: the form again, 401, no token cookie.
        let r = post(
            &format!("token=vcp_nope&csrf={csrf}"),
            &[("Cookie", &with_check)],
        );
        assert_eq!(r.status, 401);
        assert!(r.body.contains("unknown token"), "{}", r.body);
        assert!(!r
            .header("set-cookie")
            .unwrap_or_default()
            .starts_with("vcp_token"));
        // A one-time link signs in once.
        let (status, code) = http::send(addr, "POST", "/v1/sign-in-codes", Some(&token), None);
        assert_eq!(status, 201, "{code}");
        let code: serde_json::Value = serde_json::from_str(&code).unwrap();
        let link = format!("{}&next=/ui/modules", code["path"].as_str().unwrap());
        let r = get(&link, &[]);
        assert_eq!((r.status, r.header("location")), (303, Some("/ui/modules")));
        assert!(r.header("set-cookie").unwrap().starts_with("vcp_token="));
        assert_eq!(get(&link, &[]).status, 401, "used twice");

        // The cookie opens the pages (and the API).
        let c = format!("vcp_token={token}");
        let r = get("/ui", &[("Cookie", &c)]);
        assert_eq!(r.status, 200);
        assert!(r.body.contains("data-host=\"agent-1\""), "{}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert_eq!(get("/v1/hosts", &[("Cookie", &c)]).status, 200);
        // Errors render as pages with their status.
        let r = get("/ui/statement?period=bogus", &[("Cookie", &c)]);
        assert_eq!(r.status, 422);
        assert!(r.body.contains("id=\"error\""));
        let (status, body) = http::get(addr, "/ui/decisions?limit=x", Some(&token));
        assert_eq!(status, 400, "{body}");
        // Signing out is a post, and clears the cookie.
        assert_eq!(get("/ui/logout", &[("Cookie", &c)]).status, 405);
        let r = http::request(addr, "POST", "/ui/logout", &[("Cookie", &c)], None);
        assert_eq!(r.status, 303);
        assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    });
    fleet.stop().await;
}

#[test]
fn the_http_helper_parses_every_framing() {
    let r = http::parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhiXX",
        false,
    )
    .unwrap();
    assert_eq!(
        (r.status, r.body.as_str(), r.header("X-A")),
        (200, "hi", Some("b"))
    );
    let r = http::parse(
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
        false,
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_str()), (404, "abc0123456789"));
    let r = http::parse(b"HTTP/1.1 200 OK\r\n\r\nto the end", false).unwrap();
    assert_eq!(r.body, "to the end");
    assert!(http::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", false).is_err());
}
