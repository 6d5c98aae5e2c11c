//! The cgroup v2 actuator: writes the limits of a virtual resource's group.
//!
//! Target `Target::Resource { resource: "cgroup/<relative path>" }`, e.g.
//! `cgroup/vcp.slice/web`, under a root (default `/sys/fs/cgroup`).
//!
//! | parameter     | value                  | file          | written            |
//! |---------------|------------------------|---------------|--------------------|
//! | `cpu.max`     | cores, > 0             | `cpu.max`     | `"<quota> 100000"` |
//! | `cpu.weight`  | 1..=10000              | `cpu.weight`  | integer            |
//! | `cpu.share`   | share 0..=1            | `cpu.weight`  | `round(1 + s × 9999)` |
//! | `memory.max`  | bytes, ≥ 4096          | `memory.max`  | integer            |
//! | `memory.high` | bytes, ≥ 4096          | `memory.high` | integer            |
//!
//! `cpu.max` quota is `round(cores × 100000)` µs per 100000 µs period and
//! must be at least 1000 µs (the kernel's minimum, 0.01 cores). Weights and
//! byte counts are rounded to the nearest integer before the range check
//! (mediated values are often weighted averages). Non-finite values are
//! refused: the `max` (unlimited) setting of the kernel cannot be expressed
//! as a value and is left to the operator. Every value is written followed
//! by one `\n`, which the kernel accepts as `echo` writes it.
//!
//! Writes: cgroupfs files cannot be created or renamed into, so a write is
//! "atomic" the way the kernel defines it: the existing file is opened for
//! writing (truncating, which cgroupfs ignores) and the whole value goes in
//! ONE `write` call, which the kernel parses as a unit. A short write is an
//! error. On a plain directory (tests) the behaviour is the same.
//!
//! Paths: the relative path must be plain segments (no empty, `.` or `..`
//! segment, not absolute), the group must exist as a directory, and its
//! canonical path must lie strictly under the canonical root, so a symlink
//! cannot lead a write outside the root. The file must be a regular file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::sensors::cgroup::check_group_path;

use super::{resource_suffix, Actuator, ActuatorError, Applied, Configuration};

/// Where the cgroup v2 hierarchy is normally mounted.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// The `cpu.max` period, in µs.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest `cpu.max` quota the kernel accepts, in µs.
pub const MIN_CPU_QUOTA_US: u64 = 1_000;
/// Most cores `cpu.max` accepts (far beyond any host; the kernel's own
/// bound is about 1.7e8 cores at this period).
pub const MAX_CORES: f64 = 1_000_000.0;
/// Smallest memory limit accepted, in bytes (one page).
pub const MIN_MEMORY_BYTES: u64 = 4096;
/// Largest memory limit accepted, in bytes (1 EiB).
pub const MAX_MEMORY_BYTES: u64 = 1 << 60;
/// The parameters this actuator knows.
pub const PARAMETERS: &str = "cpu.max, cpu.weight, cpu.share, memory.max, memory.high";

/// What to write where, for one parameter and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write1 {
    /// File name inside the group directory.
    pub file: &'static str,
    /// Exact bytes written, including the trailing newline.
    pub content: String,
}

