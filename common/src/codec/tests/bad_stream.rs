//! Bad input at the zstd level: bombs, oversized windows, garbage,
//! truncation, and the poisoned decoder after an error.

use std::time::Instant;

use zstd::stream::raw::{CParameter, Encoder as ZEncoder, InBuffer, Operation, OutBuffer};

use super::{batch, col, decode_raw, decoder, encode, expect_err, pair, valid_first};
use crate::batch::SeriesTable;
use crate::codec::{BatchDecoder, BatchEncoder, CodecError, Limits, WINDOW_LOG};
use crate::metric;

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
    let mut dec = decoder();
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
        // The largest block the window allows.
        let header = (128 * 1024u32).min(1 << window_log) << 3 | 1 << 1 | last;
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

#[test]
fn handmade_rle_bomb_of_a_gigabyte_hits_the_limit() {
    let bomb = rle_bomb(WINDOW_LOG as u8, 65_536); // 1 GiB from 256 KiB
    let mut dec = decoder();
    expect_err(dec.decode(&bomb), "exceeds the limit");
    // A small limit is honoured exactly.
    let limits = Limits {
        max_batch_bytes: 1000,
        ..Limits::default()
    };
    let mut dec = BatchDecoder::new(limits).unwrap();
    expect_err(
        dec.decode(&rle_bomb(WINDOW_LOG as u8, 1)),
        "exceeds the limit of 1000 bytes",
    );
    assert_eq!(dec.buf.len(), 1000);
}

#[test]
fn oversized_zstd_window_is_refused() {
    let mut dec = decoder();
    let e = expect_err(dec.decode(&rle_bomb(27, 1)), "zstd decompress failed");
    eprintln!("{e}");
}

#[test]
fn garbage_and_empty_payloads_are_refused() {
    let mut dec = decoder();
    expect_err(dec.decode(&[]), "empty batch payload");
    let mut dec = decoder();
    expect_err(dec.decode(b"hello, I am not zstd at all"), "zstd");
    // zstd that decompresses to nothing at all: header (window 2^14),
    // empty last raw block.
    let empty = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x20, 0x01, 0x00, 0x00];
    let mut dec = decoder();
    expect_err(
        dec.decode(&empty),
        "truncated batch: input ended reading flags",
    );
}

#[test]
fn truncated_payloads_are_refused() {
    let mut t = SeriesTable::new();
    let s = t.intern("cpu", metric::CPU_UTILIZATION.name, -5);
    let b = batch(
        1,
        vec![1_700_000_000_000, 1_700_000_001_000],
        vec![col(s, 0, vec![0.5, 0.25])],
    );
    let p = encode(&mut BatchEncoder::new(3).unwrap(), &b, &t);
    for n in 0..p.len() {
        let mut dec = decoder();
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
fn decoder_is_poisoned_after_an_error() {
    let mut t = SeriesTable::new();
    let s = t.intern("host", metric::STATUS_UP.name, 0);
    let b = batch(1, vec![1], vec![col(s, 0, vec![1.0])]);
    let (mut enc, mut dec) = pair();
    let p = encode(&mut enc, &b, &t);
    assert!(dec.decode(b"junk").is_err());
    assert!(matches!(dec.decode(&p), Err(CodecError::Poisoned)));
}
