//! Protocol constants both ends of a connection must agree on, and a
//! sans-I/O frame reader: the caller feeds received bytes, this yields
//! frames. Sockets stay in the agent and supervisor crates.

use std::time::Duration;

use crate::frame::{decode_frame, Frame, FrameError};

/// QUIC keep-alive for long-lived agent connections (quinn's default is off).
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// A peer silent for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a peer has to send its first frame after connecting.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest frame accepted (application bytes, header included).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// QUIC application close codes, with the reason text beside them.
pub mod close {
    /// Orderly shutdown.
    pub const NORMAL: u32 = 0;
    /// The peer broke the protocol (bad frame, bad batch, sequence gap).
    pub const PROTOCOL: u32 = 1;
    /// The peer's identity was not accepted.
    pub const AUTH: u32 = 2;
    /// The peer speaks another protocol version.
    pub const VERSION: u32 = 3;
    /// A newer connection with the same identity replaced this one.
    pub const REPLACED: u32 = 4;
    /// The peer went past one of the supervisor's limits (series, rates,
    /// connections); the reason names it.
    pub const LIMIT: u32 = 5;
    /// The supervisor could not do its part (a failed store write).
    pub const INTERNAL: u32 = 6;
    /// The peer's certificate was revoked.
    pub const REVOKED: u32 = 7;
}

/// Accumulates received bytes and splits them into frames, never holding
/// more than one maximal frame plus one read.
#[derive(Debug)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
    max_frame: usize,
}

impl FrameBuffer {
    pub fn new(max_frame: usize) -> Self {
        FrameBuffer {
            buf: Vec::new(),
            start: 0,
            max_frame,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.max_frame {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame and its size on the wire, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<(Frame, usize)>, FrameError> {
        match decode_frame(&self.buf[self.start..], self.max_frame)? {
            Some((frame, used)) => {
                self.start += used;
                Ok(Some((frame, used)))
            }
            None => Ok(None),
        }
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_frame;

    #[test]
    fn splits_frames_across_arbitrary_reads() {
        let frames = [
            Frame::Ack { seq: 1 },
            Frame::Batch(vec![7; 300]),
            Frame::Close {
                reason: "bye".into(),
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            encode_frame(f, &mut wire);
        }
        for chunk in [1, 3, 64, wire.len()] {
            let mut fb = FrameBuffer::new(1024);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                fb.extend(piece);
                while let Some((f, _)) = fb.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames);
            assert_eq!(fb.pending(), 0);
        }
    }

    #[test]
    fn oversized_frame_is_refused_before_it_is_buffered() {
        let mut wire = Vec::new();
        encode_frame(&Frame::Batch(vec![0; 5000]), &mut wire);
        let mut fb = FrameBuffer::new(1024);
        fb.extend(&wire[..8]);
        assert!(fb.next_frame().is_err());
    }
}
