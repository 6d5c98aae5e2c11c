//! The batch codec: a per-connection [`BatchEncoder`] / [`BatchDecoder`] pair.
//!
//! All cross-batch state (series dictionary, previous values, previous
//! timestamp, previous column layout, the zstd window) lives in the encoder
//! and decoder objects, never in the batches, so a batch held in the agent's
//! spool can be re-encoded by a fresh encoder after a reconnect.
//!
//! # Wire format
//!
//! One [`BatchEncoder::encode`] call produces one *payload* (the body of a
//! `Frame::Batch`). The payloads of a connection are consecutive pieces of a
//! single zstd stream (one zstd frame that is never ended, window log
//! [`WINDOW_LOG`]); each payload ends with a zstd flush, so it decompresses
//! completely on arrival, and later batches reuse the earlier ones as zstd
//! history. Decompressed, a payload is one *batch record*:
//!
//! ```text
//! record  = flags:u8  [seq]  [series]  [layout]  timestamps  values
//! flags   = 0x01 SERIES   new series definitions follow
//!         | 0x02 LAYOUT   a column layout follows; otherwise the previous
//!                         record's layout (timestamp count and columns) is reused
//!         | 0x04 SEQ_NEXT seq = prev_seq + 1 and the seq field is absent
//!           other bits must be zero
//! seq     = zz(seq - (prev_seq + 1))                         (prev_seq starts at 0)
//! series  = n:uv  n × { id:uv  zz(exp)  len:uv resource  len:uv metric }   (UTF-8)
//! layout  = n_timestamps:uv  n_columns:uv
//!           n_columns × { zz(series - prev_series)  start:uv  len:uv }   (len ≥ 1)
//! timestamps = n_timestamps × zz(dt - prev_dt)   dt = ts - prev_ts   (delta of delta)
//! values  = index: ceil(nb / 8) bytes, bit j (LSB first) = byte j of the change
//!                  bitmap differs from the previous record's   (nb = ceil(n_columns / 8))
//!           for each set bit j, one byte: bitmap[j] XOR prev_bitmap[j]
//!           for each column i whose change bit (bitmap[i / 8] bit i % 8) is set,
//!                  len × zz(q - prev_q[series])
//! ```
//!
//! `uv` is an unsigned LEB128 varint, `zz(x)` a zigzag-mapped varint (see
//! [`crate::varint`]); all delta arithmetic wraps in 64 bits. `prev_ts` and
//! `prev_dt` carry over from batch to batch (both start at 0, and the first
//! timestamp of a connection does not count as an interval). `q` is the
//! value quantised by its series' `exp` ([`quantize`]); `prev_q` of a series
//! starts at 0 and carries over across batches. A column whose deltas are
//! all zero (the value did not change) has its change bit clear and costs no
//! value bytes. The change bitmap itself is sent as a difference from the
//! previous record's (all zero after a LAYOUT), so when the same series
//! change as last time it costs only its index bytes. In the steady state of
//! the default configuration (same series, one timestamp per batch) a record
//! is the flags byte, one timestamp byte, the bitmap index, and the deltas of
//! the values that changed.
//!
//! # Bad input
//!
//! The decoder returns a [`CodecError`] for every malformed payload and never
//! panics. It decompresses into a buffer capped at
//! [`Limits::max_batch_bytes`], refuses zstd windows above [`WINDOW_LOG`],
//! and checks every count read from the wire against its limit, and against
//! the bytes left where each item takes at least one byte, before allocating
//! for it (the values of unchanged columns take no bytes; they are bounded by
//! [`Limits::max_readings`]). A record must be consumed exactly. Payloads
//! must be decoded in order by the connection's one decoder. After an error
//! the decoder refuses further payloads (the connection is to be closed).

use std::collections::HashMap;
use std::io;

use thiserror::Error;
use zstd::stream::raw::{
    CParameter, DParameter, Decoder as ZDecoder, Encoder as ZEncoder, InBuffer, Operation,
    OutBuffer,
};

use crate::batch::{Batch, Column, SeriesDef, SeriesId, SeriesTable};
use crate::varint::{self, Reader, VarintError};

/// zstd window log used by encoders and the maximum accepted by decoders
/// (1 MiB window).
pub const WINDOW_LOG: u32 = 20;

/// A reasonable default zstd level for telemetry.
pub const DEFAULT_LEVEL: i32 = 3;

const FLAG_SERIES: u8 = 0x01;
const FLAG_LAYOUT: u8 = 0x02;
const FLAG_SEQ_NEXT: u8 = 0x04;
const KNOWN_FLAGS: u8 = FLAG_SERIES | FLAG_LAYOUT | FLAG_SEQ_NEXT;

/// Smallest growth step of the decoder's decompression buffer.
const MIN_CHUNK: usize = 16 * 1024;

/// Smallest encoded size of a series definition (id, exp, two lengths).
const MIN_DEF_BYTES: usize = 4;
/// Smallest encoded size of a layout column (series, start, len).
const MIN_COLUMN_BYTES: usize = 3;

/// Decoder limits; all are per connection or per batch as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed size of one batch record.
    pub max_batch_bytes: usize,
    /// Series defined on one connection.
    pub max_series: usize,
    /// Readings (values) in one batch.
    pub max_readings: usize,
    /// Timestamps in one batch.
    pub max_timestamps: usize,
    /// Bytes in a series' resource or metric name.
    pub max_name_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_bytes: 4 << 20,
            max_series: 100_000,
            max_readings: 1_000_000,
            max_timestamps: 10_000,
            max_name_len: 512,
        }
    }
}

/// Everything that can go wrong encoding or decoding a batch.
#[derive(Debug, Error)]
pub enum CodecError {
    // ---- encoder side: the batch is not encodable ----
    #[error("series {id} is not in the agent's series table")]
    UnknownSeries { id: SeriesId },
    #[error("series {id} ({resource} {metric}): value {value} is not finite")]
    NonFinite {
        id: SeriesId,
        resource: String,
        metric: String,
        value: f64,
    },
    #[error(
        "series {id} ({resource} {metric}): value {value} quantised with exp {exp} overflows i64"
    )]
    QuantOverflow {
        id: SeriesId,
        resource: String,
        metric: String,
        value: f64,
        exp: i8,
    },
    #[error("timestamp {index} ({ts}) is earlier than the one before it ({prev})")]
    DecreasingTimestamps { index: usize, prev: i64, ts: i64 },
    #[error("column {index} of series {series}: start {start} + {len} values exceeds the {timestamps} timestamps of the batch")]
    ColumnOutOfRange {
        index: usize,
        series: SeriesId,
        start: u64,
        len: u64,
        timestamps: usize,
    },

    // ---- zstd ----
    #[error("zstd {op} failed: {source}")]
    Zstd {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("zstd made no progress decompressing the payload at input byte {offset} of {len}")]
    DecompressStalled { offset: usize, len: usize },

    // ---- decoder side: the payload is malformed or over a limit ----
    #[error("empty batch payload")]
    EmptyPayload,
    #[error("decompressed batch exceeds the limit of {limit} bytes")]
    BatchTooLarge { limit: usize },
    #[error("{what}: {count} exceeds the limit of {limit}")]
    LimitExceeded {
        what: &'static str,
        count: u64,
        limit: usize,
    },
    #[error("{what}: count {count} cannot fit in the {left} bytes left")]
    CountExceedsInput {
        what: &'static str,
        count: u64,
        left: usize,
    },
    #[error("truncated batch: input ended reading {what} at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    #[error("varint overflow reading {what} at byte {offset}")]
    VarintOverflow { what: &'static str, offset: usize },
    #[error("{what} {value} is out of range")]
    OutOfRange { what: &'static str, value: i128 },
    #[error("unknown batch flags {flags:#04x}")]
    UnknownFlags { flags: u8 },
    #[error("batch reuses the previous column layout but none was sent on this connection")]
    NoPreviousLayout,
    #[error("series {id} is used but was never defined on this connection")]
    UndefinedSeries { id: SeriesId },
    #[error("series {id} redefined: was {old}, now {new}")]
    SeriesRedefined {
        id: SeriesId,
        old: String,
        new: String,
    },
    #[error("{what} of series {id} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str, id: SeriesId },
    #[error("column {index} of series {series} is empty")]
    EmptyColumn { index: usize, series: SeriesId },
    #[error("{what} has bits set past its {bits} bits")]
    BitmapPadding { what: &'static str, bits: usize },
    #[error("{n} bytes of trailing garbage after the batch")]
    TrailingBytes { n: usize },
    #[error("codec unusable after an earlier error")]
    Poisoned,
}

fn zstd_err(op: &'static str) -> impl FnOnce(io::Error) -> CodecError {
    move |source| CodecError::Zstd { op, source }
}

// ---------------------------------------------------------------------------
// Quantisation

/// 10^k for k in 0..=22 are exact in f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn pow10(k: u8) -> f64 {
    match POW10.get(usize::from(k)) {
        Some(p) => *p,
        // Correctly rounded, the same on every platform.
        None => format!("1e{k}").parse().unwrap_or(f64::INFINITY),
    }
}

/// The wire quantum of a series: 10^exp, applied so that negative exps
/// multiply by an exact power of ten.
#[derive(Debug, Clone, Copy)]
struct Quantum {
    scale: f64,
    negative: bool,
}

impl Quantum {
    fn new(exp: i8) -> Self {
        Quantum {
            scale: pow10(exp.unsigned_abs()),
            negative: exp < 0,
        }
    }

    /// `round(v / 10^exp)`, or `None` when not finite or outside i64.
    #[inline]
    fn quantize(self, v: f64) -> Option<i64> {
        let x = if self.negative {
            v * self.scale
        } else {
            v / self.scale
        };
        let r = x.round();
        // -2^63 is representable; 2^63 is the first value out of range. NaN fails both.
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&r) {
            Some(r as i64)
        } else {
            None
        }
    }

    #[inline]
    fn dequantize(self, q: i64) -> f64 {
        let x = q as f64;
        if self.negative {
            x / self.scale
        } else {
            x * self.scale
        }
    }
}

