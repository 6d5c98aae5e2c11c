//! The endpoint over real loopback UDP, and its parser on fixtures.

use super::*;
use crate::sensors::{Collected, SensorConfig};
use std::time::Duration;

fn parse_all(text: &str, default: Option<&str>) -> (Vec<(String, &'static str, f64)>, u64) {
    let mut got = Vec::new();
    let bad = parse_datagram(text, default, |s| {
        got.push((s.resource.to_owned(), ACCEPTED[s.metric].name, s.value))
    });
    (got, bad)
}

fn allow(resources: &[&str]) -> AllowedResources {
    let mut a = AllowedResources::default();
    for r in resources {
        a.insert(r).unwrap();
    }
    a
}

#[test]
fn good_lines() {
    let (got, bad) = parse_all(
        include_str!("../fixtures/app_good.txt"),
        Some("cgroup/default"),
    );
    assert_eq!(bad, 0);
    let web = |m: &'static str, v| ("cgroup/web".to_owned(), m, v);
    assert_eq!(
        got,
        vec![
            web("app.requests_per_second", 120.0),
            web("app.latency.p50", 0.012),
            web("app.latency.p95", 0.082),
            web("app.latency.p99", 0.25),
            web("app.queue_depth", 7.0),
            web("app.errors_per_second", 0.5),
            (
                "cgroup/vcp.slice/api".into(),
                "app.requests_per_second",
                35.5
            ),
            (
                "cgroup/vcp.slice/api".into(),
                "app.requests_per_second",
                40.0
            ),
            ("cgroup/default".into(), "app.queue_depth", 0.0),
        ]
    );
    // Without a default resource the untagged line is malformed.
    let (got, bad) = parse_all(include_str!("../fixtures/app_good.txt"), None);
    assert_eq!((got.len(), bad), (8, 1));
}

#[test]
fn malformed_lines_are_counted() {
    let text = include_str!("../fixtures/app_malformed.txt");
    let (got, bad) = parse_all(text, Some("cgroup/default"));
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(bad, text.lines().count() as u64);
    let long = format!("app.{}:1|g", "a".repeat(97));
    assert!(parse_line(&long, Some("r")).is_err());
    let long_res = format!("app.queue_depth:1|g|#resource:{}", "r/".repeat(100) + "r");
    assert!(parse_line(&long_res, None).is_err());
}

#[test]
fn invalid_resource_ids_are_malformed() {
    let text = include_str!("../fixtures/app_bad_resources.txt");
    let (got, bad) = parse_all(text, None);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(bad, text.lines().count() as u64);
    // Characters the resource-id rules allow are accepted.
    let s = parse_line(
        "app.queue_depth:1|g|#resource:cgroup/user@1000.service",
        None,
    );
    assert_eq!(s.unwrap().resource, "cgroup/user@1000.service");
}

#[test]
fn mixed_datagram() {
    let (got, bad) = parse_all(include_str!("../fixtures/app_mixed.txt"), None);
    assert_eq!(bad, 2);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], ("cgroup/web".into(), "app.latency.p95", 0.09));
}

#[test]
fn bad_bind_arguments_are_refused() {
    for bad in ["a b", "..", "cgroup/web/..", "cgroup//web"] {
        let e = AppSensor::bind(0, Some(bad.into()), allow(&[]), DEFAULT_MAX_SERIES).unwrap_err();
        assert!(e.to_string().contains(bad), "{e}");
    }
    assert!(AppSensor::bind(0, None, allow(&[]), MAX_MAX_SERIES + 1).is_err());
    let mut a = AllowedResources::default();
    assert!(a.insert("app/../x").is_err());
    assert!(a.set_cgroup_slice("a//b").is_err());
}

