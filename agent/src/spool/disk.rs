//! The spool's files in the agent's state directory:
//!
//! - `seg-<first seq>.spool` — segments of batch and ack records, oldest
//!   first; the newest is appended to, and a new one starts once it holds
//!   `segment_bytes`. Its name says the first sequence number it holds, so
//!   even an empty newest segment keeps the agent's next sequence number.
//! - `series.log` — the agent's series definitions, in the order of their
//!   ids, so that spooled batches mean the same after a restart.
//!
//! A segment whose batches are all acknowledged is deleted. A torn or
//! corrupt tail (a crash mid-write, a bad sector) is cut at start and said
//! once in the log; what was before it is kept.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::warn;
use vcp_common::batch::{Batch, SeriesDef};

use super::record::{self, Record};

/// One segment file and the batches it still holds (unacknowledged).
#[derive(Debug)]
pub struct Segment {
    pub first_seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
    /// (seq, readings) of each batch not yet acknowledged.
    pub held: VecDeque<(u64, u64)>,
}

/// What the directory held at start.
#[derive(Debug, Default)]
pub struct Recovered {
    pub defs: Vec<SeriesDef>,
    /// The sequence number the next batch gets.
    pub next_seq: u64,
    /// The highest sequence number an ack record names.
    pub acked: u64,
}

/// The open files.
#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    segment_bytes: u64,
    pub segments: VecDeque<Segment>,
    current: File,
    series: File,
    /// Definitions appended since the last sync.
    series_dirty: bool,
    scratch: Vec<u8>,
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("seg-{first_seq:020}.spool"))
}

