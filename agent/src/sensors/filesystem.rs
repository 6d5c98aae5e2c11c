//! Filesystem sensor: space and inodes of each mounted filesystem, from
//! `statvfs(3)`, for resource `fs` (the root) or `fs/<mount point>` (e.g.
//! `fs/var/lib` for `/var/lib`).
//!
//! Mounts come from `/proc/self/mountinfo`, read again each sample (a
//! mount may come or go). Pseudo filesystems (proc, sysfs, cgroup, tmpfs,
//! overlay, …) are skipped by their type unless the configuration's list
//! of skipped types leaves them out; a mount point seen twice (bind
//! mounts, stacked mounts) is read once. `sysinfo`'s disk list gives
//! total and available space but not the space used (it cannot tell free
//! from available: the root-reserved blocks) nor inodes, so the sensor
//! asks `statvfs` directly, which gives all of them exactly — on a worker
//! thread, so that a hung network filesystem stops only its own readings
//! (see `statvfs_worker`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vcp_common::metric::{
    Metric, FS_AVAILABLE, FS_INODES_FREE, FS_INODES_TOTAL, FS_READ_ONLY, FS_SIZE, FS_USED,
};

use super::statvfs_worker::{self, Asked, StatvfsWorker};
use super::{parse_err, Emit, Roots, Sensor, SensorError, TextFile};

/// Every metric this sensor emits.
pub const METRICS: [Metric; 6] = [
    FS_SIZE,
    FS_USED,
    FS_AVAILABLE,
    FS_INODES_TOTAL,
    FS_INODES_FREE,
    FS_READ_ONLY,
];

/// Filesystem types skipped unless configured otherwise: the kernel's own
/// views, memory-backed and layered filesystems.
pub const DEFAULT_SKIP_TYPES: [&str; 27] = [
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "fuse.lxcfs",
    "iso9660",
];
/// Most mounts read; past it the rest are left out (logged).
pub const MAX_MOUNTS: usize = 256;

/// One line of `/proc/self/mountinfo`: where, what type, read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    pub fstype: String,
    pub read_only: bool,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Parses `/proc/self/mountinfo`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, SensorError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || parse_err("mountinfo", format!("bad line {line:?}"));
        let (mine, theirs) = line.split_once(" - ").ok_or_else(bad)?;
        let mine: Vec<&str> = mine.split(' ').collect();
        let fstype = theirs.split(' ').next().ok_or_else(bad)?;
        let (Some(point), Some(options)) = (mine.get(4), mine.get(5)) else {
            return Err(bad());
        };
        out.push(Mount {
            point: PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(point))),
            fstype: fstype.to_owned(),
            read_only: options.split(',').any(|o| o == "ro"),
        });
    }
    Ok(out)
}

/// The resource of a mount point: `fs` for `/`, `fs/<path>` otherwise;
/// none for a path that makes no valid resource id.
pub fn resource_of(point: &Path) -> Option<String> {
    let path = point.to_str()?.trim_end_matches('/');
    let resource = match path {
        "" => "fs".to_owned(),
        p => format!("fs/{}", p.strip_prefix('/')?),
    };
    vcp_common::resource::validate(&resource).ok()?;
    Some(resource)
}

/// Space and inodes of one filesystem, in bytes and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub size: u64,
    /// Size less free blocks (free including the root-reserved ones).
    pub used: u64,
    /// Free to unprivileged users.
    pub available: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// `statvfs(3)` of `point`.