/// Maps a parameter and value to a cgroup file and its content, validating
/// the value. Pure: no file access.
pub fn render(c: &Configuration) -> Result<Write1, ActuatorError> {
    let v = c.value;
    if !v.is_finite() {
        return Err(ActuatorError::value(c, "not a finite number"));
    }
    let (file, content) = match c.parameter.as_str() {
        "cpu.max" => {
            if v <= 0.0 || v > MAX_CORES {
                return Err(ActuatorError::value(
                    c,
                    format!("cores must be in (0, {MAX_CORES}]"),
                ));
            }
            let quota = (v * CPU_PERIOD_US as f64).round() as u64;
            if quota < MIN_CPU_QUOTA_US {
                return Err(ActuatorError::value(
                    c,
                    format!("quota {quota} µs is below the kernel minimum of {MIN_CPU_QUOTA_US} µs (0.01 cores)"),
                ));
            }
            ("cpu.max", format!("{quota} {CPU_PERIOD_US}\n"))
        }
        "cpu.weight" => {
            let w = v.round();
            if !(1.0..=10_000.0).contains(&w) {
                return Err(ActuatorError::value(c, "weight must be in 1..=10000"));
            }
            ("cpu.weight", format!("{}\n", w as u64))
        }
        "cpu.share" => {
            if !(0.0..=1.0).contains(&v) {
                return Err(ActuatorError::value(c, "share must be in 0..=1"));
            }
            let w = (1.0 + v * 9999.0).round() as u64;
            ("cpu.weight", format!("{w}\n"))
        }
        "memory.max" | "memory.high" => {
            let b = v.round();
            if b < MIN_MEMORY_BYTES as f64 || b > MAX_MEMORY_BYTES as f64 {
                return Err(ActuatorError::value(
                    c,
                    format!("bytes must be in {MIN_MEMORY_BYTES}..={MAX_MEMORY_BYTES}"),
                ));
            }
            let file = if c.parameter == "memory.max" {
                "memory.max"
            } else {
                "memory.high"
            };
            (file, format!("{}\n", b as u64))
        }
        other => {
            return Err(ActuatorError::Parameter {
                parameter: other.to_owned(),
                known: PARAMETERS,
            })
        }
    };
    Ok(Write1 { file, content })
}

/// Resolves a group's directory under `root`, refusing anything that is not
/// an existing directory strictly inside the root (after symlinks).
pub fn resolve_group(root: &Path, rel: &str) -> Result<PathBuf, ActuatorError> {
    let target = |reason: String| ActuatorError::Target {
        target: format!("cgroup/{rel}"),
        reason,
    };
    check_group_path(rel).map_err(target)?;
    let canon_root = root
        .canonicalize()
        .map_err(|e| target(format!("cgroup root {} is not usable: {e}", root.display())))?;
    let dir = canon_root
        .join(rel)
        .canonicalize()
        .map_err(|e| target(format!("no such group under {}: {e}", root.display())))?;
    if dir == canon_root || !dir.starts_with(&canon_root) {
        return Err(target(format!(
            "resolves to {}, outside the root {}",
            dir.display(),
            canon_root.display()
        )));
    }
    if !dir.is_dir() {
        return Err(target("is not a directory".into()));
    }
    Ok(dir)
}

