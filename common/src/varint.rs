//! LEB128 varints, zigzag, and a bounds-checked byte reader.
//!
//! Unsigned integers are written 7 bits at a time, least significant group
//! first, the high bit of each byte set when another byte follows (a `u64`
//! takes 1 to 10 bytes). Signed integers are zigzag-mapped first
//! (0, -1, 1, -2, … → 0, 1, 2, 3, …) so that small magnitudes of either sign
//! stay short.
//!
//! The [`Reader`] never panics and never reads past its slice: every read
//! returns [`VarintError`] on truncation or overflow, and the caller adds the
//! context (which field, which offset).

/// Maximum encoded length of a `u64`.
pub const MAX_LEN: usize = 10;

/// Why a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the value.
    Truncated,
    /// The varint does not fit in 64 bits (more than 10 bytes, or a 10th
    /// byte with more than one significant bit).
    Overflow,
}

/// Maps a signed integer to an unsigned one, small magnitudes first.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as a LEB128 varint.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-mapped, as a varint.
#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
}

/// Encoded length of `v` in bytes.
#[inline]
pub fn len_u64(v: u64) -> usize {
    // 1 + floor(bits / 7), with 0 taking one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A cursor over a byte slice whose reads are all checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Offset of the next byte to be read.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, VarintError> {
        let b = *self.buf.get(self.pos).ok_or(VarintError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Takes the next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], VarintError> {
        if n > self.remaining() {
            return Err(VarintError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64, VarintError> {
        // Fast path: a one-byte value.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut v = 0u64;
        for i in 0..MAX_LEN {
            let b = self.u8()?;
            if i == MAX_LEN - 1 && b > 1 {
                return Err(VarintError::Overflow);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(VarintError::Overflow)
    }

    #[inline]
    pub fn i64(&mut self) -> Result<i64, VarintError> {
        self.u64().map(unzigzag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        put_u64(&mut out, 0);
        put_u64(&mut out, 127);
        put_u64(&mut out, 128);
        put_u64(&mut out, 300);
        assert_eq!(out, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
        out.clear();
        put_u64(&mut out, u64::MAX);
        assert_eq!(out.len(), MAX_LEN);
        assert_eq!(out[9], 1);
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
    }

    #[test]
    fn overflow_and_truncation() {
        // 11 continuation bytes.
        let bytes = [0xffu8; 11];
        assert_eq!(Reader::new(&bytes).u64(), Err(VarintError::Overflow));
        // 10th byte carries more than the one bit left.
        let mut bytes = [0xffu8; 10];
        bytes[9] = 0x02;
        assert_eq!(Reader::new(&bytes).u64(), Err(VarintError::Overflow));
        assert_eq!(
            Reader::new(&[0x80, 0x80]).u64(),
            Err(VarintError::Truncated)
        );
        assert_eq!(Reader::new(&[]).u64(), Err(VarintError::Truncated));
        assert_eq!(Reader::new(&[1, 2]).bytes(3), Err(VarintError::Truncated));
    }

    proptest! {
        #[test]
        fn round_trip(v: u64, s: i64) {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            prop_assert_eq!(out.len(), len_u64(v));
            put_i64(&mut out, s);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.u64(), Ok(v));
            prop_assert_eq!(r.i64(), Ok(s));
            prop_assert!(r.is_empty());
        }
    }
}
