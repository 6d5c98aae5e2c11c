//! A bidirectional QUIC stream carrying vcp frames, for either end.

use vcp_common::frame::{encode_frame, Frame, FrameError};
use vcp_common::protocol::FrameBuffer;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("writing: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("the stream ended inside a frame")]
    Truncated,
}

impl StreamError {
    /// Whether the connection itself went away (as opposed to bad bytes).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            StreamError::Read(quinn::ReadError::ConnectionLost(_))
                | StreamError::Write(quinn::WriteError::ConnectionLost(_))
        )
    }
}

/// Frames in both directions of one stream.
pub struct Framed {
    pub send: quinn::SendStream,
    recv: quinn::RecvStream,
    buf: FrameBuffer,
    chunk: Vec<u8>,
    scratch: Vec<u8>,
}

impl Framed {
    /// Wraps a stream; frames longer than `max_frame` are refused.
    pub fn new(send: quinn::SendStream, recv: quinn::RecvStream, max_frame: usize) -> Self {
        Framed {
            send,
            recv,
            buf: FrameBuffer::new(max_frame),
            chunk: vec![0; 16 * 1024],
            scratch: Vec::new(),
        }
    }

    /// The next frame and its size on the wire; `None` when the peer
    /// finished the stream cleanly. Cancel-safe: a partly received frame
    /// stays buffered.
    pub async fn read(&mut self) -> Result<Option<(Frame, usize)>, StreamError> {
        loop {
            if let Some(f) = self.buf.next_frame()? {
                return Ok(Some(f));
            }
            match self.recv.read(&mut self.chunk).await? {
                Some(n) => self.buf.extend(&self.chunk[..n]),
                None if self.buf.pending() == 0 => return Ok(None),
                None => return Err(StreamError::Truncated),
            }
        }
    }

    /// Writes one frame; returns its size on the wire.
    pub async fn write(&mut self, frame: &Frame) -> Result<usize, StreamError> {
        self.scratch.clear();
        encode_frame(frame, &mut self.scratch);
        self.send.write_all(&self.scratch).await?;
        Ok(self.scratch.len())
    }

    /// Says why we are closing, then finishes the stream and gives the peer
    /// `grace` to read it before the caller closes the connection.
    pub async fn close_with(&mut self, reason: &str, grace: std::time::Duration) {
        let _ = self
            .write(&Frame::Close {
                reason: reason.to_owned(),
            })
            .await;
        let _ = self.send.finish();
        let _ = tokio::time::timeout(grace, self.send.stopped()).await;
    }
}
