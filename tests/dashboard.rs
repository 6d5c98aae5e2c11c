//! The dashboard in a real browser: headless Chromium signs in with a
//! token and loads each page; the DOM must show the numbers the JSON API
//! returns to the same caller, formatted as `vcp_supervisor::dashboard::
//! format` documents; a customer sees only its own data; without a token
//! a page sends the browser to the sign-in form.
//!
//! Needs Debian's `chromium` (`chromium` on PATH or /usr/bin/chromium).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http;
use common::{init_logs, wait_until};
use serde_json::Value;
use vcp_supervisor::accounts::Role;
use vcp_supervisor::config::SupervisorFile;

// ---- the page formats, computed from the API's JSON -------------------

fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / 1_073_741_824.0)
}

fn score(v: f64) -> String {
    format!("{v:.3}")
}

fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

const MISSING: &str = "–";

fn opt(v: &Value, f: fn(f64) -> String) -> String {
    v.as_f64().map_or_else(|| MISSING.to_owned(), f)
}

// ---- the browser -----------------------------------------------------

fn chromium() -> PathBuf {
    common::require_tool("chromium", "chromium")
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Browser {
    bin: PathBuf,
    addr: SocketAddr,
    dumps: std::sync::atomic::AtomicUsize,
}

impl Browser {
    /// The DOM Chromium ends on after loading `path`, in a fresh profile.
    fn dump(&self, path: &str) -> String {
        let profile = tempfile::tempdir().unwrap();
        let out_path = profile.path().join("dom.html");
        let out = std::fs::File::create(&out_path).unwrap();
        let url = format!("http://{}{path}", self.addr);
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("p").display()
            ))
            .arg("--dump-dom")
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        let end = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish loading {url}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let dom = std::fs::read_to_string(&out_path).unwrap();
        // For looking at the pages: VCP_DASHBOARD_DUMP=<dir> keeps each DOM.
        if let Some(keep) = std::env::var_os("VCP_DASHBOARD_DUMP") {
            let n = self
                .dumps
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = std::fs::write(PathBuf::from(keep).join(format!("{n:02}.html")), &dom);
        }
        assert!(
            status.success() && !dom.is_empty(),
            "chromium {status} on {url}: {dom}"
        );
        dom
    }

    /// Signs in with `token` and loads `page`.
    fn page(&self, token: &str, page: &str) -> String {
        self.dump(&format!("/ui/login?token={token}&next={}", encode(page)))
    }
}

// ---- reading the DOM -------------------------------------------------

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text of the element whose attributes include `hook` (e.g.
/// `data-host="agent-1" data-field="cpu"`), up to the next tag.
fn cell(dom: &str, hook: &str) -> Option<String> {
    let at = dom.find(hook)? + hook.len();
    let rest = &dom[at..];
    let rest = &rest[rest.find('>')? + 1..];
    Some(unescape(rest[..rest.find('<')?].trim()))
}

fn field(dom: &str, hook: &str) -> String {
    cell(dom, hook).unwrap_or_else(|| panic!("no element with {hook} in the page:\n{dom}"))
}

/// A formatted value's leading number and unit (`12.5%` → 12.5, `%`).
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// The page's `hook` shows `before` or `after` (the API's formatted value
/// just before and just after the page loaded), or, for a value that
/// moved meanwhile, a number between them.
fn expect(dom: &str, hook: &str, before: &str, after: &str) {
    let got = field(dom, hook);
    if got == before || got == after {
        return;
    }
    let between = match (
        split_number(&got),
        split_number(before),
        split_number(after),
    ) {
        (Some((g, unit)), Some((a, u1)), Some((b, u2))) => {
            unit == u1 && unit == u2 && g >= a.min(b) && g <= a.max(b)
        }
        _ => false,
    };
    assert!(
        between,
        "{hook}: page shows {got:?}, API returned {before:?} then {after:?}"
    );
}

fn api(addr: SocketAddr, path: &str, token: &str) -> Value {
    let (status, body) = http::get(addr, path, Some(token));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The API's JSON at `path` just before and just after the browser loads
/// `page`, and the page's DOM.
fn load(b: &Browser, token: &str, path: &str, page: &str) -> (Value, String, Value) {
    let before = api(b.addr, path, token);
    let dom = b.page(token, page);
    let after = api(b.addr, path, token);
    (before, dom, after)
}

/// The element of `list` (a JSON array) whose `key` fields equal `want`.
fn find<'a>(list: &'a Value, key: &[&str], want: &[&str]) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| {
            key.iter()
                .zip(want)
                .all(|(k, w)| v[*k].as_str() == Some(*w))
        })
        .unwrap_or_else(|| panic!("no {key:?} = {want:?} in {list}"))
}

// ---- the pages -------------------------------------------------------

