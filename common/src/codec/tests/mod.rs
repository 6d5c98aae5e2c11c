//! Tests of the batch codec, by topic; the shared helpers are here.

mod bad_record;
mod bad_stream;
mod encode_errors;
mod roundtrip;
mod size;
mod small_host;

use zstd::stream::raw::{CParameter, Encoder as ZEncoder};

use super::zstream::compress;
use super::{
    dequantize, quantize, BatchDecoder, BatchEncoder, CodecError, Decoded, Limits, DEFAULT_LEVEL,
    FLAG_LAYOUT, FLAG_SERIES, WINDOW_LOG,
};
use crate::batch::{Batch, Column, SeriesId, SeriesTable};
use crate::varint;

/// A decoder with the default limits.
fn decoder() -> BatchDecoder {
    BatchDecoder::new(Limits::default()).unwrap()
}

fn pair() -> (BatchEncoder, BatchDecoder) {
    (BatchEncoder::new(DEFAULT_LEVEL).unwrap(), decoder())
}

fn encode(enc: &mut BatchEncoder, b: &Batch, t: &SeriesTable) -> Vec<u8> {
    let mut out = Vec::new();
    enc.encode(b, t, &mut out).unwrap();
    out
}

/// A column of `series` starting at timestamp `start`.
fn col(series: SeriesId, start: u32, values: Vec<f64>) -> Column {
    Column {
        series,
        start,
        values,
    }
}

/// A batch of `columns` over `timestamps`.
fn batch(seq: u64, timestamps: Vec<i64>, columns: Vec<Column>) -> Batch {
    Batch {
        seq,
        timestamps,
        columns,
    }
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

/// A decoded batch with the connection's series ids (dense, in order of
/// definition) translated back to the agent's, by name.
fn agent_ids(b: &Batch, dec: &BatchDecoder, t: &SeriesTable) -> Batch {
    let mut b = b.clone();
    for c in &mut b.columns {
        let def = dec.series(c.series).expect("a defined series");
        c.series = t
            .lookup(&def.resource, &def.metric)
            .expect("a known series");
    }
    b
}

/// Sends hand-written batch records as a connection's zstd stream with no
/// kind bytes, as encoders did before payloads had them (still accepted).
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

/// A record header (`flags` must include `FLAG_SERIES`) followed by one
/// series definition.
fn with_def(flags: u8, id: u64, exp: i64, resource: &str, metric: &str) -> Vec<u8> {
    let mut r = record(flags);
    varint::put_u64(&mut r, 1);
    put_def(&mut r, id, exp, resource, metric);
    r
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
    let mut r = with_def(FLAG_SERIES | FLAG_LAYOUT, 0, 0, "cpu", "cpu.cores");
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

fn expect_err(r: Result<Decoded, CodecError>, needle: &str) -> CodecError {
    match r {
        Ok(d) => panic!("decoded {d:?}, wanted an error containing {needle:?}"),
        Err(e) => {
            assert!(e.to_string().contains(needle), "{e:?} lacks {needle:?}");
            e
        }
    }
}
