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
//! `Frame::Batch`): a kind byte, then either the *batch record* itself
//! (`0x00`), or (`0x01`) the next piece of the connection's zstd stream —
//! one zstd frame that is never ended, window log [`ENCODER_WINDOW_LOG`]
//! (decoders accept up to [`WINDOW_LOG`]), made with the connection's first
//! such payload — which ends with a zstd flush, so it decompresses
//! completely on arrival to the record, and later compressed records reuse
//! the earlier ones as zstd history. Encoders compress a record only when
//! it is [`COMPRESS_FROM`] bytes or more, its series definitions aside.
//! (A connection whose first payload starts with zstd's frame magic comes
//! from an encoder built before payloads had a kind byte: every payload of
//! it is a piece of the zstd stream.) A batch record:
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
//!           ids are the connection's own: dense from 0 in order of definition
//!           (the k-th series defined on a connection has id k), whatever the
//!           agent's series ids are; resource is a valid `ResourceId`
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

mod decode;
mod encode;
mod quant;
mod wire;
mod zstream;

#[cfg(test)]
mod tests;

use std::io;

use thiserror::Error;

use crate::batch::SeriesId;

pub use decode::{BatchDecoder, Decoded};
pub use encode::BatchEncoder;
pub use quant::{dequantize, quantize};

/// The largest zstd window log decoders accept (16 KiB): what a peer can
/// make one connection's decoder hold. A decoder's stream buffers follow
/// the window its stream declares — about twice the window plus a block
/// of up to the window — and fill as the stream goes on, so the window is
/// what each connection ends up holding at the supervisor: a 1 MiB window
/// grew a connection's decoder past 230 KB within the first half hour of
/// one small host's batches and on towards 1 MiB.
pub const WINDOW_LOG: u32 = 14;

/// The window log encoders use (1 KiB, zstd's least). Batch records are
/// small and already columnar — a small host's ~55 bytes, on which zstd
/// finds nothing to gain at any window — so the window only costs memory:
/// at 16 KiB each connection's decoder held ~65 KB of stream buffers at
/// the supervisor, at 1 KiB ~4 KB. Decoders still accept up to
/// [`WINDOW_LOG`] (agents built before).
pub const ENCODER_WINDOW_LOG: u32 = 10;

/// A reasonable default zstd level for telemetry.
pub const DEFAULT_LEVEL: i32 = 3;

/// A payload's first byte: its record follows as it is.
const PAYLOAD_RAW: u8 = 0x00;
/// A payload's first byte: the next piece of the connection's zstd stream
/// follows, which decompresses to its record.
const PAYLOAD_ZSTD: u8 = 0x01;
/// zstd's frame magic: the first payload of a connection from an encoder
/// built before payloads had a first byte starts with it, and all that
/// connection's payloads are pieces of one zstd stream.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Records at least this long, series definitions aside, are compressed;
/// shorter ones go as they are. A small host's ~55-byte records gain
/// nothing from zstd (its header and flushes cost more than it finds), and
/// a connection that never compresses needs no zstd context at either end
/// — the decoder's is ~96 KB at the supervisor for every host. A large
/// host's records of a few KB do gain.
pub const COMPRESS_FROM: usize = 1024;

const FLAG_SERIES: u8 = 0x01;
const FLAG_LAYOUT: u8 = 0x02;
const FLAG_SEQ_NEXT: u8 = 0x04;
const KNOWN_FLAGS: u8 = FLAG_SERIES | FLAG_LAYOUT | FLAG_SEQ_NEXT;

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

/// Default of [`Limits::max_series`], and of the agent's own series limit.
pub const DEFAULT_MAX_SERIES: usize = 16_384;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_bytes: 4 << 20,
            max_series: DEFAULT_MAX_SERIES,
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
    #[error("unknown payload kind {kind:#04x} (0x00 a record, 0x01 zstd)")]
    UnknownPayload { kind: u8 },
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
    #[error(
        "series {id} is not the next series id of this connection ({next}): ids are dense from 0"
    )]
    SeriesNotNext { id: SeriesId, next: SeriesId },
    #[error("series {id}: {source}")]
    BadResource {
        id: SeriesId,
        #[source]
        source: crate::resource::ResourceIdError,
    },
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
