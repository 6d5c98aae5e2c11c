//! The byte pipe under a session: the one bidirectional QUIC stream of a
//! connection, shared by the agent and module drivers. The sessions
//! (`vcp_common::session`) decide everything; this only moves bytes.

use std::time::{Duration, Instant};

use vcp_common::session::Close;

/// How long a refused peer gets to read our in-band reason before the
/// connection close overtakes it.
pub const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Most bytes taken from the stream at a time: one burst for the session.
const CHUNK: usize = 64 * 1024;

/// What one read brought: the received bytes themselves, held by quinn's
/// packet buffer until the session took them (no buffer of our own per
/// connection).
pub enum Read {
    Bytes(bytes::Bytes),
    /// The peer finished its side of the stream.
    Finished,
    /// The connection or stream went away.
    Lost(String),
}

/// The session's stream, once the peer opened it.
pub struct Pipe {
    pub send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl Pipe {
    /// Waits for the peer's stream until `deadline`; `Ok(None)` when the
    /// deadline passed first.
    pub async fn accept(
        conn: &quinn::Connection,
        deadline: Option<Instant>,
    ) -> Result<Option<Pipe>, quinn::ConnectionError> {
        let accept = conn.accept_bi();
        let streams = match deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), accept).await {
                Ok(r) => r?,
                Err(_) => return Ok(None),
            },
            None => accept.await?,
        };
        let (send, recv) = streams;
        Ok(Some(Pipe { send, recv }))
    }

    /// The next bytes of the stream, in order. Cancel-safe.
    pub async fn read(&mut self) -> Read {
        match self.recv.read_chunk(CHUNK, true).await {
            Ok(Some(chunk)) => Read::Bytes(chunk.bytes),
            Ok(None) => Read::Finished,
            Err(e) => Read::Lost(e.to_string()),
        }
    }

    /// Writes what the session produced.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.send.write_all(bytes).await.map_err(|e| e.to_string())
    }
}

/// Ends a connection the way its session ended: a session that closed on
/// its own side wrote a `Close` frame (in `last`), which the peer gets
/// [`CLOSE_GRACE`] to read before the connection is closed with the code.
pub async fn close(conn: &quinn::Connection, pipe: Option<&mut Pipe>, last: &[u8], c: &Close) {
    if let Some(p) = pipe {
        if p.write(last).await.is_ok() && !c.by_peer {
            let _ = p.send.finish();
            let _ = tokio::time::timeout(CLOSE_GRACE, p.send.stopped()).await;
        }
    }
    conn.close(c.code.into(), c.reason.as_bytes());
}

/// Sleeps until `at`, or forever without one.
pub async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
