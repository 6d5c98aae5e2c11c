//! Configuration a supervisor refuses: resources that climb out of their
//! parent, and members two customers would share.

use std::path::Path;

use vcp_supervisor::config::SupervisorFile;

const SETS: &str = r#"
[[customers]]
id = "acme"
[[customers]]
id = "globex"
[[service_sets]]
id = "acme-web"
customer = "acme"
instances = { min = 1, max = 4, initial = 1 }
members = [{ host = "h1", resource = "cgroup/web" }]
"#;

fn parse(extra: &str) -> Result<SupervisorFile, String> {
    SupervisorFile::parse(&format!("{SETS}{extra}"), Path::new("sup.toml"))
        .map_err(|e| e.to_string())
}

#[test]
fn a_member_resource_with_dot_dot_is_refused_with_its_line() {
    let err = parse(
        r#"
[[service_sets]]
id = "globex-web"
customer = "globex"
instances = { min = 1, max = 4, initial = 1 }
members = [{ host = "h1", resource = "cgroup/web/../api" }]
"#,
    )
    .unwrap_err();
    assert!(err.contains("sup.toml"), "{err}");
    assert!(
        err.contains("\"cgroup/web/../api\" has a '.' or '..' segment"),
        "{err}"
    );
}

#[test]
fn members_two_customers_would_share_are_refused_naming_both() {
    for member in [
        r#"{ host = "h1", resource = "cgroup/web/worker" }"#,
        r#"{ host = "h1", resource = "cgroup" }"#,
        r#"{ host = "h1" }"#,
    ] {
        let err = parse(&format!(
            "[[service_sets]]\nid = \"globex-web\"\ncustomer = \"globex\"\ninstances = {{ min = 1, max = 4, initial = 1 }}\nmembers = [{member}]\n"
        ))
        .unwrap_err();
        assert!(err.contains("sup.toml:"), "{err}");
        for name in ["\"globex-web\"", "\"globex\"", "\"acme-web\"", "\"acme\""] {
            assert!(err.contains(name), "{member}: {err} lacks {name}");
        }
    }
    // Next to each other, or on another host: fine.
    parse(
        "[[service_sets]]\nid = \"globex-web\"\ncustomer = \"globex\"\ninstances = { min = 1, max = 4, initial = 1 }\nmembers = [{ host = \"h1\", resource = \"cgroup/webx\" }, { host = \"h2\" }]\n",
    )
    .unwrap();
}