/// Reads the records of `path`, cutting a torn or corrupt tail.
fn read_records(path: &Path) -> io::Result<Vec<Record>> {
    let data = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut at = 0;
    loop {
        match record::decode(&data[at..]) {
            Ok(Some((r, n))) => {
                records.push(r);
                at += n;
            }
            Ok(None) => break,
            Err(e) => {
                warn!(file = %path.display(), at, kept = records.len(), error = %e, "spool: cutting a torn or corrupt tail");
                OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_len(at as u64)?;
                break;
            }
        }
    }
    Ok(records)
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk {
    /// Opens (creating) the spool in `dir`.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<(Disk, Recovered)> {
        std::fs::create_dir_all(dir)?;
        let mut rec = Recovered {
            next_seq: 1,
            ..Recovered::default()
        };
        let series_path = dir.join("series.log");
        if series_path.exists() {
            for r in read_records(&series_path)? {
                if let Record::Def(d) = r {
                    if d.id as usize == rec.defs.len() {
                        rec.defs.push(d);
                    }
                }
            }
        }
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = name
                    .strip_prefix("seg-")?
                    .strip_suffix(".spool")?
                    .parse()
                    .ok()?;
                Some((seq, e.path()))
            })
            .collect();
        names.sort();
        let mut segments = VecDeque::new();
        for (first_seq, path) in names {
            rec.next_seq = rec.next_seq.max(first_seq);
            let mut held = VecDeque::new();
            for r in read_records(&path)? {
                match r {
                    Record::Batch(b) => {
                        rec.next_seq = rec.next_seq.max(b.seq + 1);
                        held.push_back((b.seq, b.readings() as u64));
                    }
                    Record::Ack(seq) => rec.acked = rec.acked.max(seq),
                    Record::Def(_) => {}
                }
            }
            let bytes = std::fs::metadata(&path)?.len();
            segments.push_back(Segment {
                first_seq,
                path,
                bytes,
                held,
            });
        }
        let current_path = match segments.back() {
            Some(s) => s.path.clone(),
            None => {
                let path = segment_path(dir, rec.next_seq);
                segments.push_back(Segment {
                    first_seq: rec.next_seq,
                    path: path.clone(),
                    bytes: 0,
                    held: VecDeque::new(),
                });
                path
            }
        };
        let disk = Disk {
            current: append(&current_path)?,
            series: append(&series_path)?,
            series_dirty: false,
            dir: dir.to_owned(),
            segment_bytes,
            segments,
            scratch: Vec::new(),
        };
        sync_dir(dir)?;
        let mut disk = disk;
        disk.forget_acked(rec.acked)?;
        Ok((disk, rec))
    }

    /// Bytes in every segment.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    pub fn append_def(&mut self, def: &SeriesDef) -> io::Result<()> {
        self.scratch.clear();
        record::encode(&Record::Def(def.clone()), &mut self.scratch);
        self.series_dirty = true;
        self.series.write_all(&self.scratch)
    }

    /// Appends a batch, starting a new segment first if the current one is
    /// full. Not yet durable: see [`Disk::sync`].
    pub fn append_batch(&mut self, batch: &Batch) -> io::Result<()> {
        let full = self
            .segments
            .back()
            .is_some_and(|s| s.bytes >= self.segment_bytes && !s.held.is_empty());
        if full {
            self.current.sync_data()?;
            let path = segment_path(&self.dir, batch.seq);
            self.current = append(&path)?;
            sync_dir(&self.dir)?;
            self.segments.push_back(Segment {
                first_seq: batch.seq,
                path,
                bytes: 0,
                held: VecDeque::new(),
            });
        }
        self.scratch.clear();
        record::encode_batch(batch, &mut self.scratch);
        self.current.write_all(&self.scratch)?;
        if let Some(s) = self.segments.back_mut() {
            s.bytes += self.scratch.len() as u64;
            s.held.push_back((batch.seq, batch.readings() as u64));
        }
        Ok(())
    }

    /// Makes what was appended durable.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.series_dirty {
            self.series.sync_data()?;
            self.series_dirty = false;
        }
        self.current.sync_data()
    }

    /// Records that batches up to `seq` are acknowledged (not synced: a
    /// lost ack record only means a resend) and deletes the segments left
    /// with nothing to hold.
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        self.scratch.clear();
        record::encode(&Record::Ack(seq), &mut self.scratch);
        self.current.write_all(&self.scratch)?;
        if let Some(s) = self.segments.back_mut() {
            s.bytes += self.scratch.len() as u64;
        }
        self.forget_acked(seq)
    }

    fn forget_acked(&mut self, seq: u64) -> io::Result<()> {
        for s in &mut self.segments {
            while s.held.front().is_some_and(|(b, _)| *b <= seq) {
                s.held.pop_front();
            }
        }
        while self.segments.len() > 1 && self.segments[0].held.is_empty() {
            if let Some(s) = self.segments.pop_front() {
                std::fs::remove_file(&s.path)?;
            }
        }
        Ok(())
    }

    /// Deletes the oldest segment (never the one being written); returns
    /// the (seq, readings) of the batches it still held.
    pub fn drop_oldest(&mut self) -> io::Result<Option<VecDeque<(u64, u64)>>> {
        if self.segments.len() < 2 {
            return Ok(None);
        }
        let Some(s) = self.segments.pop_front() else {
            return Ok(None);
        };
        std::fs::remove_file(&s.path)?;
        Ok(Some(s.held))
    }

    /// The held batches with seq > `after`, read back in order, one
    /// segment at a time.
    pub fn batches(&self, after: u64) -> impl Iterator<Item = io::Result<Batch>> + Send + 'static {
        let paths: Vec<PathBuf> = self
            .segments
            .iter()
            .filter(|s| s.held.back().is_some_and(|(seq, _)| *seq > after))
            .map(|s| s.path.clone())
            .collect();
        paths.into_iter().flat_map(move |p| {
            let records = match read_records(&p) {
                Ok(r) => r,
                Err(e) => return vec![Err(e)],
            };
            records
                .into_iter()
                .filter_map(|r| match r {
                    Record::Batch(b) if b.seq > after => Some(Ok(b)),
                    _ => None,
                })
                .collect()
        })
    }
}
