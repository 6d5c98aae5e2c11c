//! The decoder's wire reader: varints with error context, bounded counts,
//! series definitions.

use super::CodecError;
use crate::batch::{SeriesDef, SeriesId};
use crate::varint::{Reader, VarintError};

/// Reader with error context.
pub(super) struct Wire<'a>(pub(super) Reader<'a>);

impl<'a> Wire<'a> {
    fn err(&self, e: VarintError, what: &'static str) -> CodecError {
        let offset = self.0.pos();
        match e {
            VarintError::Truncated => CodecError::Truncated { what, offset },
            VarintError::Overflow => CodecError::VarintOverflow { what, offset },
        }
    }
    #[inline]
    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        self.0.u8().map_err(|e| self.err(e, what))
    }
    #[inline]
    pub(super) fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        self.0.u64().map_err(|e| self.err(e, what))
    }
    #[inline]
    pub(super) fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        self.0.i64().map_err(|e| self.err(e, what))
    }
    pub(super) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        self.0.bytes(n).map_err(|e| self.err(e, what))
    }
    pub(super) fn left(&self) -> usize {
        self.0.remaining()
    }
    /// A count that must be ≤ `limit` and fit in the bytes left at
    /// `min_bytes` each.
    pub(super) fn count(
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

pub(super) fn read_def(w: &mut Wire<'_>, max_name: usize) -> Result<SeriesDef, CodecError> {
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
    crate::resource::validate(&resource)
        .map_err(|source| CodecError::BadResource { id, source })?;
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
