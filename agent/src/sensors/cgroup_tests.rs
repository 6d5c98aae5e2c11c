//! The cgroup sensor on fixtures and on a temporary cgroup tree.
use super::*;
use crate::sensors::Collected;
use std::time::Duration;

const CPU_1: &str = include_str!("fixtures/cgroup_cpu_stat_1.txt");
const CPU_2: &str = include_str!("fixtures/cgroup_cpu_stat_2.txt");
const IO_1: &str = include_str!("fixtures/cgroup_io_stat_1.txt");
const IO_2: &str = include_str!("fixtures/cgroup_io_stat_2.txt");
const CPU_PSI: &str = include_str!("fixtures/cgroup_cpu_pressure.txt");
const MEM_PSI: &str = include_str!("fixtures/cgroup_memory_pressure.txt");
const IO_PSI: &str = include_str!("fixtures/cgroup_io_pressure.txt");
const PROCS: &str = include_str!("fixtures/cgroup_procs.txt");
const MEM: &str = include_str!("fixtures/cgroup_memory_current.txt");

#[test]
fn parses_fixtures() {
    assert_eq!(parse_cpu_usage_usec(CPU_1).unwrap(), 1_843_201_455);
    assert_eq!(
        parse_io_stat(IO_1).unwrap(),
        IoBytes {
            read: 1_457_152_000 + 4096 + 1_022_976,
            write: 8_312_406_016 + 73_728,
        }
    );
    assert_eq!(parse_io_stat("").unwrap(), IoBytes::default());
    assert_eq!(parse_pressure_some_avg10(CPU_PSI).unwrap(), 12.34 / 100.0);
    assert_eq!(parse_pressure_some_avg10(MEM_PSI).unwrap(), 0.0);
    assert_eq!(parse_pressure_some_avg10(IO_PSI).unwrap(), 1.57 / 100.0);
    assert_eq!(parse_memory_current(MEM).unwrap(), 734_003_200);
    assert_eq!(count_procs(PROCS), 4);
    assert_eq!(count_procs(""), 0);
}

#[test]
fn malformed_is_an_error_not_a_panic() {
    for bad in ["", "user_usec 5\n", "usage_usec x\n", "usage_usec -1\n"] {
        assert!(parse_cpu_usage_usec(bad).is_err(), "{bad:?}");
    }
    for bad in [
        "8:0 rbytes=x wbytes=0\n",
        "8:0 rbytes=18446744073709551615\n8:1 rbytes=1\n",
    ] {
        assert!(parse_io_stat(bad).is_err(), "{bad:?}");
    }
    for bad in [
        "",
        "full avg10=1.00 avg60=0 avg300=0 total=0\n",
        "some avg60=1.00\n",
        "some avg10=abc\n",
        "some avg10=101.00\n",
        "some avg10=-1\n",
        "some avg10=NaN\n",
    ] {
        assert!(parse_pressure_some_avg10(bad).is_err(), "{bad:?}");
    }
    assert!(parse_memory_current("max\n").is_err());
}