fn check_fleet(b: &Browser, token: &str) -> String {
    let (before, dom, after) = load(b, token, "/v1/hosts", "/ui");
    let hosts = before.as_array().unwrap();
    assert!(!hosts.is_empty());
    for h in hosts {
        let id = h["id"].as_str().unwrap();
        let a = find(&after, &["id"], &[id]);
        let hook = |f: &str| format!("data-host=\"{id}\" data-field=\"{f}\"");
        expect(
            &dom,
            &hook("cpu"),
            &opt(&h["cpu_utilization"], pct),
            &opt(&a["cpu_utilization"], pct),
        );
        for f in ["memory_used", "memory_total"] {
            let k = format!("{f}_bytes");
            expect(&dom, &hook(f), &opt(&h[&k], gib), &opt(&a[&k], gib));
        }
        let seen = |v: &Value| {
            vcp_supervisor::ledger::period::rfc3339(v["last_seen_ms"].as_i64().unwrap())
        };
        expect(&dom, &hook("last_seen"), &seen(h), &seen(a));
        let yes = |v: &Value| {
            if v["connected"].as_bool().unwrap() {
                "yes"
            } else {
                "no"
            }
            .to_owned()
        };
        expect(&dom, &hook("connected"), &yes(h), &yes(a));
    }
    assert_eq!(field(&dom, "id=\"host-count\""), hosts.len().to_string());
    dom
}