/// The integer a value travels as: `round(value / 10^exp)`; `None` when the
/// value is not finite or the result does not fit in an `i64`.
pub fn quantize(value: f64, exp: i8) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    Quantum::new(exp).quantize(value)
}

/// The value a decoder reconstructs from the integer `q`: `q * 10^exp`.
pub fn dequantize(q: i64, exp: i8) -> f64 {
    Quantum::new(exp).dequantize(q)
}

// ---------------------------------------------------------------------------
// Encoder

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LayoutEntry {
    series: SeriesId,
    start: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy)]
struct EncSeries {
    prev: i64,
    quantum: Quantum,
}

/// Encodes the batches of one connection. See the module docs for the wire.
pub struct BatchEncoder {
    zstd: ZEncoder<'static>,
    /// Indexed by series id; `Some` once the series was sent on this connection.
    series: Vec<Option<EncSeries>>,
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
    new_defs: Vec<SeriesDef>,
    raw: Vec<u8>,
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
    /// A fresh encoder for a new connection, compressing at zstd `level`.
    pub fn new(level: i32) -> Result<Self, CodecError> {
        let mut zstd = ZEncoder::new(level).map_err(zstd_err("encoder setup"))?;
        for p in [
            CParameter::WindowLog(WINDOW_LOG),
            CParameter::ChecksumFlag(false),
            CParameter::ContentSizeFlag(false),
            CParameter::DictIdFlag(false),
        ] {
            zstd.set_parameter(p).map_err(zstd_err("encoder setup"))?;
        }
        Ok(BatchEncoder {
            zstd,
            series: Vec::new(),
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
            for def in self.new_defs.drain(..) {
                if let Some(slot) = self.series.get_mut(def.id as usize) {
                    *slot = None;
                }
            }
            return Err(e);
        }
        self.write_record(batch);
        let mark = out.len();
        if let Err(e) = compress(&mut self.zstd, &self.raw, out) {
            self.poisoned = true;
            out.truncate(mark);
            return Err(e);
        }
        Ok(())
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
            let quantum = match self.series.get(id as usize).copied().flatten() {
                Some(s) => s.quantum,
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
                    self.series[idx] = Some(EncSeries { prev: 0, quantum });
                    self.new_defs.push(def.clone());
                    quantum
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
                series: id,
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

        if !self.new_defs.is_empty() {
            varint::put_u64(raw, self.new_defs.len() as u64);
            for def in self.new_defs.drain(..) {
                varint::put_u64(raw, u64::from(def.id));
                varint::put_i64(raw, i64::from(def.exp));
                varint::put_u64(raw, def.resource.len() as u64);
                raw.extend_from_slice(def.resource.as_bytes());
                varint::put_u64(raw, def.metric.len() as u64);
                raw.extend_from_slice(def.metric.as_bytes());
            }
        }

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
            let Some(Some(state)) = self.series.get_mut(e.series as usize) else {
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

/// Feeds `raw` to the streaming compressor and flushes, appending to `out`.
fn compress(z: &mut ZEncoder<'static>, raw: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut input = InBuffer::around(raw);
    out.reserve(raw.len() + raw.len() / 128 + 64);
    while input.pos() < raw.len() {
        if out.capacity() - out.len() < 64 {
            out.reserve(raw.len() / 2 + 64);
        }
        let pos = out.len();
        let mut ob = OutBuffer::around_pos(out, pos);
        z.run(&mut input, &mut ob).map_err(zstd_err("compress"))?;
    }
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(raw.len() / 2 + 64);
        }
        let pos = out.len();
        let mut ob = OutBuffer::around_pos(out, pos);
        let left = z.flush(&mut ob).map_err(zstd_err("flush"))?;
        if left == 0 {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------
// Decoder

/// One decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The batch, values dequantised.
    pub batch: Batch,
    /// Series defined by this payload, in wire order.
    pub new_series: Vec<SeriesDef>,
}

#[derive(Debug, Clone, Copy)]
struct DecSeries {
    prev: i64,
    quantum: Quantum,
}

#[derive(Debug, Clone, Copy)]
struct DecColumn {
    series: SeriesId,
    slot: usize,
    start: u32,
    len: u32,
}

/// Decodes the batches of one connection. See the module docs for the wire
/// and the limits.
pub struct BatchDecoder {
    limits: Limits,
    zstd: ZDecoder<'static>,
    /// Decompression buffer; its `len()` is the allocated, zeroed size, never
    /// above `limits.max_batch_bytes`.
    buf: Vec<u8>,
    defs: Vec<SeriesDef>,
    states: Vec<DecSeries>,
    index: HashMap<SeriesId, usize>,
    prev_seq: u64,
    prev_ts: i64,
    prev_dt: i64,
    have_ts: bool,
    have_layout: bool,
    layout_ts: usize,
    layout: Vec<DecColumn>,
    prev_bitmap: Vec<u8>,
    poisoned: bool,
}

impl std::fmt::Debug for BatchDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchDecoder")
            .field("limits", &self.limits)
            .field("series", &self.defs.len())
            .field("prev_seq", &self.prev_seq)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Reader with error context.
struct Wire<'a>(Reader<'a>);

impl<'a> Wire<'a> {
    fn err(&self, e: VarintError, what: &'static str) -> CodecError {
        let offset = self.0.pos();
        match e {
            VarintError::Truncated => CodecError::Truncated { what, offset },
            VarintError::Overflow => CodecError::VarintOverflow { what, offset },
        }
    }
    #[inline]
    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        self.0.u8().map_err(|e| self.err(e, what))
    }
    #[inline]
    fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        self.0.u64().map_err(|e| self.err(e, what))
    }
    #[inline]
    fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        self.0.i64().map_err(|e| self.err(e, what))
    }
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        self.0.bytes(n).map_err(|e| self.err(e, what))
    }
    fn left(&self) -> usize {
        self.0.remaining()
    }
    /// A count that must be ≤ `limit` and fit in the bytes left at
    /// `min_bytes` each.
    fn count(
        &mut self,
        what: &'static str,
        limit: usize,
        min_bytes: usize,
    ) -> Result<usize, CodecError> {
        let n = self.u64(what)?;
        if n > limit as u64 {
            return Err(CodecError::LimitExceeded {
                what,
                count: n,
                limit,
            });
        }
        let left = self.left();
        if n.saturating_mul(min_bytes as u64) > left as u64 {
            return Err(CodecError::CountExceedsInput {
                what,
                count: n,
                left,
            });
        }
        Ok(n as usize)
    }
}

