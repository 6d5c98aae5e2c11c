//! [`BatchEncoder`]: batches to payloads.

use zstd::stream::raw::{CParameter, Encoder as ZEncoder};

use super::quant::{Quantum, SeriesState};
use super::zstream::compress;
use super::{
    zstd_err, CodecError, COMPRESS_FROM, ENCODER_WINDOW_LOG, FLAG_LAYOUT, FLAG_SEQ_NEXT,
    FLAG_SERIES, PAYLOAD_RAW, PAYLOAD_ZSTD,
};
use crate::batch::{Batch, SeriesDef, SeriesId, SeriesTable};
use crate::varint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LayoutEntry {
    /// The series' wire id on this connection.
    series: u32,
    /// The agent's id of the series.
    agent: SeriesId,
    start: u32,
    len: u32,
}

/// A series sent on this connection: its wire id and codec state.
#[derive(Debug, Clone, Copy)]
struct Sent {
    wire: u32,
    state: SeriesState,
}

/// Encodes the batches of one connection. See the module docs for the wire.
pub struct BatchEncoder {
    /// The connection's zstd stream, made with the first record worth
    /// compressing (a small host's never is).
    zstd: Option<ZEncoder<'static>>,
    level: i32,
    /// Bytes of series definitions in the last record.
    defs_len: usize,
    /// Indexed by the agent's series id; `Some` once the series was
    /// defined on this connection. Wire ids are dense from 0 in the order
    /// of definition, whatever the agent's ids are.
    series: Vec<Option<Sent>>,
    /// Series defined on this connection (the next wire id).
    defined: u32,
    prev_seq: u64,
    prev_ts: i64,
    prev_dt: i64,
    have_ts: bool,
    layout: Option<(usize, Vec<LayoutEntry>)>,
    /// Change bitmap of the previous record (see the module docs).
    prev_bitmap: Vec<u8>,
    // Scratch, reused between calls.
    bitmap: Vec<u8>,
    values: Vec<u8>,
    cur_layout: Vec<LayoutEntry>,
    quantised: Vec<i64>,
    /// Series first defined by the batch being encoded: (agent id, the
    /// definition with its wire id).
    new_defs: Vec<(SeriesId, SeriesDef)>,
    pub(super) raw: Vec<u8>,
    poisoned: bool,
}

