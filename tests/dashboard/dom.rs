//! The page formats computed from the API's JSON, the headless browser,
//! and reading values out of the DOM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, http};

// ---- the page formats, computed from the API's JSON -------------------

pub fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / 1_073_741_824.0)
}

pub fn score(v: f64) -> String {
    format!("{v:.3}")
}

pub fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

pub fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

pub const MISSING: &str = "–";

pub fn opt(v: &Value, f: fn(f64) -> String) -> String {
    v.as_f64().map_or_else(|| MISSING.to_owned(), f)
}

// ---- the browser -----------------------------------------------------

pub fn chromium() -> PathBuf {
    common::require_tool("chromium", "chromium")
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
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

pub struct Browser {
    pub bin: PathBuf,
    pub addr: SocketAddr,
    pub dumps: std::sync::atomic::AtomicUsize,
}

impl Browser {
    /// The DOM Chromium ends on after loading `path`, in a fresh profile.
    pub fn dump(&self, path: &str) -> String {
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

    /// Signs in with `token` (through a one-time sign-in link) and loads
    /// `page`.
    pub fn page(&self, token: &str, page: &str) -> String {
        let (status, body) = http::send(self.addr, "POST", "/v1/sign-in-codes", Some(token), None);
        assert_eq!(status, 201, "sign-in code: {body}");
        let code: Value = serde_json::from_str(&body).unwrap();
        let link = code["path"].as_str().unwrap();
        self.dump(&format!("{link}&next={}", encode(page)))
    }
}

// ---- reading the DOM -------------------------------------------------

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text of the element whose attributes include `hook` (e.g.
/// `data-host="agent-1" data-field="cpu"`), up to the next tag.
pub fn cell(dom: &str, hook: &str) -> Option<String> {
    let at = dom.find(hook)? + hook.len();
    let rest = &dom[at..];
    let rest = &rest[rest.find('>')? + 1..];
    Some(unescape(rest[..rest.find('<')?].trim()))
}

pub fn field(dom: &str, hook: &str) -> String {
    cell(dom, hook).unwrap_or_else(|| panic!("no element with {hook} in the page:\n{dom}"))
}

/// A formatted value's leading number and unit (`12.5%` → 12.5, `%`).
pub fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// The page's `hook` shows `before` or `after` (the API's formatted value
/// just before and just after the page loaded), or, for a value that
/// moved meanwhile, a number between them.
pub fn expect(dom: &str, hook: &str, before: &str, after: &str) {
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

pub fn api(addr: SocketAddr, path: &str, token: &str) -> Value {
    let (status, body) = http::get(addr, path, Some(token));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The API's JSON at `path` just before and just after the browser loads
/// `page`, and the page's DOM.
pub fn load(b: &Browser, token: &str, path: &str, page: &str) -> (Value, String, Value) {
    let before = api(b.addr, path, token);
    let dom = b.page(token, page);
    let after = api(b.addr, path, token);
    (before, dom, after)
}

/// The element of `list` (a JSON array) whose `key` fields equal `want`.
pub fn find<'a>(list: &'a Value, key: &[&str], want: &[&str]) -> &'a Value {
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