impl BatchDecoder {
    /// A fresh decoder for a new connection.
    pub fn new(limits: Limits) -> Result<Self, CodecError> {
        let mut zstd = ZDecoder::new().map_err(zstd_err("decoder setup"))?;
        zstd.set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
            .map_err(zstd_err("decoder setup"))?;
        Ok(BatchDecoder {
            limits,
            zstd,
            buf: Vec::new(),
            defs: Vec::new(),
            states: Vec::new(),
            index: HashMap::new(),
            prev_seq: 0,
            prev_ts: 0,
            prev_dt: 0,
            have_ts: false,
            have_layout: false,
            layout_ts: 0,
            layout: Vec::new(),
            prev_bitmap: Vec::new(),
            poisoned: false,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The definition of series `id`, if this connection defined it.
    pub fn series(&self, id: SeriesId) -> Option<&SeriesDef> {
        self.index.get(&id).and_then(|&i| self.defs.get(i))
    }

    /// Number of series defined on this connection.
    pub fn series_count(&self) -> usize {
        self.defs.len()
    }

    /// Decodes the next payload of the connection. After an error every
    /// further call returns [`CodecError::Poisoned`].
    pub fn decode(&mut self, payload: &[u8]) -> Result<Decoded, CodecError> {
        if self.poisoned {
            return Err(CodecError::Poisoned);
        }
        let r = self.decompress(payload).and_then(|len| {
            let buf = std::mem::take(&mut self.buf);
            let r = self.parse(buf.get(..len).unwrap_or_default());
            self.buf = buf;
            r
        });
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    /// Decompresses `payload` into `self.buf`, returning the record length.
    fn decompress(&mut self, payload: &[u8]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let max = self.limits.max_batch_bytes;
        let mut input = InBuffer::around(payload);
        let mut filled = 0usize;
        loop {
            if filled == self.buf.len() {
                if filled >= max {
                    // At the limit: one more byte of output is one too many.
                    let mut probe = [0u8; 1];
                    let mut ob = OutBuffer::around(&mut probe[..]);
                    self.zstd
                        .run(&mut input, &mut ob)
                        .map_err(zstd_err("decompress"))?;
                    if ob.pos() > 0 || input.pos() < payload.len() {
                        return Err(CodecError::BatchTooLarge { limit: max });
                    }
                    return Ok(filled);
                }
                let grow = self.buf.len().max(MIN_CHUNK).min(max - self.buf.len());
                self.buf.resize(self.buf.len() + grow, 0);
            }
            let before = input.pos();
            let Some(space) = self.buf.get_mut(filled..) else {
                return Err(CodecError::BatchTooLarge { limit: max });
            };
            let space_len = space.len();
            let mut ob = OutBuffer::around(space);
            self.zstd
                .run(&mut input, &mut ob)
                .map_err(zstd_err("decompress"))?;
            let n = ob.pos();
            filled += n;
            if input.pos() == payload.len() && n < space_len {
                return Ok(filled);
            }
            if n == 0 && input.pos() == before {
                return Err(CodecError::DecompressStalled {
                    offset: before,
                    len: payload.len(),
                });
            }
        }
    }

    fn parse(&mut self, raw: &[u8]) -> Result<Decoded, CodecError> {
        let limits = self.limits;
        let mut w = Wire(Reader::new(raw));
        let flags = w.u8("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(CodecError::UnknownFlags { flags });
        }
        let d = if flags & FLAG_SEQ_NEXT != 0 {
            0
        } else {
            w.i64("seq")?
        };
        let seq = self.prev_seq.wrapping_add(1).wrapping_add(d as u64);

        // Series definitions.
        let mut new_series = Vec::new();
        if flags & FLAG_SERIES != 0 {
            let room = limits.max_series.saturating_sub(self.defs.len());
            let n = w.count("series definitions", room, MIN_DEF_BYTES)?;
            new_series.reserve(n);
            for _ in 0..n {
                let def = read_def(&mut w, limits.max_name_len)?;
                if let Some(&i) = self.index.get(&def.id) {
                    match self.defs.get(i) {
                        Some(old) if *old == def => continue,
                        old => {
                            return Err(CodecError::SeriesRedefined {
                                id: def.id,
                                old: old.map(describe).unwrap_or_default(),
                                new: describe(&def),
                            })
                        }
                    }
                }
                // `room` bounded n, so this cannot pass max_series.
                self.index.insert(def.id, self.defs.len());
                self.states.push(DecSeries {
                    prev: 0,
                    quantum: Quantum::new(def.exp),
                });
                self.defs.push(def.clone());
                new_series.push(def);
            }
        }

        // Column layout.
        if flags & FLAG_LAYOUT != 0 {
            let n_ts = w.count("timestamps", limits.max_timestamps, 1)?;
            let n_cols = w.count("columns", limits.max_readings, MIN_COLUMN_BYTES)?;
            self.layout.clear();
            self.layout.reserve(n_cols);
            let mut readings = 0u64;
            let mut prev = 0i64;
            for index in 0..n_cols {
                let d = w.i64("column series")?;
                let id = prev.wrapping_add(d);
                let series = u32::try_from(id).map_err(|_| CodecError::OutOfRange {
                    what: "column series id",
                    value: i128::from(prev) + i128::from(d),
                })?;
                prev = id;
                let start = w.u64("column start")?;
                let len = w.u64("column length")?;
                let slot = *self
                    .index
                    .get(&series)
                    .ok_or(CodecError::UndefinedSeries { id: series })?;
                if len == 0 {
                    return Err(CodecError::EmptyColumn { index, series });
                }
                if start.saturating_add(len) > n_ts as u64 {
                    return Err(CodecError::ColumnOutOfRange {
                        index,
                        series,
                        start,
                        len,
                        timestamps: n_ts,
                    });
                }
                readings += len;
                if readings > limits.max_readings as u64 {
                    return Err(CodecError::LimitExceeded {
                        what: "readings",
                        count: readings,
                        limit: limits.max_readings,
                    });
                }
                let to_u32 = |what, v: u64| {
                    u32::try_from(v).map_err(|_| CodecError::OutOfRange {
                        what,
                        value: i128::from(v),
                    })
                };
                self.layout.push(DecColumn {
                    series,
                    slot,
                    start: to_u32("column start", start)?,
                    len: to_u32("column length", len)?,
                });
            }
            self.layout_ts = n_ts;
            self.have_layout = true;
            self.prev_bitmap.clear();
            self.prev_bitmap.resize(n_cols.div_ceil(8), 0);
        } else if !self.have_layout {
            return Err(CodecError::NoPreviousLayout);
        }

        // Timestamps.
        let n_ts = self.layout_ts;
        let left = w.left();
        if n_ts > left {
            return Err(CodecError::CountExceedsInput {
                what: "timestamps",
                count: n_ts as u64,
                left,
            });
        }
        let mut timestamps = Vec::with_capacity(n_ts);
        for index in 0..n_ts {
            let dd = w.i64("timestamp")?;
            let dt = self.prev_dt.wrapping_add(dd);
            let ts = self.prev_ts.wrapping_add(dt);
            if index > 0 && ts < self.prev_ts {
                return Err(CodecError::DecreasingTimestamps {
                    index,
                    prev: self.prev_ts,
                    ts,
                });
            }
            self.prev_dt = if self.have_ts { dt } else { 0 };
            self.prev_ts = ts;
            self.have_ts = true;
            timestamps.push(ts);
        }

        // Values.
        let nb = self.prev_bitmap.len();
        let index = w.bytes(nb.div_ceil(8), "change bitmap index")?;
        if padding_set(index, nb) {
            return Err(CodecError::BitmapPadding {
                what: "change bitmap index",
                bits: nb,
            });
        }
        for (j, b) in self.prev_bitmap.iter_mut().enumerate() {
            if index.get(j / 8).is_some_and(|x| x & (1 << (j % 8)) != 0) {
                *b ^= w.u8("change bitmap")?;
            }
        }
        let bitmap = self.prev_bitmap.as_slice();
        if padding_set(bitmap, self.layout.len()) {
            return Err(CodecError::BitmapPadding {
                what: "change bitmap",
                bits: self.layout.len(),
            });
        }
        let mut columns = Vec::with_capacity(self.layout.len());
        for (i, c) in self.layout.iter().enumerate() {
            let changed = bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
            let Some(state) = self.states.get_mut(c.slot) else {
                return Err(CodecError::UndefinedSeries { id: c.series });
            };
            let n = c.len as usize;
            let mut values = Vec::with_capacity(n);
            if changed {
                if n > w.left() {
                    return Err(CodecError::CountExceedsInput {
                        what: "column values",
                        count: n as u64,
                        left: w.left(),
                    });
                }
                for _ in 0..n {
                    let d = w.i64("value")?;
                    state.prev = state.prev.wrapping_add(d);
                    values.push(state.quantum.dequantize(state.prev));
                }
            } else {
                values.resize(n, state.quantum.dequantize(state.prev));
            }
            columns.push(Column {
                series: c.series,
                start: c.start,
                values,
            });
        }
        if w.left() != 0 {
            return Err(CodecError::TrailingBytes { n: w.left() });
        }
        self.prev_seq = seq;
        Ok(Decoded {
            batch: Batch {
                seq,
                timestamps,
                columns,
            },
            new_series,
        })
    }
}

/// Whether `bits` has any bit set at or past position `n`.
fn padding_set(bits: &[u8], n: usize) -> bool {
    let rem = n % 8;
    rem != 0 && bits.last().is_some_and(|b| b >> rem != 0)
}

fn describe(d: &SeriesDef) -> String {
    format!("{} {} exp {}", d.resource, d.metric, d.exp)
}

fn read_def(w: &mut Wire<'_>, max_name: usize) -> Result<SeriesDef, CodecError> {
    let id = w.u64("series id")?;
    let id = u32::try_from(id).map_err(|_| CodecError::OutOfRange {
        what: "series id",
        value: i128::from(id),
    })?;
    let exp = w.i64("series exp")?;
    let exp = i8::try_from(exp).map_err(|_| CodecError::OutOfRange {
        what: "series exp",
        value: i128::from(exp),
    })?;
    let resource = read_name(w, "resource name", id, max_name)?;
    let metric = read_name(w, "metric name", id, max_name)?;
    Ok(SeriesDef {
        id,
        resource,
        metric,
        exp,
    })
}

fn read_name(
    w: &mut Wire<'_>,
    what: &'static str,
    id: SeriesId,
    max: usize,
) -> Result<String, CodecError> {
    let n = w.count(what, max, 1)?;
    let bytes = w.bytes(n, what)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| CodecError::InvalidUtf8 { what, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{self, Metric};
    use proptest::prelude::*;
    use std::time::Instant;

    // ---- helpers -------------------------------------------------------

    fn pair() -> (BatchEncoder, BatchDecoder) {
        (
            BatchEncoder::new(DEFAULT_LEVEL).unwrap(),
            BatchDecoder::new(Limits::default()).unwrap(),
        )
    }

    fn encode(enc: &mut BatchEncoder, b: &Batch, t: &SeriesTable) -> Vec<u8> {
        let mut out = Vec::new();
        enc.encode(b, t, &mut out).unwrap();
        out
    }

    /// The batch a decoder must produce: values quantised and back.
    fn quantised(b: &Batch, t: &SeriesTable) -> Batch {
        let mut b = b.clone();
        b.columns.retain(|c| !c.values.is_empty());
        for c in &mut b.columns {
            let exp = t.get(c.series).unwrap().exp;
            for v in &mut c.values {
                *v = dequantize(quantize(*v, exp).unwrap(), exp);
            }
        }
        b
    }

    /// Sends hand-written batch records as a connection's zstd stream.
    struct RawSender(ZEncoder<'static>);

    impl RawSender {
        fn new() -> Self {
            let mut z = ZEncoder::new(3).unwrap();
            z.set_parameter(CParameter::WindowLog(WINDOW_LOG)).unwrap();
            RawSender(z)
        }
        fn send(&mut self, record: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            compress(&mut self.0, record, &mut out).unwrap();
            out
        }
    }

    /// A record header: flags, seq delta 0 (seq = prev + 1).
    fn record(flags: u8) -> Vec<u8> {
        vec![flags, 0]
    }

    fn put_def(r: &mut Vec<u8>, id: u64, exp: i64, resource: &str, metric: &str) {
        varint::put_u64(r, id);
        varint::put_i64(r, exp);
        varint::put_u64(r, resource.len() as u64);
        r.extend_from_slice(resource.as_bytes());
        varint::put_u64(r, metric.len() as u64);
        r.extend_from_slice(metric.as_bytes());
    }

    /// A valid first record: series 0 (exp 0), one timestamp, one column,
    /// value 5.
    fn valid_first() -> Vec<u8> {
        let mut r = record(FLAG_SERIES | FLAG_LAYOUT);
        varint::put_u64(&mut r, 1);
        put_def(&mut r, 0, 0, "cpu", "cpu.cores");
        r.extend_from_slice(&[1, 1, 0, 0, 1]); // 1 ts, 1 column {series +0, start 0, len 1}
        varint::put_i64(&mut r, 1_700_000_000_000); // timestamp
        r.extend_from_slice(&[1, 1]); // bitmap index: byte 0 differs; xor: column 0 changed
        varint::put_i64(&mut r, 5);
        r
    }

    fn decode_raw(records: &[Vec<u8>]) -> Result<Decoded, CodecError> {
        decode_raw_with(Limits::default(), records)
    }

    fn decode_raw_with(limits: Limits, records: &[Vec<u8>]) -> Result<Decoded, CodecError> {
        let mut tx = RawSender::new();
        let mut dec = BatchDecoder::new(limits).unwrap();
        let mut last = None;
        for r in records {
            last = Some(dec.decode(&tx.send(r))?);
        }
        Ok(last.expect("at least one record"))
    }

    // ---- round trips ---------------------------------------------------

    #[test]
    fn codecs_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<BatchEncoder>();
        assert_send::<BatchDecoder>();
        assert_send::<CodecError>();
    }

    #[test]
    fn hand_written_record_decodes() {
        let d = decode_raw(&[valid_first()]).unwrap();
        assert_eq!(d.batch.seq, 1);
        assert_eq!(d.batch.timestamps, [1_700_000_000_000]);
        assert_eq!(d.batch.columns[0].values, [5.0]);
        assert_eq!(d.new_series[0].metric, "cpu.cores");
    }

    #[test]
    fn quantisation() {
        assert_eq!(quantize(0.123456, -5), Some(12346));
        assert_eq!(dequantize(12346, -5), 0.12346);
        assert_eq!(quantize(1234.0, 2), Some(12));
        assert_eq!(dequantize(12, 2), 1200.0);
        assert_eq!(quantize(-2.5, 0), Some(-3));
        assert_eq!(quantize(9.3e18, 0), None);
        assert_eq!(quantize(i64::MIN as f64, 0), Some(i64::MIN));
        assert_eq!(quantize(f64::NAN, 0), None);
        assert_eq!(quantize(1e-200, -128), Some(0));
        assert_eq!(quantize(1.0, -128), None);
        assert_eq!(quantize(1e100, 127), Some(0));
        assert_eq!(quantize(1e300, 127), None);
        // Integers up to 2^53 travel exactly at exp 0.
        let big = (1u64 << 53) as f64;
        assert_eq!(dequantize(quantize(big, 0).unwrap(), 0), big);
    }

    #[test]
    fn sequence_with_series_appearing_mid_stream_and_reconnect() {
        let mut t = SeriesTable::new();
        let a = t.intern("memory", metric::MEMORY_USED.name, 0);
        let b = t.intern("cpu", metric::CPU_UTILIZATION.name, -5);
        let mut batches = Vec::new();
        for i in 0..6i64 {
            let mut columns = vec![
                Column {
                    series: a,
                    start: 0,
                    values: vec![1e9 + i as f64 * 4096.0, 1e9],
                },
                Column {
                    series: b,
                    start: 0,
                    values: vec![0.25, 0.5 + i as f64 / 1000.0],
                },
            ];
            if i >= 3 {
                let c = t.intern("nic/eth0", metric::NIC_RX_BYTES.name, 0);
                columns.push(Column {
                    series: c,
                    start: 1,
                    values: vec![i as f64],
                });
            }
            batches.push(Batch {
                seq: 10 + i as u64,
                timestamps: vec![1_700_000_000_000 + 2000 * i, 1_700_000_001_000 + 2000 * i],
                columns,
            });
        }
        // Two connections: the second re-encodes everything after a reconnect.
        for _ in 0..2 {
            let (mut enc, mut dec) = pair();
            for (i, batch) in batches.iter().enumerate() {
                let d = dec.decode(&encode(&mut enc, batch, &t)).unwrap();
                assert_eq!(d.batch, quantised(batch, &t), "batch {i}");
                let new: Vec<_> = d.new_series.iter().map(|s| s.id).collect();
                match i {
                    0 => assert_eq!(new, [a, b]),
                    3 => assert_eq!(new, [2]),
                    _ => assert!(new.is_empty()),
                }
            }
            assert_eq!(dec.series(2), t.get(2));
            assert_eq!(dec.series(3), None);
        }
    }

    #[test]
    fn unchanged_layout_is_not_resent() {
        let mut t = SeriesTable::new();
        let s = t.intern("host", metric::STATUS_UP.name, 0);
        let mk = |seq: u64, n: usize| Batch {
            seq,
            timestamps: (0..n as i64).map(|i| 1000 * (seq as i64 + i)).collect(),
            columns: vec![Column {
                series: s,
                start: 0,
                values: vec![1.0; n],
            }],
        };
        let (mut enc, mut dec) = pair();
        let (mut flags, mut lens) = (Vec::new(), Vec::new());
        for (seq, n) in [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (7, 2)] {
            let b = mk(seq, n);
            let p = encode(&mut enc, &b, &t);
            flags.push(enc.raw[0]);
            lens.push(enc.last_record_len());
            assert_eq!(dec.decode(&p).unwrap().batch, b);
        }
        const N: u8 = FLAG_SEQ_NEXT;
        assert_eq!(
            flags,
            [FLAG_SERIES | FLAG_LAYOUT | N, N, N, FLAG_LAYOUT | N, N, 0],
            "layout sent only when it changes"
        );
        // Steady state record: flags, timestamp dd, bitmap index.
        assert_eq!(lens[2], 3);
    }

    #[test]
    fn clock_steps_back_between_batches() {
        let mut t = SeriesTable::new();
        let s = t.intern("host", metric::STATUS_UP.name, 0);
        let (mut enc, mut dec) = pair();
        for (seq, ts) in [(1, 5_000), (2, 3_000), (3, i64::MIN), (4, i64::MAX)] {
            let b = Batch {
                seq,
                timestamps: vec![ts],
                columns: vec![Column {
                    series: s,
                    start: 0,
                    values: vec![1.0],
                }],
            };
            assert_eq!(dec.decode(&encode(&mut enc, &b, &t)).unwrap().batch, b);
        }
    }

    fn arb_stream() -> impl Strategy<Value = (Vec<i8>, Vec<Batch>)> {
        let exps = prop::collection::vec(-8i8..=3, 1..12);
        exps.prop_flat_map(|exps| {
            let n = exps.len() as u32;
            let batch = (
                any::<u64>(),
                prop::collection::vec(0i64..5_000, 0..6),
                prop::collection::vec(
                    (
                        0..n,
                        0u32..6,
                        1usize..6,
                        prop::collection::vec(
                            prop_oneof![
                                (-1e6f64..1e6),
                                (-1_000_000_000i64..1_000_000_000).prop_map(|x| x as f64),
                                Just(0.0),
                            ],
                            5,
                        ),
                    ),
                    0..8,
                ),
                -1_000_000_000_000i64..2_000_000_000_000,
                // Follow-up batches with the same layout: (keep mask, scale).
                prop::collection::vec((any::<u8>(), -3i32..3), 0..3),
            );
            (Just(exps), prop::collection::vec(batch, 1..6))
        })
        .prop_map(|(exps, raw)| {
            let n_series = exps.len() as u32;
            let mut batches = Vec::new();
            for (bi, (seq, gaps, cols, t0, repeats)) in raw.into_iter().enumerate() {
                let mut t = t0;
                let timestamps: Vec<i64> = gaps
                    .iter()
                    .map(|g| {
                        t += g;
                        t
                    })
                    .collect();
                // Series appear over time: batch bi uses ids below a growing bound.
                let bound = (n_series * (bi as u32 + 1)).div_ceil(3).max(1);
                let mut columns: Vec<Column> = cols
                    .into_iter()
                    .filter_map(|(s, start, len, vals)| {
                        let n_ts = timestamps.len();
                        let start = (start as usize).min(n_ts);
                        let len = len.min(n_ts - start);
                        (len > 0).then(|| Column {
                            series: s % bound,
                            start: start as u32,
                            values: vals[..len].to_vec(),
                        })
                    })
                    .collect();
                columns.sort_by_key(|c| c.series);
                let first = Batch {
                    seq,
                    timestamps,
                    columns,
                };
                // Same layout again: some columns unchanged, others scaled.
                let mut prev = first.clone();
                batches.push(first);
                for (mask, scale) in repeats {
                    let mut b = prev.clone();
                    b.seq = b.seq.wrapping_add(1);
                    let shift = b.timestamps.last().map_or(0, |l| l - b.timestamps[0] + 1);
                    b.timestamps.iter_mut().for_each(|t| *t += shift);
                    for (i, c) in b.columns.iter_mut().enumerate() {
                        if mask & (1 << (i % 8)) != 0 {
                            c.values
                                .iter_mut()
                                .for_each(|v| *v = *v * f64::from(scale) + 1.5);
                        }
                    }
                    batches.push(b.clone());
                    prev = b;
                }
            }
            (exps, batches)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn round_trip_random_streams((exps, batches) in arb_stream()) {
            let mut t = SeriesTable::new();
            for (i, exp) in exps.iter().enumerate() {
                t.intern(&format!("res/{i}"), &format!("custom.m{i}"), *exp);
            }
            let (mut enc, mut dec) = pair();
            let mut defined = std::collections::HashSet::new();
            for b in &batches {
                let d = dec.decode(&encode(&mut enc, b, &t)).unwrap();
                prop_assert_eq!(&d.batch, &quantised(b, &t));
                for s in &d.new_series {
                    prop_assert!(defined.insert(s.id));
                    prop_assert_eq!(Some(s), t.get(s.id));
                }
                for c in &b.columns {
                    prop_assert!(defined.contains(&c.series));
                }
            }
        }
    }

    // ---- encoder-side errors ------------------------------------------

    #[test]
    fn encoder_rejects_unencodable_batches_and_stays_in_sync() {
        let mut t = SeriesTable::new();
        let up = t.intern("host", metric::STATUS_UP.name, 0);
        let used = t.intern("memory", metric::MEMORY_USED.name, 0);
        let col = |series, start, values: Vec<f64>| Column {
            series,
            start,
            values,
        };
        let good = |seq: u64| Batch {
            seq,
            timestamps: vec![seq as i64 * 1000],
            columns: vec![col(up, 0, vec![1.0])],
        };
        let (mut enc, mut dec) = pair();
        assert!(dec.decode(&encode(&mut enc, &good(1), &t)).is_ok());
        let bad = [
            (
                Batch {
                    seq: 2,
                    timestamps: vec![2000],
                    columns: vec![col(up, 0, vec![1.0]), col(used, 0, vec![f64::NAN])],
                },
                "not finite",
            ),
            (
                Batch {
                    seq: 2,
                    timestamps: vec![2000],
                    columns: vec![col(used, 0, vec![f64::INFINITY])],
                },
                "inf is not finite",
            ),
            (
                Batch {
                    seq: 2,
                    timestamps: vec![2000],
                    columns: vec![col(used, 0, vec![1e300])],
                },
                "overflows i64",
            ),
            (
                Batch {
                    seq: 2,
                    timestamps: vec![2000],
                    columns: vec![col(7, 0, vec![1.0])],
                },
                "series 7 is not in",
            ),
            (
                Batch {
                    seq: 2,
                    timestamps: vec![2000, 1999],
                    columns: vec![],
                },
                "earlier",
            ),
            (
                Batch {
                    seq: 2,
                    timestamps: vec![2000],
                    columns: vec![col(used, 1, vec![1.0])],
                },
                "exceeds the 1 timestamps",
            ),
        ];
        for (b, msg) in bad {
            let mut out = vec![0xaa];
            let e = enc.encode(&b, &t, &mut out).unwrap_err();
            assert!(e.to_string().contains(msg), "{e} / {msg}");
            assert_eq!(out, [0xaa], "nothing appended on error");
        }
        let e = enc
            .encode(
                &Batch {
                    seq: 2,
                    timestamps: vec![2000],
                    columns: vec![col(used, 0, vec![f64::NAN])],
                },
                &t,
                &mut Vec::new(),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "series 1 (memory memory.used): value NaN is not finite"
        );
        // The failed batches left no trace: `used` is still new, layout intact.
        let next = Batch {
            seq: 2,
            timestamps: vec![2000],
            columns: vec![col(up, 0, vec![1.0]), col(used, 0, vec![3.0])],
        };
        let d = dec.decode(&encode(&mut enc, &next, &t)).unwrap();
        assert_eq!(d.batch, next);
        assert_eq!(d.new_series.len(), 1);
    }

    // ---- decoder: bad input -------------------------------------------

    fn expect_err(r: Result<Decoded, CodecError>, needle: &str) -> CodecError {
        match r {
            Ok(d) => panic!("decoded {d:?}, wanted an error containing {needle:?}"),
            Err(e) => {
                assert!(e.to_string().contains(needle), "{e:?} lacks {needle:?}");
                e
            }
        }
    }

    #[test]
    fn zstd_bomb_of_real_zeros_hits_the_limit_quickly() {
        // 100 MB of zeros, compressed the way a (malicious) peer legally could.
        let mut z = ZEncoder::new(1).unwrap();
        z.set_parameter(CParameter::WindowLog(WINDOW_LOG)).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut bomb = Vec::new();
        for _ in 0..100 {
            let mut input = InBuffer::around(&zeros);
            while input.pos() < zeros.len() {
                bomb.reserve(1 << 16);
                let pos = bomb.len();
                z.run(&mut input, &mut OutBuffer::around_pos(&mut bomb, pos))
                    .unwrap();
            }
        }
        loop {
            bomb.reserve(1 << 16);
            let pos = bomb.len();
            if z.flush(&mut OutBuffer::around_pos(&mut bomb, pos)).unwrap() == 0 {
                break;
            }
        }
        assert!(bomb.len() < 100_000, "bomb is {} bytes", bomb.len());
        let mut dec = BatchDecoder::new(Limits::default()).unwrap();
        let t0 = Instant::now();
        let e = expect_err(dec.decode(&bomb), "exceeds the limit of 4194304 bytes");
        let took = t0.elapsed();
        eprintln!(
            "100 MB zstd bomb ({} bytes) refused in {took:?}: {e}",
            bomb.len()
        );
        assert!(dec.buf.len() <= Limits::default().max_batch_bytes);
        assert!(matches!(dec.decode(&bomb), Err(CodecError::Poisoned)));
    }

    /// A zstd frame header (no checksum, no content size, window 2^log)
    /// followed by `blocks` RLE blocks of 128 KiB zeros.
    fn rle_bomb(window_log: u8, blocks: usize) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (window_log - 10) << 3];
        for i in 0..blocks {
            let last = u32::from(i + 1 == blocks);
            let header = (128 * 1024u32) << 3 | 1 << 1 | last;
            f.extend_from_slice(&header.to_le_bytes()[..3]);
            f.push(0);
        }
        f
    }

    #[test]
    fn handmade_rle_bomb_of_a_gigabyte_hits_the_limit() {
        let bomb = rle_bomb(20, 8192); // 1 GiB from 32 KiB
        let mut dec = BatchDecoder::new(Limits::default()).unwrap();
        expect_err(dec.decode(&bomb), "exceeds the limit");
        // A small limit is honoured exactly.
        let limits = Limits {
            max_batch_bytes: 1000,
            ..Limits::default()
        };
        let mut dec = BatchDecoder::new(limits).unwrap();
        expect_err(
            dec.decode(&rle_bomb(20, 1)),
            "exceeds the limit of 1000 bytes",
        );
        assert_eq!(dec.buf.len(), 1000);
    }

    #[test]
    fn oversized_zstd_window_is_refused() {
        let mut dec = BatchDecoder::new(Limits::default()).unwrap();
        let e = expect_err(dec.decode(&rle_bomb(27, 1)), "zstd decompress failed");
        eprintln!("{e}");
    }

    #[test]
    fn garbage_and_empty_payloads_are_refused() {
        let mut dec = BatchDecoder::new(Limits::default()).unwrap();
        expect_err(dec.decode(&[]), "empty batch payload");
        let mut dec = BatchDecoder::new(Limits::default()).unwrap();
        expect_err(dec.decode(b"hello, I am not zstd at all"), "zstd");
        // zstd that decompresses to nothing at all: header, empty last raw block.
        let empty = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 0x01, 0x00, 0x00];
        let mut dec = BatchDecoder::new(Limits::default()).unwrap();
        expect_err(
            dec.decode(&empty),
            "truncated batch: input ended reading flags",
        );
    }

    #[test]
    fn truncated_payloads_are_refused() {
        let mut t = SeriesTable::new();
        let s = t.intern("cpu", metric::CPU_UTILIZATION.name, -5);
        let b = Batch {
            seq: 1,
            timestamps: vec![1_700_000_000_000, 1_700_000_001_000],
            columns: vec![Column {
                series: s,
                start: 0,
                values: vec![0.5, 0.25],
            }],
        };
        let p = encode(&mut BatchEncoder::new(3).unwrap(), &b, &t);
        for n in 0..p.len() {
            let mut dec = BatchDecoder::new(Limits::default()).unwrap();
            assert!(dec.decode(&p[..n]).is_err(), "prefix of {n} bytes decoded");
        }
        // And a record cut short inside its structure.
        let full = valid_first();
        for n in 1..full.len() {
            match decode_raw(&[full[..n].to_vec()]) {
                Err(CodecError::Truncated { .. } | CodecError::CountExceedsInput { .. }) => {}
                other => panic!("prefix {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_series_id_is_refused() {
        let mut r = record(FLAG_LAYOUT);
        r.extend_from_slice(&[1, 1, 6, 0, 1, 0, 1, 2]); // column of series 3, never defined
        expect_err(decode_raw(&[r]), "series 3 is used but was never defined");
    }

    #[test]
    fn series_redefined_differently_is_refused() {
        let mut second = record(FLAG_SERIES);
        varint::put_u64(&mut second, 1);
        put_def(&mut second, 0, -2, "cpu", "cpu.cores");
        second.extend_from_slice(&[0, 1, 1]); // timestamp dd, bitmap: column 0 unchanged
        let e = expect_err(decode_raw(&[valid_first(), second]), "series 0 redefined");
        assert!(
            e.to_string().contains("exp 0, now cpu cpu.cores exp -2"),
            "{e}"
        );
        // The identical definition again is harmless.
        let mut same = record(FLAG_SERIES);
        varint::put_u64(&mut same, 1);
        put_def(&mut same, 0, 0, "cpu", "cpu.cores");
        same.extend_from_slice(&[0, 1, 1]);
        let d = decode_raw(&[valid_first(), same]).unwrap();
        assert!(d.new_series.is_empty());
        assert_eq!(d.batch.columns[0].values, [5.0]);
    }

    #[test]
    fn counts_larger_than_the_input_are_refused_before_allocating() {
        // 90 000 series definitions announced, four bytes follow.
        let mut r = record(FLAG_SERIES);
        varint::put_u64(&mut r, 90_000);
        r.extend_from_slice(&[0, 0, 0, 0]);
        expect_err(
            decode_raw(&[r]),
            "series definitions: count 90000 cannot fit in the 4 bytes left",
        );
        // 10 000 timestamps (the limit) with 3 bytes behind them.
        let mut r = record(FLAG_LAYOUT);
        varint::put_u64(&mut r, 10_000);
        r.extend_from_slice(&[0, 0, 0]);
        expect_err(decode_raw(&[r]), "timestamps: count 10000 cannot fit");
        // Many columns.
        let mut r = record(FLAG_LAYOUT);
        r.push(1);
        varint::put_u64(&mut r, 500_000);
        r.extend_from_slice(&[0; 30]);
        expect_err(decode_raw(&[r]), "columns: count 500000 cannot fit");
        // A name length beyond the input.
        let mut r = record(FLAG_SERIES);
        r.extend_from_slice(&[1, 0, 0, 100, b'x']);
        expect_err(decode_raw(&[r]), "resource name: count 100 cannot fit");
        // A changed column with more values than bytes: 2 values, 1 byte.
        let mut r = record(FLAG_SERIES | FLAG_LAYOUT);
        varint::put_u64(&mut r, 1);
        put_def(&mut r, 0, 0, "cpu", "cpu.cores");
        r.extend_from_slice(&[2, 1, 0, 0, 2, 0, 0, 1, 1, 9]);
        expect_err(
            decode_raw(&[r]),
            "column values: count 2 cannot fit in the 1 bytes left",
        );
    }

    #[test]
    fn limits_are_enforced() {
        let small = Limits {
            max_batch_bytes: 4096,
            max_series: 2,
            max_readings: 3,
            max_timestamps: 2,
            max_name_len: 8,
        };
        // Too many series, over two records.
        let defs = |ids: &[u64]| {
            let mut r = record(FLAG_SERIES | FLAG_LAYOUT);
            varint::put_u64(&mut r, ids.len() as u64);
            for &id in ids {
                put_def(&mut r, id, 0, "cpu", "m");
            }
            r.extend_from_slice(&[0, 0]); // no timestamps, no columns, empty bitmap
            r
        };
        assert!(decode_raw_with(small, &[defs(&[0, 1])]).is_ok());
        expect_err(
            decode_raw_with(small, &[defs(&[0]), defs(&[1, 2])]),
            "series definitions: 2 exceeds the limit of 1",
        );
        // Name too long.
        let mut r = record(FLAG_SERIES);
        varint::put_u64(&mut r, 1);
        put_def(&mut r, 0, 0, "a-very-long-resource", "m");
        expect_err(
            decode_raw_with(small, &[r]),
            "resource name: 20 exceeds the limit of 8",
        );
        // Too many timestamps.
        let mut r = record(FLAG_LAYOUT);
        r.extend_from_slice(&[3, 0, 0, 0, 0]);
        expect_err(
            decode_raw_with(small, &[r]),
            "timestamps: 3 exceeds the limit of 2",
        );
        // Too many readings: two columns of 2.
        let mut r = defs(&[0, 1]);
        r.truncate(r.len() - 2);
        r.extend_from_slice(&[2, 2, 0, 0, 2, 2, 0, 2, 0, 0, 0]);
        expect_err(
            decode_raw_with(small, &[r]),
            "readings: 4 exceeds the limit of 3",
        );
        // Batch bytes.
        let mut r = record(FLAG_SERIES);
        r.extend_from_slice(&[0; 5000]);
        expect_err(
            decode_raw_with(small, &[r]),
            "exceeds the limit of 4096 bytes",
        );
    }

    #[test]
    fn varint_overflow_is_refused() {
        let mut r = vec![0];
        r.extend_from_slice(&[0xff; 10]);
        expect_err(decode_raw(&[r]), "varint overflow reading seq at byte 1");
        let mut r = valid_first();
        let at = r.len() - 1;
        r.truncate(at);
        r.extend_from_slice(&[0x80; 9]);
        r.push(0x7f);
        expect_err(decode_raw(&[r]), "varint overflow reading value");
    }

    #[test]
    fn trailing_garbage_is_refused() {
        let mut r = valid_first();
        r.extend_from_slice(&[1, 2, 3]);
        expect_err(decode_raw(&[r]), "3 bytes of trailing garbage");
    }

    #[test]
    fn decreasing_timestamps_are_refused() {
        let mut r = record(FLAG_SERIES | FLAG_LAYOUT);
        varint::put_u64(&mut r, 1);
        put_def(&mut r, 0, 0, "cpu", "cpu.cores");
        r.extend_from_slice(&[2, 1, 0, 0, 2]);
        varint::put_i64(&mut r, 1000); // ts 1000 (first ever: interval 0)
        varint::put_i64(&mut r, -1); // dt -1: ts 999
        r.extend_from_slice(&[0]);
        expect_err(
            decode_raw(&[r]),
            "timestamp 1 (999) is earlier than the one before it (1000)",
        );
    }

    #[test]
    fn columns_outside_the_timestamps_are_refused() {
        for (start, len, msg) in [
            (1u64, 1u64, "start 1 + 1 values exceeds the 1 timestamps"),
            (0, 2, "start 0 + 2 values exceeds"),
            (u64::MAX, 2, "exceeds"),
            (0, 0, "column 0 of series 0 is empty"),
        ] {
            let mut r = record(FLAG_SERIES | FLAG_LAYOUT);
            varint::put_u64(&mut r, 1);
            put_def(&mut r, 0, 0, "cpu", "cpu.cores");
            r.extend_from_slice(&[1, 1, 0]);
            varint::put_u64(&mut r, start);
            varint::put_u64(&mut r, len);
            r.extend_from_slice(&[0, 0, 0, 0]);
            expect_err(decode_raw(&[r]), msg);
        }
    }

    #[test]
    fn other_malformed_records_are_refused() {
        // Unknown flag bits.
        expect_err(decode_raw(&[vec![0x80, 0]]), "unknown batch flags 0x80");
        // Layout reuse before any layout.
        expect_err(decode_raw(&[vec![0, 0]]), "none was sent");
        // Exp out of i8 range.
        let mut r = record(FLAG_SERIES);
        varint::put_u64(&mut r, 1);
        put_def(&mut r, 0, 300, "cpu", "m");
        expect_err(decode_raw(&[r]), "series exp 300 is out of range");
        // Series id over u32.
        let mut r = record(FLAG_SERIES);
        varint::put_u64(&mut r, 1);
        put_def(&mut r, 1 << 32, 0, "cpu", "m");
        expect_err(decode_raw(&[r]), "series id 4294967296 is out of range");
        // Invalid UTF-8.
        let mut r = record(FLAG_SERIES);
        r.extend_from_slice(&[1, 0, 0, 1, 0xff, 1, b'm']);
        expect_err(
            decode_raw(&[r]),
            "resource name of series 0 is not valid UTF-8",
        );
        // Bitmap bits past the last column.
        let mut r = valid_first();
        let n = r.len();
        r[n - 2] = 0b11;
        expect_err(
            decode_raw(&[r]),
            "change bitmap has bits set past its 1 bits",
        );
        let mut r = valid_first();
        r[n - 3] = 0b11;
        expect_err(
            decode_raw(&[r]),
            "change bitmap index has bits set past its 1 bits",
        );
        // Column series delta going negative.
        let mut r = record(FLAG_LAYOUT);
        r.extend_from_slice(&[1, 1, 1, 0, 1]);
        expect_err(decode_raw(&[r]), "column series id -1 is out of range");
    }

    #[test]
    fn decoder_is_poisoned_after_an_error() {
        let mut t = SeriesTable::new();
        let s = t.intern("host", metric::STATUS_UP.name, 0);
        let b = Batch {
            seq: 1,
            timestamps: vec![1],
            columns: vec![Column {
                series: s,
                start: 0,
                values: vec![1.0],
            }],
        };
        let (mut enc, mut dec) = pair();
        let p = encode(&mut enc, &b, &t);
        assert!(dec.decode(b"junk").is_err());
        assert!(matches!(dec.decode(&p), Err(CodecError::Poisoned)));
    }

    // ---- size at the defaults -----------------------------------------

    /// splitmix64: deterministic test randomness.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % (hi - lo + 1) as u64) as i64
        }
        fn chance(&mut self, p: f64) -> bool {
            self.unit() < p
        }
    }

    /// A NIC's kernel counters (as in /proc/net/dev) and its mean load.
    struct Nic {
        name: &'static str,
        speed_bits: Option<f64>,
        rx_bps: f64,
        tx_bps: f64,
        pkt_size: f64,
        counters: [u64; 8], // rx bytes, tx bytes, rx pkts, tx pkts, rx errs, tx errs, rx drop, tx drop
    }

    /// Simulates what the agent's sensors derive from /proc on a small
    /// 8-core host sampled once a second: rates from counter differences
    /// over the measured interval, CPU ratios from jiffies.
    struct SmallHost {
        rng: Rng,
        now_ms: i64,
        uptime_cs: i64,
        cpu_load: Vec<f64>,
        load: [f64; 3],
        mem_avail: i64,
        agent_cpu_cs: i64,
        rss: i64,
        nics: Vec<Nic>,
    }

    impl SmallHost {
        fn new() -> Self {
            let nic = |name, speed_bits, rx_bps, tx_bps, pkt_size| Nic {
                name,
                speed_bits,
                rx_bps,
                tx_bps,
                pkt_size,
                counters: [0; 8],
            };
            SmallHost {
                rng: Rng(7),
                now_ms: 1_732_612_345_000,
                uptime_cs: 123_456_789,
                cpu_load: vec![0.12, 0.08, 0.05, 0.30, 0.02, 0.04, 0.10, 0.01],
                load: [0.52, 0.61, 0.58],
                mem_avail: 11_534_336_000,
                agent_cpu_cs: 4_321,
                rss: 14_221_312,
                nics: vec![
                    nic("eth0", Some(1e9), 180_000.0, 45_000.0, 900.0),
                    nic("eth1", Some(1e9), 60.0, 0.0, 60.0),
                    nic("lo", None, 2_500.0, 2_500.0, 120.0),
                    nic("docker0", None, 0.0, 0.0, 100.0),
                ],
            }
        }

        fn series(t: &mut SeriesTable) -> Vec<(SeriesId, &'static Metric, String)> {
            let mut v = Vec::new();
            let mut add = |res: String, m: &'static Metric| {
                v.push((t.intern(&res, m.name, m.exp), m, res));
            };
            add("cpu".into(), &metric::CPU_UTILIZATION);
            for c in 0..8 {
                add(format!("cpu/{c}"), &metric::CPU_UTILIZATION);
            }
            for m in [
                &metric::CPU_CORES,
                &metric::CPU_LOAD1,
                &metric::CPU_LOAD5,
                &metric::CPU_LOAD15,
            ] {
                add("cpu".into(), m);
            }
            for m in [
                &metric::MEMORY_TOTAL,
                &metric::MEMORY_AVAILABLE,
                &metric::MEMORY_USED,
                &metric::MEMORY_SWAP_TOTAL,
                &metric::MEMORY_SWAP_USED,
            ] {
                add("memory".into(), m);
            }
            for (nic, speed) in [
                ("eth0", true),
                ("eth1", true),
                ("lo", false),
                ("docker0", false),
            ] {
                for m in [
                    &metric::NIC_RX_BYTES,
                    &metric::NIC_TX_BYTES,
                    &metric::NIC_RX_PACKETS,
                    &metric::NIC_TX_PACKETS,
                    &metric::NIC_RX_ERRORS,
                    &metric::NIC_TX_ERRORS,
                    &metric::NIC_RX_DROPS,
                    &metric::NIC_TX_DROPS,
                ] {
                    add(format!("nic/{nic}"), m);
                }
                if speed {
                    add(format!("nic/{nic}"), &metric::NIC_SPEED);
                    add(format!("nic/{nic}"), &metric::NIC_UTILIZATION);
                }
            }
            add("gpu".into(), &metric::GPU_PRESENT);
            for m in [
                &metric::STATUS_UP,
                &metric::STATUS_UPTIME,
                &metric::STATUS_SINCE_ACK,
                &metric::STATUS_AGENT_CPU,
                &metric::STATUS_AGENT_RSS,
                &metric::STATUS_DROPPED,
                &metric::STATUS_SPOOLED,
            ] {
                add("host".into(), m);
            }
            v
        }

        /// One sample a little over a second after the previous one.
        fn sample(&mut self) -> (i64, std::collections::HashMap<String, f64>) {
            let r = &mut self.rng;
            let dt_ms = 1000 + r.range(-2, 6);
            self.now_ms += dt_ms;
            self.uptime_cs += dt_ms / 10;
            let secs = dt_ms as f64 / 1000.0;
            let mut v = std::collections::HashMap::new();
            // CPU: per-core jiffies at USER_HZ=100 over the interval.
            let (mut busy_all, mut total_all) = (0i64, 0i64);
            for (c, load) in self.cpu_load.iter().enumerate() {
                let total = dt_ms / 10 + r.range(-1, 1);
                let noise = (r.unit() - 0.5) * 0.1;
                let busy = ((load + noise).clamp(0.0, 1.0) * total as f64).round() as i64;
                busy_all += busy;
                total_all += total;
                v.insert(
                    format!("cpu/{c} cpu.utilization"),
                    busy as f64 / total as f64,
                );
            }
            v.insert(
                "cpu cpu.utilization".into(),
                busy_all as f64 / total_all as f64,
            );
            v.insert("cpu cpu.cores".into(), 8.0);
            // /proc/loadavg changes every 5 s.
            if self.now_ms / 1000 % 5 == 0 {
                let run = busy_all as f64 / total_all as f64 * 8.0 + r.unit();
                for (i, tau) in [1.0f64, 5.0, 15.0].iter().enumerate() {
                    let e = (-5.0 / (60.0 * tau)).exp();
                    self.load[i] = self.load[i] * e + run * (1.0 - e);
                }
            }
            for (i, n) in ["load1", "load5", "load15"].iter().enumerate() {
                v.insert(
                    format!("cpu cpu.{n}"),
                    (self.load[i] * 100.0).round() / 100.0,
                );
            }
            // Memory: page-granular churn.
            let total = 16_647_340_032i64;
            if r.chance(0.8) {
                self.mem_avail += 4096 * r.range(-300, 300);
            }
            v.insert("memory memory.total".into(), total as f64);
            v.insert("memory memory.available".into(), self.mem_avail as f64);
            v.insert("memory memory.used".into(), (total - self.mem_avail) as f64);
            v.insert("memory memory.swap.total".into(), 2_147_479_552.0);
            v.insert("memory memory.swap.used".into(), 0.0);
            // NICs: counters advance, rates are differences over the interval.
            for n in &mut self.nics {
                let rx = (n.rx_bps * secs * (0.6 + 0.8 * r.unit())) as u64;
                let tx = (n.tx_bps * secs * (0.6 + 0.8 * r.unit())) as u64;
                let d = [
                    rx,
                    tx,
                    (rx as f64 / n.pkt_size).ceil() as u64,
                    (tx as f64 / n.pkt_size).ceil() as u64,
                    0,
                    0,
                    u64::from(n.rx_bps > 100_000.0 && r.chance(0.01)),
                    0,
                ];
                let names = [
                    "rx.bytes_per_second",
                    "tx.bytes_per_second",
                    "rx.packets_per_second",
                    "tx.packets_per_second",
                    "rx.errors_per_second",
                    "tx.errors_per_second",
                    "rx.drops_per_second",
                    "tx.drops_per_second",
                ];
                for i in 0..8 {
                    n.counters[i] += d[i];
                    v.insert(
                        format!("nic/{} nic.{}", n.name, names[i]),
                        d[i] as f64 / secs,
                    );
                }
                if let Some(speed) = n.speed_bits {
                    v.insert(format!("nic/{} nic.speed", n.name), speed);
                    let util = (rx.max(tx) as f64 / secs) * 8.0 / speed;
                    v.insert(format!("nic/{} nic.utilization", n.name), util);
                }
            }
            v.insert("gpu gpu.present".into(), 0.0);
            // The agent itself.
            if r.chance(0.3) {
                self.agent_cpu_cs += 1;
            }
            if r.chance(0.05) {
                self.rss += 4096 * r.range(-4, 8);
            }
            v.insert("host status.up".into(), 1.0);
            v.insert("host status.uptime".into(), self.uptime_cs as f64 / 100.0);
            v.insert(
                "host status.since_ack".into(),
                r.range(20, 980) as f64 / 1000.0,
            );
            v.insert(
                "host status.agent.cpu_seconds".into(),
                self.agent_cpu_cs as f64 / 100.0,
            );
            v.insert("host status.agent.rss".into(), self.rss as f64);
            v.insert("host status.spool.dropped_readings".into(), 0.0);
            v.insert("host status.spool.batches".into(), r.range(0, 1) as f64);
            (self.now_ms, v)
        }
    }

    #[test]
    fn mutated_records_never_panic() {
        let mut table = SeriesTable::new();
        let series = SmallHost::series(&mut table);
        let mut host = SmallHost::new();
        let mut enc = BatchEncoder::new(DEFAULT_LEVEL).unwrap();
        let mut records = Vec::new();
        for seq in 1..=6u64 {
            let (ts, values) = host.sample();
            let batch = Batch {
                seq,
                timestamps: vec![ts, ts + 1000],
                columns: series
                    .iter()
                    .map(|(id, m, res)| Column {
                        series: *id,
                        start: u32::from(*id % 3 == 0),
                        values: vec![
                            values[&format!("{res} {}", m.name)];
                            1 + usize::from(*id % 3 != 0)
                        ],
                    })
                    .collect(),
            };
            enc.encode(&batch, &table, &mut Vec::new()).unwrap();
            records.push(enc.raw.clone());
        }
        let mut rng = Rng(99);
        let (mut ok, mut err) = (0, 0);
        for _ in 0..3000 {
            // A valid prefix of the stream, then one mutated record.
            let at = (rng.next() % records.len() as u64) as usize;
            let mut r = records[at].clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() % r.len() as u64) as usize;
                match rng.next() % 4 {
                    0 => r[i] ^= 1 << (rng.next() % 8),
                    1 => r[i] = rng.next() as u8,
                    2 => r.truncate(i),
                    _ => r.insert(i, rng.next() as u8),
                }
                if r.is_empty() {
                    r.push(0);
                }
            }
            let mut stream = records[..at].to_vec();
            stream.push(r);
            match decode_raw(&stream) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
        eprintln!("mutated records: {ok} decoded, {err} refused");
        assert!(err > 0);
    }

    #[test]
    fn bytes_per_reading_at_defaults_for_a_small_host() {
        let mut table = SeriesTable::new();
        let series = SmallHost::series(&mut table);
        assert!((55..=65).contains(&series.len()), "{} series", series.len());
        let mut host = SmallHost::new();
        let (mut enc, mut dec) = pair();
        let (mut bytes, mut readings, mut raw) = (0usize, 0usize, 0usize);
        for seq in 1..=60u64 {
            let (ts, values) = host.sample();
            let batch = Batch {
                seq,
                timestamps: vec![ts],
                columns: series
                    .iter()
                    .map(|(id, m, res)| Column {
                        series: *id,
                        start: 0,
                        values: vec![values[&format!("{res} {}", m.name)]],
                    })
                    .collect(),
            };
            let p = encode(&mut enc, &batch, &table);
            assert_eq!(dec.decode(&p).unwrap().batch, quantised(&batch, &table));
            if seq > 5 {
                bytes += p.len();
                readings += batch.readings();
                raw += enc.last_record_len();
            }
        }
        let per_reading = bytes as f64 / readings as f64;
        eprintln!(
            "small host, {} series, 1 timestamp/batch: {per_reading:.3} payload bytes per reading \
             ({:.1} bytes per batch; {:.1} before zstd)",
            series.len(),
            bytes as f64 / 55.0,
            raw as f64 / 55.0
        );
        assert!(per_reading <= 1.0, "{per_reading:.3} bytes per reading");
    }
}