fn check_planes(b: &Browser, token: &str) -> String {
    let (before, dom, _) = load(b, token, "/v1/control-planes", "/ui/control-planes");
    let planes = before.as_array().unwrap();
    assert!(!planes.is_empty());
    for p in planes {
        let id = p["id"].as_str().unwrap();
        let hook = |f: &str| format!("data-plane=\"{id}\" data-field=\"{f}\"");
        assert_eq!(
            field(&dom, &hook("customer")),
            p["customer"].as_str().unwrap()
        );
        assert_eq!(field(&dom, &hook("source")), p["source"].as_str().unwrap());
        let sets: Vec<&str> = p["service_sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(field(&dom, &hook("service_sets")), sets.join(", "));
        for (kind, ids) in p["modules"].as_object().unwrap() {
            let ids: Vec<&str> = ids
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(
                field(&dom, &format!("data-plane=\"{id}\" data-kind=\"{kind}\"")),
                ids.join(", ")
            );
        }
    }
    dom
}

fn check_modules(b: &Browser, token: &str) -> String {
    let (before, dom, after) = load(b, token, "/v1/modules", "/ui/modules");
    for m in before.as_array().unwrap() {
        let id = m["id"].as_str().unwrap();
        assert_eq!(
            field(&dom, &format!("data-module=\"{id}\" data-field=\"kind\"")),
            m["kind"].as_str().unwrap()
        );
        let m_after = find(&after, &["id"], &[id]);
        for p in m["planes"].as_array().unwrap() {
            let plane = p["control_plane"].as_str().unwrap();
            let a = find(&m_after["planes"], &["control_plane"], &[plane]);
            let hook =
                |f: &str| format!("data-module=\"{id}\" data-plane=\"{plane}\" data-field=\"{f}\"");
            for c in ["score", "feedback", "goal", "deadline", "efficiency"] {
                let rep = |v: &Value| opt(&v["reputation"][c], score);
                expect(&dom, &hook(c), &rep(p), &rep(a));
            }
            expect(
                &dom,
                &hook("contribution"),
                &opt(&p["contribution"], score),
                &opt(&a["contribution"], score),
            );
            expect(
                &dom,
                &hook("reward_share"),
                &opt(&p["reward_share"], pct),
                &opt(&a["reward_share"], pct),
            );
            for n in ["requests", "deadline_misses"] {
                expect(&dom, &hook(n), &p[n].to_string(), &a[n].to_string());
            }
        }
    }
    dom
}

fn check_decisions(b: &Browser, token: &str) -> String {
    let (before, dom, after) = load(b, token, "/v1/decisions", "/ui/decisions");
    for d in before.as_array().unwrap() {
        let s = |k: &str| d[k].as_str().unwrap().to_owned();
        let key = format!("{}|{}|{}", s("control_plane"), s("target"), s("parameter"));
        let a = find(
            &after,
            &["control_plane", "target", "parameter"],
            &[&s("control_plane"), &s("target"), &s("parameter")],
        );
        let hook = |f: &str| format!("data-decision=\"{key}\" data-field=\"{f}\"");
        expect(
            &dom,
            &hook("value"),
            &opt(&d["value"], number),
            &opt(&a["value"], number),
        );
        expect(
            &dom,
            &hook("round"),
            &d["round"].to_string(),
            &a["round"].to_string(),
        );
        expect(
            &dom,
            &hook("contenders"),
            &d["contenders"].to_string(),
            &a["contenders"].to_string(),
        );
        let module = field(&dom, &hook("module"));
        assert!(module == s("module") || Some(module.as_str()) == a["module"].as_str());
    }
    dom
}

/// The statement page of `account` (the caller's own when `None`) for
/// `period`; the ledger does not move once billed.
fn check_statement(b: &Browser, token: &str, account: &str, query: &str) -> String {
    let json = api(
        b.addr,
        &format!("/v1/statements/{account}?period=all"),
        token,
    );
    let dom = b.page(token, &format!("/ui/statement{query}"));
    assert_eq!(field(&dom, "id=\"statement-account\""), account);
    assert_eq!(
        field(&dom, "id=\"total\""),
        money(json["total"].as_i64().unwrap())
    );
    let lines = json["lines"].as_array().unwrap();
    assert_eq!(field(&dom, "id=\"line-count\""), lines.len().to_string());
    for (i, l) in lines.iter().enumerate() {
        let hook = |f: &str| format!("data-line=\"{i}\" data-field=\"{f}\"");
        assert_eq!(
            field(&dom, &hook("amount")),
            money(l["amount"].as_i64().unwrap())
        );
        assert_eq!(field(&dom, &hook("kind")), l["kind"].as_str().unwrap());
        assert_eq!(field(&dom, &hook("time")), l["time"].as_str().unwrap());
    }
    for s in json["subtotals"]["by_kind"].as_array().unwrap() {
        let hook = format!("data-subtotal-kind=\"{}\"", s["kind"].as_str().unwrap());
        assert_eq!(field(&dom, &hook), money(s["amount"].as_i64().unwrap()));
    }
    for s in json["subtotals"]["by_module"].as_array().unwrap() {
        let hook = format!("data-subtotal-module=\"{}\"", s["module"].as_str().unwrap());
        assert_eq!(field(&dom, &hook), money(s["amount"].as_i64().unwrap()));
    }
    // The chart: a line through the running total, labelled with its extremes.
    assert!(
        dom.contains("<svg") && dom.contains("<polyline"),
        "no chart: {dom}"
    );
    let mut sorted: Vec<(i64, i64)> = lines
        .iter()
        .map(|l| (l["at_ms"].as_i64().unwrap(), l["amount"].as_i64().unwrap()))
        .collect();
    sorted.sort_by_key(|l| l.0);
    // One point per charge time: the running total after its last line.
    let mut running: Vec<(i64, i64)> = Vec::new();
    for (at, amount) in sorted {
        let total = running.last().map_or(0, |p| p.1) + amount;
        match running.last_mut() {
            Some(p) if p.0 == at => p.1 = total,
            _ => running.push((at, total)),
        }
    }
    assert_eq!(
        dom.matches("<circle class=\"cost\"").count(),
        running.len(),
        "a point per charge time"
    );
    let running: Vec<i64> = running.into_iter().map(|p| p.1).collect();
    let (lo, hi) = (running.iter().min().unwrap(), running.iter().max().unwrap());
    assert_eq!(field(&dom, "id=\"chart-y-max\""), money(*hi));
    assert_eq!(field(&dom, "id=\"chart-y-min\""), money(*lo));
    dom
}

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
                    r.module == vcp::scenario::CUSTOM_MODULE && r.control_plane == "vcp-acme"
                })
                && decided("vcp-acme")
        },
    )
    .await;
    // Two billing runs at different times: a chart of more than one point.
    control.bill_now(false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    control.bill_now(true).await.unwrap();
    // Stop what moves: the module and the agents (the supervisor and its
    // API stay up, showing the last readings).
    module.stop();
    for (_, agent) in fleet.agents.drain(..) {
        agent.stop().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

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
            vcp::scenario::CUSTOM_MODULE
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
        // An unknown token neither.
        let dom = browser.page("vcp_0000", "/ui");
        assert!(
            dom.contains("unknown or revoked token") && !dom.contains("data-host="),
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

        // A good token: the cookie, and back to a local page only.
        let r = get(&format!("/ui/login?token={token}&next=/ui/decisions"), &[]);
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/ui/decisions"));
        let cookie = r.header("set-cookie").unwrap().to_owned();
        assert_eq!(
            cookie,
            format!("vcp_token={token}; HttpOnly; SameSite=Strict; Path=/")
        );
        for evil in ["https://evil.example/ui", "//evil.example/ui", "/v1/hosts"] {
            let r = get(
                &format!("/ui/login?token={token}&next={}", encode(evil)),
                &[],
            );
            assert_eq!(
                (r.status, r.header("location")),
                (303, Some("/ui")),
                "{evil}"
            );
        }
        // The form's POST does the same.
        let form = format!("token={token}&next=%2Fui%2Fmodules");
        let r = http::request(
            addr,
            "POST",
            "/ui/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(form.as_bytes()),
        );
        assert_eq!((r.status, r.header("location")), (303, Some("/ui/modules")));
        // A bad token: the form again, 401, no cookie.
        let r = get("/ui/login?token=vcp_nope&next=/ui", &[]);
        assert_eq!(r.status, 401);
        assert!(r.header("set-cookie").is_none());

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
        // Signing out clears the cookie.
        let r = get("/ui/logout", &[("Cookie", &c)]);
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
