//! [`BatchDecoder`]: payloads to batches, refusing bad input.

use zstd::stream::raw::{DParameter, Decoder as ZDecoder};

use super::quant::{Quantum, SeriesState};
use super::wire::{read_def, Wire};
use super::{
    zstd_err, zstream, CodecError, Limits, FLAG_LAYOUT, FLAG_SEQ_NEXT, FLAG_SERIES, KNOWN_FLAGS,
    MIN_COLUMN_BYTES, MIN_DEF_BYTES, PAYLOAD_RAW, PAYLOAD_ZSTD, WINDOW_LOG, ZSTD_MAGIC,
};
use crate::batch::{Batch, Column, SeriesDef, SeriesId};
use crate::varint::Reader;

/// One decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The batch, values dequantised.
    pub batch: Batch,
    /// Series defined by this payload, in wire order.
    pub new_series: Vec<SeriesDef>,
}

#[derive(Debug, Clone, Copy)]
struct DecColumn {
    /// The series' id on this connection, which is also its slot in the
    /// decoder's tables (ids are dense from 0).
    series: SeriesId,
    start: u32,
    len: u32,
}

/// Decodes the batches of one connection. See the module docs for the wire
/// and the limits.
pub struct BatchDecoder {
    limits: Limits,
    /// The connection's zstd stream, made with its first compressed
    /// payload (a small host's connection never has one).
    pub(super) zstd: Option<ZDecoder<'static>>,
    /// Whether every payload is a piece of the zstd stream, with no kind
    /// byte (an encoder built before payloads had one); known from the
    /// connection's first payload.
    unprefixed: Option<bool>,
    /// Decompression buffer; its `len()` is the allocated, zeroed size, never
    /// above `limits.max_batch_bytes`.
    pub(super) buf: Vec<u8>,
    /// Series defined on this connection, indexed by id.
    defs: Vec<SeriesDef>,
    states: Vec<SeriesState>,
    prev_seq: u64,
    prev_ts: i64,
    prev_dt: i64,
    have_ts: bool,
    have_layout: bool,
    layout_ts: usize,
    layout: Vec<DecColumn>,
    prev_bitmap: Vec<u8>,
    poisoned: bool,
    /// A batch handed back ([`BatchDecoder::recycle`]) whose vectors the
    /// next payload is decoded into: no allocation per column per batch.
    pub(super) spare: Batch,
}

/// The decompression buffer a connection keeps between batches, at most.
pub const KEEP_BUF_BYTES: usize = 64 * 1024;

/// The most values (timestamps and readings together) a recycled batch
/// may hold capacity for: what a connection keeps between batches stays
/// small whatever one batch held.
pub const RECYCLE_MAX_VALUES: usize = 4096;

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

impl BatchDecoder {
    /// A fresh decoder for a new connection.
    pub fn new(limits: Limits) -> Result<Self, CodecError> {
        Ok(BatchDecoder {
            limits,
            zstd: None,
            unprefixed: None,
            buf: Vec::new(),
            defs: Vec::new(),
            states: Vec::new(),
            prev_seq: 0,
            prev_ts: 0,
            prev_dt: 0,
            have_ts: false,
            have_layout: false,
            layout_ts: 0,
            layout: Vec::new(),
            prev_bitmap: Vec::new(),
            poisoned: false,
            spare: Batch::default(),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The definition of series `id`, if this connection defined it.
    pub fn series(&self, id: SeriesId) -> Option<&SeriesDef> {
        self.defs.get(id as usize)
    }

    /// Number of series defined on this connection.
    pub fn series_count(&self) -> usize {
        self.defs.len()
    }

    /// Hands back a decoded batch once it has been applied, so that the
    /// next payload reuses its vectors (kept only when small: see
    /// [`RECYCLE_MAX_VALUES`]).
    pub fn recycle(&mut self, batch: Batch) {
        let held = batch.timestamps.capacity()
            + batch.columns.capacity()
            + batch
                .columns
                .iter()
                .map(|c| c.values.capacity())
                .sum::<usize>();
        if held <= RECYCLE_MAX_VALUES {
            self.spare = batch;
        }
    }

    /// Decodes the next payload of the connection. After an error every
    /// further call returns [`CodecError::Poisoned`].
    pub fn decode(&mut self, payload: &[u8]) -> Result<Decoded, CodecError> {
        if self.poisoned {
            return Err(CodecError::Poisoned);
        }
        let r = self.payload(payload);
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    fn payload(&mut self, payload: &[u8]) -> Result<Decoded, CodecError> {
        let unprefixed = *self
            .unprefixed
            .get_or_insert_with(|| payload.starts_with(&ZSTD_MAGIC));
        let piece = match payload.split_first() {
            None => return Err(CodecError::EmptyPayload),
            _ if unprefixed => payload,
            Some((&PAYLOAD_RAW, record)) => {
                if record.len() > self.limits.max_batch_bytes {
                    return Err(CodecError::BatchTooLarge {
                        limit: self.limits.max_batch_bytes,
                    });
                }
                return self.parse(record);
            }
            Some((&PAYLOAD_ZSTD, piece)) => piece,
            Some((&kind, _)) => return Err(CodecError::UnknownPayload { kind }),
        };
        let zstd = match self.zstd.take() {
            Some(z) => z,
            None => {
                let mut z = ZDecoder::new().map_err(zstd_err("decoder setup"))?;
                z.set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
                    .map_err(zstd_err("decoder setup"))?;
                z
            }
        };
        let zstd = self.zstd.insert(zstd);
        let len = zstream::decompress(zstd, &mut self.buf, self.limits.max_batch_bytes, piece)?;
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.parse(buf.get(..len).unwrap_or_default());
        // What one large batch needed is not held for the connection's
        // life.
        if buf.len() > KEEP_BUF_BYTES {
            buf.truncate(KEEP_BUF_BYTES);
            buf.shrink_to_fit();
        }
        self.buf = buf;
        r
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
                // Ids are dense: a new series takes the next one. `room`
                // bounded n, so this cannot pass max_series.
                let next = self.defs.len() as SeriesId;
                if def.id != next {
                    return Err(match self.defs.get(def.id as usize) {
                        Some(old) => CodecError::SeriesRedefined {
                            id: def.id,
                            old: describe(old),
                            new: describe(&def),
                        },
                        None => CodecError::SeriesNotNext { id: def.id, next },
                    });
                }
                self.states.push(SeriesState {
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
                if series as usize >= self.defs.len() {
                    return Err(CodecError::UndefinedSeries { id: series });
                }
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
        let mut batch = std::mem::take(&mut self.spare);
        let timestamps = &mut batch.timestamps;
        timestamps.clear();
        timestamps.reserve(n_ts);
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
        let columns = &mut batch.columns;
        columns.truncate(self.layout.len());
        columns.reserve(self.layout.len() - columns.len());
        for (i, c) in self.layout.iter().enumerate() {
            let changed = bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
            let Some(state) = self.states.get_mut(c.series as usize) else {
                return Err(CodecError::UndefinedSeries { id: c.series });
            };
            let n = c.len as usize;
            if i == columns.len() {
                columns.push(Column::default());
            }
            let Some(column) = columns.get_mut(i) else {
                return Err(CodecError::UndefinedSeries { id: c.series });
            };
            column.series = c.series;
            column.start = c.start;
            let values = &mut column.values;
            values.clear();
            values.reserve(n);
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
        }
        if w.left() != 0 {
            return Err(CodecError::TrailingBytes { n: w.left() });
        }
        self.prev_seq = seq;
        batch.seq = seq;
        Ok(Decoded { batch, new_series })
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
