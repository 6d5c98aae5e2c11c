//! The crate graph states the architecture: this test reads `cargo
//! metadata` and fails when a crate depends (directly or through others,
//! normal dependencies only) on what its layer must never link.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// (crate, what it must never depend on, why).
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "vcp-common",
        &[
            "tokio",
            "quinn",
            "rusqlite",
            "axum",
            "vcp-core",
            "vcp-supervisor",
        ],
        "vocabulary and wire: no sockets, no runtime, no storage",
    ),
    (
        "vcp-core",
        &[
            "tokio",
            "quinn",
            "rusqlite",
            "axum",
            "vcp-supervisor",
            "vcp-transport",
        ],
        "pure control-plane logic: no I/O",
    ),
    (
        "vcp-transport",
        &["rusqlite", "axum", "vcp-core", "vcp-supervisor"],
        "the QUIC/TLS settings every peer shares",
    ),
    (
        "vcp-agent",
        &[
            "rusqlite",
            "axum",
            "hyper",
            "vcp-core",
            "vcp-supervisor",
            "vcp-module-sdk",
        ],
        "the agent links neither the supervisor's stack nor the vendors' SDK",
    ),
    (
        "vcp-store",
        &["quinn", "axum", "vcp-transport", "vcp-supervisor"],
        "one durable store: the core's vocabulary on SQLite, no network",
    ),
    (
        "vcp-module-sdk",
        &[
            "rusqlite",
            "axum",
            "vcp-core",
            "vcp-supervisor",
            "vcp-agent",
        ],
        "a vendor's module links only the wire and the transport",
    ),
    (
        "vcp-supervisor",
        &["vcp-agent", "vcp-module-sdk"],
        "the shell serves agents and modules; it links neither",
    ),
];

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Package id -> (name, the ids of its normal dependencies).
fn graph(meta: &Value) -> HashMap<String, (String, Vec<String>)> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = n["id"].as_str().unwrap();
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap().to_owned())
                .collect();
            (id.to_owned(), (names[id].to_owned(), deps))
        })
        .collect()
}

/// The names of everything `root` depends on, with one path to each.
fn closure(g: &HashMap<String, (String, Vec<String>)>, root: &str) -> HashMap<String, Vec<String>> {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut stack = vec![(root.to_owned(), vec![g[root].0.clone()])];
    let mut visited = BTreeSet::new();
    while let Some((id, path)) = stack.pop() {
        if !visited.insert(id.clone()) {
            continue;
        }
        for dep in &g[&id].1 {
            let name = g[dep].0.clone();
            let mut p = path.clone();
            p.push(name.clone());
            seen.entry(name).or_insert_with(|| p.clone());
            stack.push((dep.clone(), p));
        }
    }
    seen
}

#[test]
fn no_crate_depends_on_what_its_layer_must_never_link() {
    let meta = metadata();
    let g = graph(&meta);
    let mut broken = Vec::new();
    for (krate, never, why) in RULES {
        let Some(id) = g.iter().find(|(_, (n, _))| n == krate).map(|(id, _)| id) else {
            panic!("{krate} is not in the workspace");
        };
        let deps = closure(&g, id);
        for n in *never {
            if let Some(path) = deps.get(*n) {
                broken.push(format!(
                    "{krate} must not depend on {n} ({why}): {}",
                    path.join(" -> ")
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Only the store opens the database: no other crate of the workspace
/// names rusqlite among its own (direct, normal) dependencies.
#[test]
fn only_the_store_links_the_database() {
    let meta = metadata();
    let g = graph(&meta);
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let mut broken = Vec::new();
    let mut store_links_it = false;
    for id in members {
        let (name, deps) = &g[id];
        let direct = deps.iter().any(|d| g[d].0 == "rusqlite");
        if name == "vcp-store" {
            store_links_it = direct;
        } else if direct {
            broken.push(name.clone());
        }
    }
    assert!(store_links_it, "vcp-store -> rusqlite not found");
    assert!(
        broken.is_empty(),
        "only vcp-store may depend on rusqlite: {}",
        broken.join(", ")
    );
}

#[test]
fn the_rules_can_fail() {
    // The supervisor links all of it: the same walk finds it.
    let meta = metadata();
    let g = graph(&meta);
    let id = g
        .iter()
        .find(|(_, (n, _))| n == "vcp-supervisor")
        .map(|(id, _)| id.clone())
        .unwrap();
    let deps = closure(&g, &id);
    for n in [
        "tokio",
        "quinn",
        "rusqlite",
        "axum",
        "vcp-core",
        "vcp-store",
    ] {
        assert!(deps.contains_key(n), "vcp-supervisor -> {n} not found");
    }
}

/// The source folders of the workspace's crates.
const CRATE_SOURCES: &[&str] = &[
    "common/src",
    "common/transport/src",
    "common/sdk/src",
    "agent/src",
    "supervisor/core/src",
    "supervisor/store/src",
    "supervisor/src",
    "src",
];

fn is_test_file(path: &std::path::Path) -> bool {
    let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests"
        || name.ends_with("_tests")
        || name.ends_with("_golden")
        || name == "proptests"
        || path.components().any(|c| c.as_os_str() == "tests")
}

fn rust_files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(path) {
        out.push(path.to_owned());
    }
}

/// The top-level modules `text` names as `crate::NAME`, outside comments
/// and test code.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// Each top-level module of the crate in `src` and the top-level modules
/// it names.
fn module_edges(src: &str) -> HashMap<String, BTreeSet<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let mut edges: HashMap<String, BTreeSet<String>> = HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
            continue;
        };
        if matches!(name, "lib" | "main" | "bin") || is_test_file(&path) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        let refs = edges.entry(name.to_owned()).or_default();
        for f in files {
            refs.extend(crate_refs(&std::fs::read_to_string(f).unwrap()));
        }
        refs.remove(name);
    }
    edges
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let mut cycles = Vec::new();
    for src in CRATE_SOURCES {
        let edges = module_edges(src);
        for (a, refs) in &edges {
            for b in refs {
                if a < b && edges.get(b).is_some_and(|r| r.contains(a)) {
                    cycles.push(format!("{src}: {a} <-> {b}"));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}",
        cycles.join("\n")
    );
    // The walk sees the imports it checks.
    assert!(module_edges("supervisor/src")["control"].contains("biller"));
}

#[test]
fn the_cycle_check_sees_imports() {
    let refs = crate_refs(
        "use crate::a::B;\n// crate::c\nfn f() { crate::d::e(); }\n#[cfg(test)]\nuse crate::t;",
    );
    assert_eq!(refs, BTreeSet::from(["a".to_owned(), "d".to_owned()]));
}