impl std::fmt::Debug for BatchEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchEncoder")
            .field("series_sent", &self.series.iter().flatten().count())
            .field("prev_seq", &self.prev_seq)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl BatchEncoder {
    /// A fresh encoder for a new connection, compressing at zstd `level`
    /// the records worth it ([`COMPRESS_FROM`]).
    pub fn new(level: i32) -> Result<Self, CodecError> {
        Ok(BatchEncoder {
            zstd: None,
            level,
            defs_len: 0,
            series: Vec::new(),
            defined: 0,
            prev_seq: 0,
            prev_ts: 0,
            prev_dt: 0,
            have_ts: false,
            layout: None,
            prev_bitmap: Vec::new(),
            bitmap: Vec::new(),
            values: Vec::new(),
            cur_layout: Vec::new(),
            quantised: Vec::new(),
            new_defs: Vec::new(),
            raw: Vec::new(),
            poisoned: false,
        })
    }

    /// Appends the payload of `batch` to `out`.
    ///
    /// On error nothing is appended and the encoder's state is unchanged (it
    /// stays usable), except for zstd failures, after which it refuses
    /// further batches. Empty columns are skipped.
    pub fn encode(
        &mut self,
        batch: &Batch,
        table: &SeriesTable,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if self.poisoned {
            return Err(CodecError::Poisoned);
        }
        if let Err(e) = self.prepare(batch, table) {
            for (agent, _) in self.new_defs.drain(..) {
                if let Some(slot) = self.series.get_mut(agent as usize) {
                    *slot = None;
                    self.defined -= 1;
                }
            }
            return Err(e);
        }
        self.write_record(batch);
        if self.raw.len() - self.defs_len < COMPRESS_FROM {
            out.push(PAYLOAD_RAW);
            out.extend_from_slice(&self.raw);
            return Ok(());
        }
        let mark = out.len();
        out.push(PAYLOAD_ZSTD);
        let raw = std::mem::take(&mut self.raw);
        let compressed = self.stream().and_then(|z| compress(z, &raw, out));
        self.raw = raw;
        if let Err(e) = compressed {
            self.poisoned = true;
            out.truncate(mark);
            return Err(e);
        }
        Ok(())
    }

    /// The connection's zstd stream, made when first needed.
    fn stream(&mut self) -> Result<&mut ZEncoder<'static>, CodecError> {
        let zstd = match self.zstd.take() {
            Some(z) => z,
            None => {
                let mut z = ZEncoder::new(self.level).map_err(zstd_err("encoder setup"))?;
                for p in [
                    CParameter::WindowLog(ENCODER_WINDOW_LOG),
                    CParameter::HashLog(ENCODER_WINDOW_LOG + 1),
                    CParameter::ChainLog(ENCODER_WINDOW_LOG),
                    CParameter::ChecksumFlag(false),
                    CParameter::ContentSizeFlag(false),
                    CParameter::DictIdFlag(false),
                ] {
                    z.set_parameter(p).map_err(zstd_err("encoder setup"))?;
                }
                z
            }
        };
        Ok(self.zstd.insert(zstd))
    }

    /// Whether this connection's records have needed a zstd stream yet.
    pub fn compresses(&self) -> bool {
        self.zstd.is_some()
    }

    /// Size of the last batch record before compression (for statistics).
    pub fn last_record_len(&self) -> usize {
        self.raw.len()
    }

    /// Phase 1: validate everything and quantise; registers new series (the
    /// caller rolls them back on error). Writes nothing.
    fn prepare(&mut self, batch: &Batch, table: &SeriesTable) -> Result<(), CodecError> {
        self.new_defs.clear();
        self.cur_layout.clear();
        self.quantised.clear();
        let ts = &batch.timestamps;
        for (i, w) in ts.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(CodecError::DecreasingTimestamps {
                    index: i + 1,
                    prev: w[0],
                    ts: w[1],
                });
            }
        }
        for (index, col) in batch.columns.iter().enumerate() {
            if col.values.is_empty() {
                continue;
            }
            let out_of_range = || CodecError::ColumnOutOfRange {
                index,
                series: col.series,
                start: u64::from(col.start),
                len: col.values.len() as u64,
                timestamps: ts.len(),
            };
            let end = (col.start as usize)
                .checked_add(col.values.len())
                .ok_or_else(out_of_range)?;
            if end > ts.len() {
                return Err(out_of_range());
            }
            let len = u32::try_from(col.values.len()).map_err(|_| out_of_range())?;
            let id = col.series;
            let (wire, quantum) = match self.series.get(id as usize).copied().flatten() {
                Some(s) => (s.wire, s.state.quantum),
                None => {
                    let def = table
                        .get(id)
                        .filter(|d| d.id == id)
                        .ok_or(CodecError::UnknownSeries { id })?;
                    let idx = id as usize;
                    if self.series.len() <= idx {
                        self.series.resize(idx + 1, None);
                    }
                    let quantum = Quantum::new(def.exp);
                    let wire = self.defined;
                    self.defined += 1;
                    self.series[idx] = Some(Sent {
                        wire,
                        state: SeriesState { prev: 0, quantum },
                    });
                    self.new_defs.push((
                        id,
                        SeriesDef {
                            id: wire,
                            ..def.clone()
                        },
                    ));
                    (wire, quantum)
                }
            };
            for &v in &col.values {
                let q = if v.is_finite() {
                    quantum.quantize(v)
                } else {
                    None
                };
                let Some(q) = q else {
                    let (resource, metric, exp) = table
                        .get(id)
                        .map(|d| (d.resource.clone(), d.metric.clone(), d.exp))
                        .unwrap_or_default();
                    return Err(if v.is_finite() {
                        CodecError::QuantOverflow {
                            id,
                            resource,
                            metric,
                            value: v,
                            exp,
                        }
                    } else {
                        CodecError::NonFinite {
                            id,
                            resource,
                            metric,
                            value: v,
                        }
                    });
                };
                self.quantised.push(q);
            }
            self.cur_layout.push(LayoutEntry {
                series: wire,
                agent: id,
                start: col.start,
                len,
            });
        }
        Ok(())
    }

    /// Phase 2: write the record into `self.raw` and commit the state.
    fn write_record(&mut self, batch: &Batch) {
        let raw = &mut self.raw;
        raw.clear();
        let n_ts = batch.timestamps.len();
        let same_layout =
            matches!(&self.layout, Some((n, l)) if *n == n_ts && *l == self.cur_layout);
        let seq_delta = batch.seq.wrapping_sub(self.prev_seq.wrapping_add(1));
        let mut flags = 0;
        if !self.new_defs.is_empty() {
            flags |= FLAG_SERIES;
        }
        if !same_layout {
            flags |= FLAG_LAYOUT;
        }
        if seq_delta == 0 {
            flags |= FLAG_SEQ_NEXT;
        }
        raw.push(flags);
        if seq_delta != 0 {
            varint::put_i64(raw, seq_delta as i64);
        }
        self.prev_seq = batch.seq;

        let defs_start = raw.len();
        if !self.new_defs.is_empty() {
            varint::put_u64(raw, self.new_defs.len() as u64);
            for (_, def) in self.new_defs.drain(..) {
                varint::put_u64(raw, u64::from(def.id));
                varint::put_i64(raw, i64::from(def.exp));
                varint::put_u64(raw, def.resource.len() as u64);
                raw.extend_from_slice(def.resource.as_bytes());
                varint::put_u64(raw, def.metric.len() as u64);
                raw.extend_from_slice(def.metric.as_bytes());
            }
        }
        self.defs_len = raw.len() - defs_start;

        if !same_layout {
            varint::put_u64(raw, n_ts as u64);
            varint::put_u64(raw, self.cur_layout.len() as u64);
            let mut prev = 0i64;
            for e in &self.cur_layout {
                varint::put_i64(raw, i64::from(e.series) - prev);
                prev = i64::from(e.series);
                varint::put_u64(raw, u64::from(e.start));
                varint::put_u64(raw, u64::from(e.len));
            }
            match &mut self.layout {
                Some((n, stored)) => {
                    *n = n_ts;
                    std::mem::swap(stored, &mut self.cur_layout);
                }
                None => self.layout = Some((n_ts, std::mem::take(&mut self.cur_layout))),
            }
        }

        for &t in &batch.timestamps {
            let dt = t.wrapping_sub(self.prev_ts);
            varint::put_i64(raw, dt.wrapping_sub(self.prev_dt));
            self.prev_dt = if self.have_ts { dt } else { 0 };
            self.prev_ts = t;
            self.have_ts = true;
        }

        // The committed layout is the one we just validated (same or swapped in).
        let layout = match &self.layout {
            Some((_, l)) => l.as_slice(),
            None => &[],
        };
        let nb = layout.len().div_ceil(8);
        if !same_layout {
            self.prev_bitmap.clear();
            self.prev_bitmap.resize(nb, 0);
        }
        let (bitmap, vals) = (&mut self.bitmap, &mut self.values);
        bitmap.clear();
        bitmap.resize(nb, 0);
        vals.clear();
        let mut qi = 0;
        for (i, e) in layout.iter().enumerate() {
            let n = e.len as usize;
            let qs = &self.quantised[qi..qi + n];
            qi += n;
            let Some(Some(Sent { state, .. })) = self.series.get_mut(e.agent as usize) else {
                continue; // registered in prepare()
            };
            let mark = vals.len();
            let mut changed = false;
            for &q in qs {
                let d = q.wrapping_sub(state.prev);
                changed |= d != 0;
                varint::put_i64(vals, d);
                state.prev = q;
            }
            if changed {
                bitmap[i / 8] |= 1 << (i % 8);
            } else {
                vals.truncate(mark);
            }
        }
        let index_at = raw.len();
        raw.resize(index_at + nb.div_ceil(8), 0);
        for (j, (b, prev)) in bitmap.iter().zip(self.prev_bitmap.iter_mut()).enumerate() {
            if b != prev {
                raw[index_at + j / 8] |= 1 << (j % 8);
                raw.push(b ^ *prev);
                *prev = *b;
            }
        }
        raw.extend_from_slice(vals);
    }
}
