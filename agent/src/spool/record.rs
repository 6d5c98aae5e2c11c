//! Records of the spool's files: length-prefixed and checksummed, so a
//! torn or corrupt tail is found and cut at start.
//!
//! ```text
//! record = len:u32 LE  crc32:u32 LE  kind:u8  body          len counts kind + body
//! Batch  = kind 1: seq:u64 n_ts:u32 n_ts × ts:i64  n_cols:u32
//!                  n_cols × { series:u32 start:u32 n:u32 n × value:f64 }
//! Ack    = kind 2: seq:u64          (advisory: lost acks only mean resends)
//! Def    = kind 3: id:u32 exp:i8 len:u16 resource len:u16 metric
//! ```
//!
//! All integers little-endian. Decoding checks every count against the
//! bytes left (and [`MAX_READINGS`]) before allocating: the files are the
//! agent's own, but a disk can return anything.

use vcp_common::batch::{Batch, Column, SeriesDef};

/// Bytes of the length and checksum before a record's kind.
pub const HEADER: usize = 8;
/// Largest record accepted when reading.
pub const MAX_RECORD: usize = 64 << 20;
/// Most readings one batch record may hold.
pub const MAX_READINGS: usize = 10_000_000;

const BATCH: u8 = 1;
const ACK: u8 = 2;
const DEF: u8 = 3;

/// One record of a spool file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Batch(Batch),
    Ack(u64),
    Def(SeriesDef),
}

/// Appends `batch` as a record, framed, to `out` (without cloning it).
pub fn encode_batch(b: &Batch, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    put_batch(b, out);
    seal(out, start);
}

fn put_batch(b: &Batch, out: &mut Vec<u8>) {
    out.push(BATCH);
    out.extend_from_slice(&b.seq.to_le_bytes());
    out.extend_from_slice(&(b.timestamps.len() as u32).to_le_bytes());
    for t in &b.timestamps {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.extend_from_slice(&(b.columns.len() as u32).to_le_bytes());
    for c in &b.columns {
        out.extend_from_slice(&c.series.to_le_bytes());
        out.extend_from_slice(&c.start.to_le_bytes());
        out.extend_from_slice(&(c.values.len() as u32).to_le_bytes());
        for v in &c.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Writes the length and checksum of the record that starts at `start`.
fn seal(out: &mut [u8], start: usize) {
    let body = &out[start + HEADER..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends `record`, framed, to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    match record {
        Record::Batch(b) => put_batch(b, out),
        Record::Ack(seq) => {
            out.push(ACK);
            out.extend_from_slice(&seq.to_le_bytes());
        }
        Record::Def(d) => {
            out.push(DEF);
            out.extend_from_slice(&d.id.to_le_bytes());
            out.push(d.exp as u8);
            for s in [&d.resource, &d.metric] {
                let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
                out.extend_from_slice(&(s.len() as u16).to_le_bytes());
                out.extend_from_slice(s);
            }
        }
    }
    seal(out, start);
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the file ends inside a record")]
    Torn,
    #[error("checksum mismatch")]
    Checksum,
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

/// The record at the start of `buf` and its size; `Ok(None)` at the end.
pub fn decode(buf: &[u8]) -> Result<Option<(Record, usize)>, RecordError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let Some(head) = buf.get(..HEADER) else {
        return Err(RecordError::Torn);
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 || len > MAX_RECORD {
        return Err(RecordError::Malformed("length"));
    }
    let Some(body) = buf.get(HEADER..HEADER + len) else {
        return Err(RecordError::Torn);
    };
    if crc32fast::hash(body) != crc {
        return Err(RecordError::Checksum);
    }
    let mut r = Reader(&body[1..]);
    let record = match body[0] {
        BATCH => Record::Batch(batch(&mut r)?),
        ACK => Record::Ack(r.u64()?),
        DEF => {
            let id = r.u32()?;
            let exp = r.u8()? as i8;
            let resource = r.string()?;
            let metric = r.string()?;
            Record::Def(SeriesDef {
                id,
                resource,
                metric,
                exp,
            })
        }
        _ => return Err(RecordError::Malformed("kind")),
    };
    if !r.0.is_empty() {
        return Err(RecordError::Malformed("trailing bytes"));
    }
    Ok(Some((record, HEADER + len)))
}

fn batch(r: &mut Reader<'_>) -> Result<Batch, RecordError> {
    let seq = r.u64()?;
    let n_ts = r.count(8)?;
    let timestamps = (0..n_ts).map(|_| r.i64()).collect::<Result<_, _>>()?;
    let n_cols = r.count(12)?;
    let mut columns = Vec::with_capacity(n_cols);
    let mut readings = 0;
    for _ in 0..n_cols {
        let series = r.u32()?;
        let start = r.u32()?;
        let n = r.count(8)?;
        readings += n;
        if readings > MAX_READINGS {
            return Err(RecordError::Malformed("readings"));
        }
        let values = (0..n).map(|_| r.f64()).collect::<Result<_, _>>()?;
        columns.push(Column {
            series,
            start,
            values,
        });
    }
    Ok(Batch {
        seq,
        timestamps,
        columns,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(RecordError::Malformed("short body"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn f64(&mut self) -> Result<f64, RecordError> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    /// A count of items of at least `size` bytes each that fit in what is left.
    fn count(&mut self, size: usize) -> Result<usize, RecordError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(size) > self.0.len() {
            return Err(RecordError::Malformed("count"));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, RecordError> {
        let n = u16::from_le_bytes(self.take()?) as usize;
        let bytes = self
            .0
            .get(..n)
            .ok_or(RecordError::Malformed("short string"))?;
        self.0 = &self.0[n..];
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::Malformed("utf-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::Def(SeriesDef {
                id: 3,
                resource: "nic/eth0".into(),
                metric: "nic.rx.bytes_per_second".into(),
                exp: -2,
            }),
            Record::Batch(Batch {
                seq: 42,
                timestamps: vec![1, 2, 3],
                columns: vec![
                    Column {
                        series: 3,
                        start: 1,
                        values: vec![0.5, f64::MAX],
                    },
                    Column {
                        series: 0,
                        start: 0,
                        values: vec![-1.0],
                    },
                ],
            }),
            Record::Ack(41),
        ]
    }

    #[test]
    fn records_round_trip_back_to_back() {
        let mut buf = Vec::new();
        for r in sample() {
            encode(&r, &mut buf);
        }
        let mut rest = &buf[..];
        let mut got = Vec::new();
        while let Some((r, n)) = decode(rest).unwrap() {
            got.push(r);
            rest = &rest[n..];
        }
        assert_eq!(got, sample());
    }

    #[test]
    fn torn_and_corrupt_records_are_errors() {
        let mut buf = Vec::new();
        encode(&sample()[1], &mut buf);
        for cut in [1, HEADER - 1, HEADER, buf.len() - 1] {
            assert_eq!(decode(&buf[..cut]), Err(RecordError::Torn), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[HEADER + 3] ^= 0xFF;
        assert_eq!(decode(&bad), Err(RecordError::Checksum));
        // A count that does not fit is refused before any allocation.
        let mut huge = Vec::new();
        huge.push(BATCH);
        huge.extend_from_slice(&7u64.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut framed = (huge.len() as u32).to_le_bytes().to_vec();
        framed.extend_from_slice(&crc32fast::hash(&huge).to_le_bytes());
        framed.extend_from_slice(&huge);
        assert_eq!(decode(&framed), Err(RecordError::Malformed("count")));
        assert_eq!(decode(&[]), Ok(None));
    }
}
