//! The zstd streaming helpers: one never-ended zstd frame per connection,
//! flushed after every payload.

use zstd::stream::raw::{Decoder as ZDecoder, Encoder as ZEncoder, InBuffer, Operation, OutBuffer};

use super::{zstd_err, CodecError};

/// Smallest growth step of the decoder's decompression buffer: a small
/// host's record is ~55 bytes.
const MIN_CHUNK: usize = 1024;

/// Feeds `raw` to the streaming compressor and flushes, appending to `out`.
pub(super) fn compress(
    z: &mut ZEncoder<'static>,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
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

/// Decompresses `payload` into `buf`, growing it up to `max` bytes, and
/// returns the record length.
pub(super) fn decompress(
    z: &mut ZDecoder<'static>,
    buf: &mut Vec<u8>,
    max: usize,
    payload: &[u8],
) -> Result<usize, CodecError> {
    if payload.is_empty() {
        return Err(CodecError::EmptyPayload);
    }
    let mut input = InBuffer::around(payload);
    let mut filled = 0usize;
    loop {
        if filled == buf.len() {
            if filled >= max {
                // At the limit: one more byte of output is one too many.
                let mut probe = [0u8; 1];
                let mut ob = OutBuffer::around(&mut probe[..]);
                z.run(&mut input, &mut ob).map_err(zstd_err("decompress"))?;
                if ob.pos() > 0 || input.pos() < payload.len() {
                    return Err(CodecError::BatchTooLarge { limit: max });
                }
                return Ok(filled);
            }
            let grow = buf.len().max(MIN_CHUNK).min(max - buf.len());
            buf.resize(buf.len() + grow, 0);
        }
        let before = input.pos();
        let Some(space) = buf.get_mut(filled..) else {
            return Err(CodecError::BatchTooLarge { limit: max });
        };
        let space_len = space.len();
        let mut ob = OutBuffer::around(space);
        z.run(&mut input, &mut ob).map_err(zstd_err("decompress"))?;
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
