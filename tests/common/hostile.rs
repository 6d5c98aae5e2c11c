//! A hostile peer: speaks the real protocol over real QUIC with a valid
//! certificate of the fleet, and sends whatever a test wants — including
//! what no honest agent or module would.

use std::net::SocketAddr;
use std::time::Duration;

use vcp_common::frame::{encode_frame, Frame, Hello, PROTOCOL_VERSION};
use vcp_common::identity::{TlsMaterial, SUPERVISOR_NAME};
use vcp_common::protocol::FrameBuffer;
use vcp_common::varint;

/// One connection of a hostile peer.
pub struct Hostile {
    pub endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
}

/// How the supervisor ended a connection, and what it said before.
#[derive(Debug)]
pub struct Ending {
    pub code: u64,
    pub reason: String,
    pub frames: Vec<Frame>,
}

impl Hostile {
    /// Connects to `addr` with `material`, speaking `alpn`.
    pub async fn connect(addr: SocketAddr, material: &TlsMaterial, alpn: &[u8]) -> Hostile {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(
            vcp_transport::tls::client_config(material, alpn, 1 << 20).unwrap(),
        );
        let conn = endpoint
            .connect(addr, SUPERVISOR_NAME)
            .unwrap()
            .await
            .expect("the handshake succeeds");
        Hostile { endpoint, conn }
    }

    /// Opens the session's stream and writes `bytes` on it.
    pub async fn open(&self, bytes: &[u8]) -> (quinn::SendStream, quinn::RecvStream) {
        let (mut send, recv) = self.conn.open_bi().await.unwrap();
        send.write_all(bytes).await.unwrap();
        (send, recv)
    }

    /// Sends `frames` on a new stream and waits (at most 20 s) until the
    /// supervisor closes the connection.
    pub async fn send_and_wait(&self, frames: &[Frame]) -> Ending {
        let (_send, recv) = self.open(&encode(frames)).await;
        self.ending(recv).await
    }

    /// Reads what the supervisor says until it closes the connection.
    pub async fn ending(&self, mut recv: quinn::RecvStream) -> Ending {
        let mut buf = FrameBuffer::new(16 << 20);
        let mut chunk = vec![0; 16 * 1024];
        let mut frames = Vec::new();
        while let Ok(Ok(Some(n))) =
            tokio::time::timeout(Duration::from_secs(20), recv.read(&mut chunk)).await
        {
            buf.extend(&chunk[..n]);
            while let Ok(Some((f, _))) = buf.next_frame() {
                frames.push(f);
            }
        }
        let (code, reason) = self.closed().await;
        Ending {
            code,
            reason,
            frames,
        }
    }

    /// The code and reason the supervisor closed the connection with.
    pub async fn closed(&self) -> (u64, String) {
        match tokio::time::timeout(Duration::from_secs(20), self.conn.closed())
            .await
            .expect("closed by the supervisor")
        {
            quinn::ConnectionError::ApplicationClosed(c) => (
                c.error_code.into_inner(),
                String::from_utf8_lossy(&c.reason).into_owned(),
            ),
            other => panic!("unexpected close: {other}"),
        }
    }
}

pub fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        encode_frame(f, &mut out);
    }
    out
}

pub fn hello(id: &str) -> Frame {
    Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        agent_id: id.into(),
        hostname: "hostile".into(),
        incarnation: 1,
        first_seq: 1,
    })
}

/// A batch payload no encoder makes: a series defined with id `id`, a
/// column of it, one value. Compressed as one whole zstd frame, which a
/// supervisor's decoder takes like the start of a stream.
pub fn batch_with_series_id(id: u32, resource: &str) -> Frame {
    let mut r = vec![0x03, 0]; // SERIES | LAYOUT; seq = 1
    varint::put_u64(&mut r, 1);
    varint::put_u64(&mut r, u64::from(id));
    varint::put_i64(&mut r, 0);
    for s in [resource, "cpu.utilization"] {
        varint::put_u64(&mut r, s.len() as u64);
        r.extend_from_slice(s.as_bytes());
    }
    varint::put_u64(&mut r, 1); // one timestamp
    varint::put_u64(&mut r, 1); // one column
    varint::put_i64(&mut r, i64::from(id));
    varint::put_u64(&mut r, 0);
    varint::put_u64(&mut r, 1);
    varint::put_i64(&mut r, 1_700_000_000_000);
    r.extend_from_slice(&[1, 1]); // change bitmap: column 0 changed
    varint::put_i64(&mut r, 5);
    Frame::Batch(zstd::bulk::compress(&r, 3).unwrap())
}

/// Resident memory of process `pid`, bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}