#[test]
fn allowed_resources_by_segments() {
    let mut a = allow(&["app/web"]);
    a.insert_cgroup("system.slice/api.service").unwrap();
    a.set_cgroup_slice("vcp.slice").unwrap();
    for ok in [
        "app/web",
        "cgroup/system.slice/api.service",
        "cgroup/vcp.slice/db",
        "cgroup/vcp.slice/db.service",
    ] {
        assert!(a.allows(ok), "{ok}");
    }
    for no in [
        "app/web/x",
        "app/webx",
        "app",
        "cgroup/system.slice",
        "cgroup/system.slice/api.service/x",
        "cgroup/vcp.slice",
        "cgroup/vcp.slice/",
        "cgroup/vcp.slice/db/worker",
        "cgroup/vcp.slice/..",
        "cgroup/vcp.slice/.",
        "cgroup/vcp.slicex/db",
        "cgroup/vcp.slice/d b",
    ] {
        assert!(!a.allows(no), "{no}");
    }
}

/// Samples until `want` application readings arrived (loopback UDP is
/// immediate in practice; the loop only guards against a slow
/// scheduler).
fn sample_until(s: &mut AppSensor, want: usize) -> Collected {
    let mut all = Collected::default();
    let give_up = Instant::now() + Duration::from_secs(5);
    while all.0.iter().filter(|r| r.0 != "agent").count() < want && Instant::now() < give_up {
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        all.0.extend(c.0);
        std::thread::sleep(Duration::from_millis(5));
    }
    all
}