/// Writes `content` to an existing file in one `write` call.
fn write_once(path: &Path, content: &str) -> Result<(), ActuatorError> {
    let io = |source: std::io::Error| ActuatorError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ActuatorError::Unavailable(format!(
                "{} does not exist (is the controller enabled in the parent's cgroup.subtree_control?)",
                path.display()
            ))
        } else {
            io(e)
        }
    })?;
    if !meta.file_type().is_file() {
        return Err(ActuatorError::Unavailable(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io)?;
    let n = f.write(content.as_bytes()).map_err(io)?;
    if n != content.len() {
        return Err(ActuatorError::Failed(format!(
            "{}: short write ({n} of {} bytes)",
            path.display(),
            content.len()
        )));
    }
    Ok(())
}

/// Writes cgroup v2 limits under a root.
#[derive(Debug, Clone)]
pub struct CgroupActuator {
    root: PathBuf,
}

impl CgroupActuator {
    pub fn new(root: PathBuf) -> Self {
        CgroupActuator { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Actuator for CgroupActuator {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn apply(&mut self, c: &Configuration) -> Result<Applied, ActuatorError> {
        let rel = resource_suffix(c, "cgroup/")?;
        let w = render(c)?;
        let dir = resolve_group(&self.root, rel)?;
        let path = dir.join(w.file);
        write_once(&path, &w.content)?;
        tracing::info!(
            round = c.round,
            group = rel,
            file = w.file,
            content = w.content.trim_end(),
            "cgroup limit written"
        );
        Ok(Applied {
            detail: format!("cgroup/{rel}: {} = {:?}", w.file, w.content.trim_end()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::module::Target;

    const FILES: [&str; 4] = ["cpu.max", "cpu.weight", "memory.max", "memory.high"];

    fn conf(resource: &str, parameter: &str, value: f64) -> Configuration {
        Configuration {
            round: 9,
            target: Target::Resource {
                host: "h1".into(),
                resource: vcp_common::resource::ResourceId::new(resource).unwrap(),
            },
            parameter: parameter.into(),
            value,
        }
    }

    /// `root/vcp.slice/web/{cpu.max,…}` with the kernel's defaults.
    fn layout() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let web = tmp.path().join("root/vcp.slice/web");
        std::fs::create_dir_all(&web).unwrap();
        for (f, v) in FILES
            .iter()
            .zip(["max 100000\n", "100\n", "max\n", "max\n"])
        {
            std::fs::write(web.join(f), v).unwrap();
        }
        tmp
    }

    fn read(tmp: &tempfile::TempDir, file: &str) -> String {
        std::fs::read_to_string(tmp.path().join("root/vcp.slice/web").join(file)).unwrap()
    }

    #[test]
    fn writes_exact_contents() {
        let tmp = layout();
        let mut a = CgroupActuator::new(tmp.path().join("root"));
        let r = "cgroup/vcp.slice/web";
        let cases = [
            ("cpu.max", 1.5, "cpu.max", "150000 100000\n"),
            ("cpu.max", 0.01, "cpu.max", "1000 100000\n"),
            ("cpu.max", 2.0000004, "cpu.max", "200000 100000\n"),
            ("cpu.weight", 150.0, "cpu.weight", "150\n"),
            ("cpu.weight", 150.4, "cpu.weight", "150\n"),
            ("cpu.share", 0.0, "cpu.weight", "1\n"),
            ("cpu.share", 0.5, "cpu.weight", "5001\n"),
            ("cpu.share", 1.0, "cpu.weight", "10000\n"),
            ("memory.max", 536870912.0, "memory.max", "536870912\n"),
            ("memory.high", 4096.0, "memory.high", "4096\n"),
        ];
        for (param, value, file, want) in cases {
            let applied = a.apply(&conf(r, param, value)).unwrap();
            assert_eq!(read(&tmp, file), want, "{param} = {value}");
            assert!(applied.detail.contains(file), "{}", applied.detail);
        }
        // A longer old value is fully replaced (truncate).
        a.apply(&conf(r, "memory.max", 8192.0)).unwrap();
        assert_eq!(read(&tmp, "memory.max"), "8192\n");
    }

    #[test]
    fn bad_values_are_rejected_and_nothing_written() {
        let tmp = layout();
        let mut a = CgroupActuator::new(tmp.path().join("root"));
        let r = "cgroup/vcp.slice/web";
        for (param, value) in [
            ("cpu.max", 0.0),
            ("cpu.max", -1.0),
            ("cpu.max", 0.004),
            ("cpu.max", f64::INFINITY),
            ("cpu.max", f64::NAN),
            ("cpu.max", 2e6),
            ("cpu.weight", 0.0),
            ("cpu.weight", 10_001.0),
            ("cpu.weight", -3.0),
            ("cpu.share", 1.01),
            ("cpu.share", -0.1),
            ("memory.max", 4095.0),
            ("memory.max", -4096.0),
            ("memory.high", f64::INFINITY),
            ("memory.high", 2f64.powi(61)),
        ] {
            let e = a.apply(&conf(r, param, value)).unwrap_err();
            assert!(
                matches!(e, ActuatorError::Value { .. }),
                "{param}={value}: {e}"
            );
        }
        let e = a.apply(&conf(r, "cpu.quota", 1.0)).unwrap_err();
        assert!(matches!(e, ActuatorError::Parameter { .. }), "{e}");
        assert!(e.to_string().contains("cpu.max"), "{e}");
        for (f, v) in FILES
            .iter()
            .zip(["max 100000\n", "100\n", "max\n", "max\n"])
        {
            assert_eq!(read(&tmp, f), v);
        }
    }

    #[test]
    fn bad_paths_are_rejected() {
        let tmp = layout();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/cpu.max"), "max 100000\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("vcp.slice/evil"))
            .unwrap();
        std::fs::write(root.join("vcp.slice/afile"), "").unwrap();
        let mut a = CgroupActuator::new(root);
        // Paths that climb out are not resource ids: no configuration
        // can name them (the frame that tried would not decode).
        for resource in [
            "cgroup/../outside",
            "cgroup/vcp.slice/../../outside",
            "cgroup//etc",
            "cgroup/",
            "cgroup/.",
            "cgroup/vcp.slice//web",
        ] {
            assert!(
                vcp_common::resource::ResourceId::new(resource).is_err(),
                "{resource}"
            );
        }
        for resource in [
            "cgroup",
            "cgroup/vcp.slice/missing",
            "cgroup/vcp.slice/evil",
            "cgroup/vcp.slice/afile",
            "nic/eth0",
        ] {
            let e = a.apply(&conf(resource, "cpu.max", 1.0)).unwrap_err();
            assert!(matches!(e, ActuatorError::Target { .. }), "{resource}: {e}");
        }
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("outside/cpu.max")).unwrap(),
            "max 100000\n"
        );
        let mut c = conf("cgroup/vcp.slice/web", "cpu.max", 1.0);
        c.target = Target::ServiceSet("web".into());
        assert!(a.apply(&c).is_err());
        // A group without the controller's file.
        std::fs::remove_file(tmp.path().join("root/vcp.slice/web/memory.high")).unwrap();
        let e = a
            .apply(&conf("cgroup/vcp.slice/web", "memory.high", 8192.0))
            .unwrap_err();
        assert!(e.to_string().contains("subtree_control"), "{e}");
        // A missing root.
        let mut a = CgroupActuator::new(tmp.path().join("nope"));
        let e = a
            .apply(&conf("cgroup/vcp.slice/web", "cpu.max", 1.0))
            .unwrap_err();
        assert!(e.to_string().contains("root"), "{e}");
    }

    /// Removes the test group on drop, even when the test fails.
    struct Group(PathBuf);

    impl Drop for Group {
        fn drop(&mut self) {
            if let Err(e) = std::fs::remove_dir(&self.0) {
                eprintln!("could not remove {}: {e}", self.0.display());
            }
        }
    }

    /// A real cgroup v2 mount: `/sys/fs/cgroup` on a unified host, or
    /// `/sys/fs/cgroup/unified` on a hybrid one.
    pub(crate) fn real_v2_root() -> Option<PathBuf> {
        ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("cgroup.controllers").is_file())
    }

    #[test]
    fn real_cgroup_v2_mount() {
        let Some(root) = real_v2_root() else {
            eprintln!("skipped: no cgroup v2 mount (no cgroup.controllers under /sys/fs/cgroup or /sys/fs/cgroup/unified)");
            return;
        };
        let name = format!("vcp-test-{}", std::process::id());
        let dir = root.join(&name);
        if let Err(e) = std::fs::create_dir(&dir) {
            eprintln!("skipped: cannot create {}: {e}", dir.display());
            return;
        }
        let _group = Group(dir.clone());
        let mut a = CgroupActuator::new(root.clone());
        let resource = format!("cgroup/{name}");
        let cases = [
            ("cpu.max", 1.5, "cpu.max", "150000 100000\n"),
            ("cpu.weight", 150.0, "cpu.weight", "150\n"),
            ("memory.max", 64.0 * 1048576.0, "memory.max", "67108864\n"),
            ("memory.high", 32.0 * 1048576.0, "memory.high", "33554432\n"),
        ];
        for (param, value, file, want) in cases {
            let path = dir.join(file);
            if !path.exists() {
                let e = a.apply(&conf(&resource, param, value)).unwrap_err();
                assert!(matches!(e, ActuatorError::Unavailable(_)), "{e}");
                eprintln!(
                    "skipped {param} on {}: controller not enabled there ({e})",
                    root.display()
                );
                continue;
            }
            a.apply(&conf(&resource, param, value)).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want, "{param}");
        }
        // The kernel's own validation still applies and is reported.
        let e = a.apply(&conf(&resource, "cpu.max", -1.0)).unwrap_err();
        assert!(matches!(e, ActuatorError::Value { .. }));
    }
}
