//! Parsing, validation and error positions of the supervisor config.
use super::*;

fn parse(text: &str) -> Result<SupervisorFile, ConfigError> {
    SupervisorFile::parse(text, Path::new("sup.toml"))
}

#[test]
fn example_parses() {
    let cfg = parse(include_str!("../../supervisor.example.toml")).unwrap();
    assert_eq!(cfg.service_sets.len(), 2);
    assert_eq!(cfg.cadence(Kind::Autoscaling).deadline_ms, 50);
    assert_eq!(cfg.cadence(Kind::TrafficDetection).cadence_ms, 100);
    assert_eq!(
        cfg.limits,
        limits::Limits::default(),
        "the example shows the defaults"
    );
}

#[test]
fn errors_name_file_line_and_expectation() {
    let text = "[[customers]]\nid = \"acme\"\n\n[[service_sets]]\nid = \"web\"\ncustomer = \"acmee\"\ninstances = { min = 1, max = 4, initial = 2 }\n";
    let e = parse(text).unwrap_err().to_string();
    assert!(
        e.starts_with("sup.toml:6: unknown customer \"acmee\""),
        "{e}"
    );
    assert!(
        e.contains("expected one of [\"acme\", \"operator\"]"),
        "{e}"
    );

    let e = parse("[[customers]]\nid = \"acme\"\nnmae = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sup.toml") && e.contains("line 3") && e.contains("nmae"),
        "{e}"
    );

    let text = "[[service_sets]]\nid = \"web\"\ncustomer = \"operator\"\ninstances = { min = 3, max = 2, initial = 2 }\n";
    let e = parse(text).unwrap_err().to_string();
    assert!(e.starts_with("sup.toml:4: instances must satisfy"), "{e}");
}

#[test]
fn control_plane_references_are_checked() {
    let base = "[[customers]]\nid = \"acme\"\n[[vendors]]\nid = \"v\"\n[[custom_modules]]\nid = \"m1\"\nkind = \"spread\"\nvendor = \"v\"\ncustomer = \"acme\"\n";
    let wrong_kind = format!("{base}[[control_planes]]\ncustomer = \"acme\"\nmodules = {{ autoscaling = {{ mode = \"replace\", module = \"m1\" }} }}\n");
    let e = parse(&wrong_kind).unwrap_err().to_string();
    assert!(
        e.contains(":12:") && e.contains("is a spread module, not autoscaling"),
        "{e}"
    );
    let missing = format!("{base}[[control_planes]]\ncustomer = \"acme\"\nmodules = {{ spread = {{ mode = \"complement\" }} }}\n");
    assert!(parse(&missing)
        .unwrap_err()
        .to_string()
        .contains("needs `module`"));
}

#[test]
fn a_vendor_may_not_share_a_customer_id() {
    let e = parse("[[customers]]\nid = \"acme\"\n[[vendors]]\nid = \"acme\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("sup.toml:4: vendor \"acme\" has the id of a customer"),
        "{e}"
    );
}