/// Samples until the endpoint has accounted for `lines` lines
/// (accepted, malformed, unlisted or dropped).
fn sample_lines(s: &mut AppSensor, accepted: &mut u64, lines: u64) -> Collected {
    let mut all = Collected::default();
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Collected::default();
        s.sample(Instant::now(), &mut c).unwrap();
        *accepted += c.0.iter().filter(|r| r.0 != "agent").count() as u64;
        all.0.extend(c.0);
        if *accepted + s.malformed() + s.unlisted() + s.dropped() >= lines
            || Instant::now() >= give_up
        {
            return all;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn sender(s: &AppSensor) -> impl Fn(&[u8]) {
    let addr = s.local_addr().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    move |d: &[u8]| {
        tx.send_to(d, addr).unwrap();
    }
}

#[test]
fn loopback_endpoint() {
    let mut s = AppSensor::bind(0, None, allow(&["cgroup/web"]), DEFAULT_MAX_SERIES)
        .unwrap()
        .with_max_datagrams(3);
    let send = sender(&s);
    send(b"app.requests_per_second:100|g|#resource:cgroup/web\napp.queue_depth:3|g|#resource:cgroup/web\n");
    send(b"app.requests_per_second:120|g|#resource:cgroup/web\nbogus line\n");
    send(&[0xff, 0xfe, b'\n']);
    send(&vec![b'a'; MAX_DATAGRAM + 1]);
    send(b"app.latency.p95:0.082|g|#resource:cgroup/web\n");

    // At most 3 datagrams per sample: the latest rate wins.
    let c = sample_until(&mut s, 2);
    assert_eq!(c.get("cgroup/web", &APP_REQUESTS_PER_SECOND), Some(120.0));
    assert_eq!(c.get("cgroup/web", &APP_QUEUE_DEPTH), Some(3.0));
    assert_eq!(c.get("cgroup/web", &APP_LATENCY_P95), None);
    assert_eq!(c.get("agent", &APP_MALFORMED_LINES), Some(2.0));

    let c = sample_until(&mut s, 1);
    assert_eq!(c.get("cgroup/web", &APP_LATENCY_P95), Some(0.082));
    assert_eq!(
        c.get("cgroup/web", &APP_REQUESTS_PER_SECOND),
        None,
        "not repeated"
    );
    assert_eq!(s.malformed(), 3);
    assert_eq!((s.unlisted(), s.dropped(), s.series()), (0, 0, 3));

    // A quiet endpoint still reports its cumulative counters.
    let mut c = Collected::default();
    s.sample(Instant::now(), &mut c).unwrap();
    assert_eq!(
        c.0,
        vec![
            ("agent".to_owned(), APP_MALFORMED_LINES.name, 3.0),
            ("agent".to_owned(), APP_UNLISTED_LINES.name, 0.0),
        ]
    );
}

/// The endpoint of an agent configured like the example in the docs.
fn configured(max_series: usize) -> AppSensor {
    let cfg = SensorConfig {
        cgroups: vec!["system.slice/api.service".into()],
        cgroup_slice: Some("vcp.slice".into()),
        app_resources: vec!["app/web".into()],
        app_default_resource: Some("app/default".into()),
        app_max_series: max_series,
        ..SensorConfig::default()
    };
    AppSensor::bind(
        0,
        cfg.app_default_resource.clone(),
        cfg.app_allowed().unwrap(),
        cfg.app_max_series,
    )
    .unwrap()
}

#[test]
fn unlisted_resources_are_refused_and_counted() {
    let mut s = configured(DEFAULT_MAX_SERIES);
    let send = sender(&s);
    send(
        b"app.queue_depth:1|g|#resource:app/web\n\
          app.queue_depth:2|g|#resource:cgroup/system.slice/api.service\n\
          app.queue_depth:3|g|#resource:cgroup/vcp.slice/db.service\n\
          app.queue_depth:4|g\n",
    );
    send(
        b"app.queue_depth:5|g|#resource:app/other\n\
          app.queue_depth:6|g|#resource:cgroup/web\n\
          app.queue_depth:7|g|#resource:cgroup/vcp.slice\n\
          app.queue_depth:8|g|#resource:cgroup/vcp.slice/db.service/worker\n\
          app.queue_depth:9|g|#resource:cgroup/system.slice/other.service\n\
          app.queue_depth:10|g|#resource:agent\n",
    );
    send(
        b"app.queue_depth:11|g|#resource:cgroup/vcp.slice/..\n\
          app.queue_depth:12|g|#resource:app/web/..\n\
          app.queue_depth:13|g|#resource:..\n",
    );
    let mut accepted = 0;
    let c = sample_lines(&mut s, &mut accepted, 13);
    let apps: Vec<_> = c.0.iter().filter(|r| r.0 != "agent").cloned().collect();
    assert_eq!(
        apps,
        vec![
            ("app/default".into(), APP_QUEUE_DEPTH.name, 4.0),
            ("app/web".into(), APP_QUEUE_DEPTH.name, 1.0),
            (
                "cgroup/system.slice/api.service".into(),
                APP_QUEUE_DEPTH.name,
                2.0
            ),
            (
                "cgroup/vcp.slice/db.service".into(),
                APP_QUEUE_DEPTH.name,
                3.0
            ),
        ]
    );
    assert_eq!((s.unlisted(), s.malformed(), s.dropped()), (6, 3, 0));
    let mut c = Collected::default();
    s.sample(Instant::now(), &mut c).unwrap();
    assert_eq!(c.get("agent", &APP_UNLISTED_LINES), Some(6.0));
    assert_eq!(c.get("agent", &APP_MALFORMED_LINES), Some(3.0));
}

#[test]
fn a_flood_of_made_up_resources_stays_within_the_cap() {
    const FLOOD: usize = 10_000;
    let mut s = configured(DEFAULT_MAX_SERIES);
    let send = sender(&s);
    let mut accepted = 0;
    let mut lines = 0;
    let mut all = Collected::default();

    // A listed series claims its slot before the flood.
    send(b"app.latency.p95:0.05|g|#resource:app/web\n");
    lines += 1;
    all.0.extend(sample_lines(&mut s, &mut accepted, lines).0);

    // Made-up resources of both kinds: allowed (any direct child of the
    // slice) and unlisted; a few datagrams at a time so the socket
    // buffer never overflows.
    let mut datagrams = Vec::new();
    let mut d = String::new();
    for i in 0..FLOOD {
        for r in [
            format!("cgroup/vcp.slice/flood-{i}"),
            format!("app/made-up-{i}"),
        ] {
            let line = format!("app.queue_depth:{i}|g|#resource:{r}\n");
            if d.len() + line.len() > MAX_DATAGRAM {
                datagrams.push(std::mem::take(&mut d));
            }
            d.push_str(&line);
        }
    }
    datagrams.push(d);
    for chunk in datagrams.chunks(4) {
        for d in chunk {
            send(d.as_bytes());
            lines += d.lines().count() as u64;
        }
        all.0.extend(sample_lines(&mut s, &mut accepted, lines).0);
    }
    assert_eq!(lines, 1 + 2 * FLOOD as u64);
    assert_eq!(s.malformed(), 0);
    assert_eq!(s.unlisted(), FLOOD as u64, "every unlisted line refused");
    assert_eq!(s.dropped(), (FLOOD - (DEFAULT_MAX_SERIES - 1)) as u64);
    assert_eq!(s.series(), DEFAULT_MAX_SERIES);

    // Series already emitted keep working; new ones stay out.
    send(
        b"app.latency.p95:0.06|g|#resource:app/web\n\
          app.queue_depth:1|g|#resource:cgroup/vcp.slice/flood-0\n\
          app.queue_depth:1|g|#resource:cgroup/vcp.slice/late\n\
          app.latency.p95:1|g|#resource:cgroup/vcp.slice/flood-0\n",
    );
    lines += 4;
    let c = sample_lines(&mut s, &mut accepted, lines);
    assert_eq!(c.get("app/web", &APP_LATENCY_P95), Some(0.06));
    assert_eq!(
        c.get("cgroup/vcp.slice/flood-0", &APP_QUEUE_DEPTH),
        Some(1.0)
    );
    assert_eq!(c.get("cgroup/vcp.slice/late", &APP_QUEUE_DEPTH), None);
    assert_eq!(c.get("cgroup/vcp.slice/flood-0", &APP_LATENCY_P95), None);
    assert_eq!(s.dropped(), (FLOOD - (DEFAULT_MAX_SERIES - 1)) as u64 + 2);
    all.0.extend(c.0);

    let series: HashSet<(&str, &str)> = all
        .0
        .iter()
        .filter(|r| r.0 != "agent")
        .map(|r| (r.0.as_str(), r.1))
        .collect();
    assert_eq!(series.len(), DEFAULT_MAX_SERIES);
    assert!(
        series
            .iter()
            .all(|(r, _)| *r == "app/web" || r.starts_with("cgroup/vcp.slice/flood-")),
        "an unlisted resource was emitted"
    );
    let last_unlisted = all
        .0
        .iter()
        .rev()
        .find(|r| r.0 == "agent" && r.1 == APP_UNLISTED_LINES.name)
        .map(|r| r.2);
    assert_eq!(last_unlisted, Some(FLOOD as f64));
}

#[test]
fn a_small_cap_is_kept() {
    let mut s = configured(2);
    let send = sender(&s);
    send(
        b"app.queue_depth:1|g|#resource:app/web\n\
          app.latency.p95:1|g|#resource:app/web\n\
          app.utilization:1|g|#resource:app/web\n",
    );
    let mut accepted = 0;
    let c = sample_lines(&mut s, &mut accepted, 3);
    assert_eq!(c.get("app/web", &APP_QUEUE_DEPTH), Some(1.0));
    assert_eq!(c.get("app/web", &APP_LATENCY_P95), Some(1.0));
    assert_eq!(c.get("app/web", &APP_UTILIZATION), None);
    assert_eq!((s.series(), s.dropped()), (2, 1));
    send(b"app.queue_depth:2|g|#resource:app/web\napp.utilization:2|g|#resource:app/web\n");
    let c = sample_lines(&mut s, &mut accepted, 5);
    assert_eq!(c.get("app/web", &APP_QUEUE_DEPTH), Some(2.0));
    assert_eq!(c.get("app/web", &APP_UTILIZATION), None);
    assert_eq!((s.series(), s.dropped()), (2, 2));
}
