//! Small state files of the spool, each written whole and atomically
//! (temporary file, fsync, rename, fsync of the directory):
//!
//! - `identity` — the agent's incarnation: one per state directory, so a
//!   restarted agent resumes its sequence rather than starting a new one.
//! - `gaps` — batches the spool had to drop and the supervisor has not been
//!   told about yet, with their exact reading counts.

use std::io::{self, Write};
use std::path::Path;

use super::Gap;

const IDENTITY: &str = "identity";
const GAPS: &str = "gaps";

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// `bytes` followed by their checksum.
fn sealed(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The contents of a sealed file, if its checksum holds.
fn unseal(data: &[u8]) -> Option<&[u8]> {
    let (body, crc) = data.split_last_chunk::<4>()?;
    (crc32fast::hash(body) == u32::from_le_bytes(*crc)).then_some(body)
}

/// The directory's incarnation, made with `new` (and stored) the first
/// time.
pub fn incarnation(dir: &Path, new: impl FnOnce() -> u64) -> io::Result<u64> {
    let path = dir.join(IDENTITY);
    match std::fs::read(&path) {
        Ok(data) => {
            if let Some(body) = unseal(&data).and_then(|b| b.first_chunk::<8>()) {
                return Ok(u64::from_le_bytes(*body));
            }
            tracing::warn!(file = %path.display(), "spool: unreadable identity; starting a new incarnation");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let incarnation = new();
    write_atomically(dir, IDENTITY, &sealed(incarnation.to_le_bytes().to_vec()))?;
    Ok(incarnation)
}

/// Stores the gaps not yet reported.
pub fn save_gaps(dir: &Path, gaps: &[Gap]) -> io::Result<()> {
    let mut out = Vec::new();
    for g in gaps {
        out.extend_from_slice(&(g.batches.len() as u32).to_le_bytes());
        for (seq, readings) in &g.batches {
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&readings.to_le_bytes());
        }
    }
    write_atomically(dir, GAPS, &sealed(out))
}

/// The gaps stored, or none.
pub fn load_gaps(dir: &Path) -> Vec<Gap> {
    let Ok(data) = std::fs::read(dir.join(GAPS)) else {
        return Vec::new();
    };
    let Some(mut body) = unseal(&data) else {
        tracing::warn!("spool: unreadable gaps file; its losses are unknown");
        return Vec::new();
    };
    let mut gaps = Vec::new();
    while let Some((n, rest)) = body.split_first_chunk::<4>() {
        let n = u32::from_le_bytes(*n) as usize;
        if n.saturating_mul(16) > rest.len() {
            break;
        }
        let batches = rest[..n * 16]
            .chunks_exact(16)
            .map(|c| {
                let (seq, readings) = c.split_at(8);
                (
                    u64::from_le_bytes(seq.try_into().unwrap_or_default()),
                    u64::from_le_bytes(readings.try_into().unwrap_or_default()),
                )
            })
            .collect();
        gaps.push(Gap { batches });
        body = &rest[n * 16..];
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_made_once_and_gaps_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(incarnation(dir.path(), || 7).unwrap(), 7);
        assert_eq!(incarnation(dir.path(), || 8).unwrap(), 7);
        std::fs::write(dir.path().join(IDENTITY), b"junk").unwrap();
        assert_eq!(incarnation(dir.path(), || 9).unwrap(), 9);
        let gaps = vec![
            Gap {
                batches: [(3, 10), (4, 12)].into(),
            },
            Gap {
                batches: [(9, 1)].into(),
            },
        ];
        save_gaps(dir.path(), &gaps).unwrap();
        assert_eq!(load_gaps(dir.path()), gaps);
        std::fs::write(dir.path().join(GAPS), b"corrupt").unwrap();
        assert!(load_gaps(dir.path()).is_empty());
    }
}
