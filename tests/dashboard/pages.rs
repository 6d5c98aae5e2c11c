//! Each page checked against the API.

use serde_json::Value;

use crate::dom::*;

// ---- the pages -------------------------------------------------------

pub fn check_fleet(b: &Browser, token: &str) -> String {
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
        let seen =
            |v: &Value| vcp_store::ledger::period::rfc3339(v["last_seen_ms"].as_i64().unwrap());
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

pub fn check_planes(b: &Browser, token: &str) -> String {
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

pub fn check_modules(b: &Browser, token: &str) -> String {
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

pub fn check_decisions(b: &Browser, token: &str) -> String {
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
pub fn check_statement(b: &Browser, token: &str, account: &str, query: &str) -> String {
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
    assert_eq!(
        json["line_count"].as_u64(),
        Some(lines.len() as u64),
        "one page"
    );
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
    // At most CHART_POINTS points: the charges summed into equal spans from
    // the first to the last, a point at each span's last charge.
    let (first, last) = (sorted[0].0, sorted[sorted.len() - 1].0);
    let width = (last - first) / vcp_supervisor::dashboard::CHART_POINTS as i64 + 1;
    let mut running: Vec<(i64, i64)> = Vec::new();
    for (at, amount) in sorted {
        let total = running.last().map_or(0, |p| p.1) + amount;
        match running.last_mut() {
            Some(p) if p.0 == (at - first) / width => p.1 = total,
            _ => running.push(((at - first) / width, total)),
        }
    }
    assert_eq!(
        dom.matches("<circle class=\"cost\"").count(),
        running.len(),
        "a point per span with charges"
    );
    let running: Vec<i64> = running.into_iter().map(|p| p.1).collect();
    let (lo, hi) = (running.iter().min().unwrap(), running.iter().max().unwrap());
    assert_eq!(field(&dom, "id=\"chart-y-max\""), money(*hi));
    assert_eq!(field(&dom, "id=\"chart-y-min\""), money(*lo));
    dom
}