pub fn statvfs(point: &Path) -> std::io::Result<Space> {
    let c = CString::new(point.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a NUL-terminated path and `st` a plain C struct the
    // call fills; nothing is kept past it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    } as u64;
    let blocks = st.f_blocks as u64;
    Ok(Space {
        size: blocks * frsize,
        used: blocks.saturating_sub(st.f_bfree as u64) * frsize,
        available: st.f_bavail as u64 * frsize,
        inodes: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}

pub fn emit_space(resource: &str, s: &Space, read_only: bool, out: &mut dyn Emit) {
    out.emit(resource, &FS_SIZE, s.size as f64);
    out.emit(resource, &FS_USED, s.used as f64);
    out.emit(resource, &FS_AVAILABLE, s.available as f64);
    // Filesystems without inodes (btrfs reports 0, vfat none) say 0.
    if s.inodes > 0 {
        out.emit(resource, &FS_INODES_TOTAL, s.inodes as f64);
        out.emit(resource, &FS_INODES_FREE, s.inodes_free as f64);
    }
    out.emit(resource, &FS_READ_ONLY, if read_only { 1.0 } else { 0.0 });
}

/// The filesystem sensor.
#[derive(Debug)]
pub struct FilesystemSensor {
    mountinfo: TextFile,
    skip_types: Vec<String>,
    statvfs: StatvfsWorker,
    /// Mount points whose `statvfs` failed, said once each.
    failed: std::collections::HashSet<PathBuf>,
}

impl FilesystemSensor {
    pub fn new(roots: &Roots, skip_types: Vec<String>) -> Self {
        FilesystemSensor {
            mountinfo: TextFile::new(roots.proc.join("self/mountinfo")),
            skip_types,
            statvfs: StatvfsWorker::new(statvfs, statvfs_worker::TIMEOUT),
            failed: Default::default(),
        }
    }

    /// The mounts read, by resource: the last mount of a point wins (it is
    /// the one on top).
    fn mounts(&mut self) -> Result<BTreeMap<String, Mount>, SensorError> {
        let mut by_resource = BTreeMap::new();
        for m in parse_mountinfo(self.mountinfo.read()?)? {
            if self.skip_types.contains(&m.fstype) {
                continue;
            }
            let Some(resource) = resource_of(&m.point) else {
                tracing::debug!(mount = %m.point.display(), "mount point makes no resource id; skipped");
                continue;
            };
            if by_resource.len() >= MAX_MOUNTS && !by_resource.contains_key(&resource) {
                tracing::debug!("more than {MAX_MOUNTS} filesystems; the rest are not read");
                break;
            }
            by_resource.insert(resource, m);
        }
        Ok(by_resource)
    }
}

impl Sensor for FilesystemSensor {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn sample(&mut self, _now: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
        for (resource, m) in self.mounts()? {
            match self.statvfs.ask(&m.point) {
                Asked::Done(Ok(space)) => {
                    self.failed.remove(&m.point);
                    emit_space(&resource, &space, m.read_only, out);
                }
                Asked::Done(Err(e)) => {
                    if self.failed.insert(m.point.clone()) {
                        tracing::info!(mount = %m.point.display(), error = %e, "filesystem not readable; no readings for it");
                    }
                }
                Asked::StuckNow => tracing::warn!(
                    mount = %m.point.display(),
                    "statvfs has not returned within {:?} (a hung network filesystem?); no readings for it until it does",
                    statvfs_worker::TIMEOUT
                ),
                Asked::Stuck => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::Collected;

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let text = "\
36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:50 / /media/usb\\040disk ro,nosuid - vfat /dev/sdb1 ro
";
        let m = parse_mountinfo(text).unwrap();
        assert_eq!(m[0].point, Path::new("/mnt/parent"));
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[1].point, Path::new("/"));
        assert!(!m[1].read_only);
        assert_eq!(m[2].point, Path::new("/media/usb disk"));
        assert!(m[2].read_only);
        assert!(parse_mountinfo("22 1 254:0 / / rw ext4 /dev/vda rw").is_err());
    }

    #[test]
    fn resources_of_mount_points() {
        assert_eq!(resource_of(Path::new("/")).as_deref(), Some("fs"));
        assert_eq!(
            resource_of(Path::new("/var/lib")).as_deref(),
            Some("fs/var/lib")
        );
        assert_eq!(resource_of(Path::new("/media/usb disk")), None);
        assert_eq!(resource_of(Path::new("relative")), None);
    }

    #[test]
    fn reads_the_root_filesystem_of_this_machine_as_statvfs_says() {
        let skip = DEFAULT_SKIP_TYPES.iter().map(|s| s.to_string()).collect();
        let mut sensor = FilesystemSensor::new(&Roots::default(), skip);
        let mut out = Collected::default();
        sensor.sample(Instant::now(), &mut out).unwrap();
        let size = out
            .get("fs", &FS_SIZE)
            .expect("the root filesystem is read");
        let used = out.get("fs", &FS_USED).unwrap();
        let available = out.get("fs", &FS_AVAILABLE).unwrap();
        assert!(
            size > 0.0 && used + available <= size,
            "{size} {used} {available}"
        );
        // No pseudo filesystem is read by default.
        assert!(!out
            .0
            .iter()
            .any(|(r, _, _)| r.starts_with("fs/proc") || r.starts_with("fs/sys")));
        let direct = statvfs(Path::new("/")).unwrap();
        assert_eq!(size, direct.size as f64);
    }
}