#[test]
fn group_paths() {
    for ok in [
        "web",
        "vcp.slice/web",
        "system.slice/nginx.service",
        "a/b/c",
    ] {
        assert!(check_group_path(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "/web", "web/", "a//b", ".", "..", "a/../b", "a/./b", "a b", "a\nb",
    ] {
        assert!(check_group_path(bad).is_err(), "{bad:?}");
    }
    assert!(check_group_path(&"a".repeat(MAX_PATH + 1)).is_err());
}

fn write_group(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
}

#[test]
fn temp_layout_two_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let web = root.join("vcp.slice/web");
    let full = |cpu, io| {
        vec![
            ("cpu.stat", cpu),
            ("io.stat", io),
            ("cpu.pressure", CPU_PSI),
            ("memory.pressure", MEM_PSI),
            ("io.pressure", IO_PSI),
            ("cgroup.procs", PROCS),
            ("memory.current", MEM),
        ]
    };
    write_group(&web, &full(CPU_1, IO_1));
    // No memory controller, no io.stat: those metrics are skipped.
    let db = root.join("vcp.slice/db");
    write_group(&db, &[("cpu.stat", CPU_1), ("cgroup.procs", "")]);
    std::fs::write(root.join("vcp.slice/cgroup.procs"), "").unwrap();
    let batch = root.join("batch.slice");
    write_group(&batch, &[("memory.current", "4096\n")]);
    let mut s = CgroupSensor::new(
        root.clone(),
        vec!["batch.slice".into(), "missing".into(), "../etc".into()],
        Some("vcp.slice".into()),
    );
    let t0 = Instant::now();
    let mut c = Collected::default();
    s.sample(t0, &mut c).unwrap();
    let w = "cgroup/vcp.slice/web";
    assert_eq!(c.get(w, &CGROUP_MEMORY_CURRENT), Some(734_003_200.0));
    assert_eq!(c.get(w, &CGROUP_CPU_PRESSURE), Some(12.34 / 100.0));
    assert_eq!(c.get(w, &CGROUP_MEMORY_PRESSURE), Some(0.0));
    assert_eq!(c.get(w, &CGROUP_IO_PRESSURE), Some(1.57 / 100.0));
    assert_eq!(c.get(w, &CGROUP_PROCESSES), Some(4.0));
    assert_eq!(
        c.get(w, &CGROUP_CPU_USAGE),
        None,
        "no rate on the first sample"
    );
    assert_eq!(c.get("cgroup/vcp.slice/db", &CGROUP_PROCESSES), Some(0.0));
    assert_eq!(
        c.get("cgroup/batch.slice", &CGROUP_MEMORY_CURRENT),
        Some(4096.0)
    );
    assert_eq!(c.0.len(), 5 + 1 + 1);

    write_group(&web, &full(CPU_2, IO_2));
    write_group(&db, &[("cpu.stat", CPU_2)]);
    let mut c = Collected::default();
    s.sample(t0 + Duration::from_secs(2), &mut c).unwrap();
    assert_eq!(c.get(w, &CGROUP_CPU_USAGE), Some(1.25));
    assert_eq!(c.get(w, &CGROUP_IO_READ), Some(1_048_576.0));
    assert_eq!(c.get(w, &CGROUP_IO_WRITE), Some(5_242_880.0));
    let d = "cgroup/vcp.slice/db";
    assert_eq!(c.get(d, &CGROUP_CPU_USAGE), Some(1.25));
    assert_eq!(c.get(d, &CGROUP_IO_READ), None);
    assert_eq!(c.get(d, &CGROUP_MEMORY_CURRENT), None);
    assert!(c
        .0
        .iter()
        .all(|(r, _, _)| !r.contains("missing") && !r.contains("etc")));

    // A re-created group (counter went back) gets no rate; a removed
    // group is forgotten.
    write_group(&web, &full(CPU_1, IO_1));
    std::fs::remove_dir_all(&db).unwrap();
    let mut c = Collected::default();
    s.sample(t0 + Duration::from_secs(4), &mut c).unwrap();
    assert_eq!(c.get(w, &CGROUP_CPU_USAGE), None);
    assert_eq!(c.get(w, &CGROUP_IO_READ), None);
    assert_eq!(c.get(w, &CGROUP_PROCESSES), Some(4.0));
    assert!(!s.prev.contains_key("vcp.slice/db"));
}

#[test]
fn missing_slice_is_reported_after_listed_groups() {
    let tmp = tempfile::tempdir().unwrap();
    write_group(&tmp.path().join("web"), &[("memory.current", "8192\n")]);
    let mut s = CgroupSensor::new(
        tmp.path().to_path_buf(),
        vec!["web".into()],
        Some("nope.slice".into()),
    );
    let mut c = Collected::default();
    assert!(matches!(
        s.sample(Instant::now(), &mut c),
        Err(SensorError::Io { .. })
    ));
    assert_eq!(c.get("cgroup/web", &CGROUP_MEMORY_CURRENT), Some(8192.0));
}

/// A real cgroup v2 mount, when this machine has a writable one.
#[test]
fn real_cgroup_v2_group() {
    let Some(root) = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").is_file())
    else {
        eprintln!("skipped: no cgroup v2 mount on this machine");
        return;
    };
    let name = format!("vcp-sensor-test-{}", std::process::id());
    let dir = root.join(&name);
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("skipped: cannot create {}: {e}", dir.display());
        return;
    }
    let mut s = CgroupSensor::new(root, vec![name.clone()], None);
    let t0 = Instant::now();
    let mut c1 = Collected::default();
    let mut c2 = Collected::default();
    let r1 = s.sample(t0, &mut c1);
    let r2 = s.sample(t0 + Duration::from_millis(500), &mut c2);
    let has_psi = dir.join("cpu.pressure").exists();
    let removed = std::fs::remove_dir(&dir);
    r1.unwrap();
    r2.unwrap();
    removed.unwrap();
    let r = format!("cgroup/{name}");
    // An empty group: no processes, no CPU time.
    assert_eq!(c2.get(&r, &CGROUP_PROCESSES), Some(0.0));
    assert_eq!(c2.get(&r, &CGROUP_CPU_USAGE), Some(0.0));
    if has_psi {
        assert!(c2.get(&r, &CGROUP_CPU_PRESSURE).is_some());
    }
}
