//! The uplink: owns the spool, keeps one QUIC connection to the supervisor,
//! sends every spooled batch, and forgets a batch only once the supervisor
//! acknowledged it. Reconnects with exponential backoff and jitter.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use vcp_common::batch::{Batch, SeriesTable};
use vcp_common::codec::{BatchEncoder, CodecError};
use vcp_common::frame::{Applied, Configure, Frame, Hello, PROTOCOL_VERSION};
use vcp_common::protocol::HELLO_TIMEOUT;
use vcp_transport::framed::{Framed, StreamError};

use crate::sampler::Sampled;
use crate::spool::{Spool, SpoolConfig};
use crate::uplink_status::UplinkStatus;

/// How the uplink reaches the supervisor.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub agent_id: String,
    pub hostname: String,
    pub supervisor: SocketAddr,
    /// Name expected in the supervisor's certificate.
    pub server_name: String,
    /// Where and how much the spool keeps.
    pub spool: SpoolConfig,
    pub zstd_level: i32,
    pub max_frame: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

/// Transfer counters, for reports and the operator.
#[derive(Debug, Default)]
pub struct UplinkCounters {
    /// Application frame bytes written (all frames, batches resent included).
    pub wire_bytes: AtomicU64,
    /// UDP bytes sent, as quinn counted them, over all connections.
    pub udp_bytes: AtomicU64,
    pub batches_sent: AtomicU64,
    pub connections: AtomicU64,
    /// Sequence number of the newest spooled batch.
    pub last_seq: AtomicU64,
    /// Highest sequence number the supervisor acknowledged.
    pub acked_seq: AtomicU64,
    /// Gaps reported to the supervisor (`Dropped` frames).
    pub gaps_reported: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Stream(#[from] StreamError),
    #[error("encoding a batch: {0}")]
    Codec(#[from] CodecError),
    #[error("reading the spool back: {0}")]
    Spool(#[from] std::io::Error),
    #[error("the supervisor refused us: {0}")]
    Refused(String),
    #[error("no Welcome within {0:?}")]
    NoWelcome(Duration),
    #[error("the supervisor ended the stream")]
    Ended,
    #[error("unexpected frame from supervisor")]
    Unexpected,
    #[error("the spool dropped batches not yet sent; reconnecting to report the gap first")]
    Gap,
}

enum Exit {
    /// The sampler stopped: the agent is shutting down.
    Shutdown,
}

struct State {
    cfg: UplinkConfig,
    /// How to connect: the latest credential (renewal replaces it).
    client: watch::Receiver<quinn::ClientConfig>,
    spool: Spool,
    table: SeriesTable,
    status: Arc<UplinkStatus>,
    counters: Arc<UplinkCounters>,
    rx: mpsc::Receiver<Sampled>,
    /// Configurations to the applier, outcomes back.
    configure: mpsc::Sender<Configure>,
    outcomes: mpsc::Receiver<Applied>,
    /// Highest sequence number sent on the current connection.
    sent: u64,
    /// The spool dropped a batch this connection had not sent yet.
    unsent_dropped: bool,
}

impl State {
    /// Takes a closed window into the spool, durably; returns it numbered.
    fn accept(&mut self, s: Sampled) -> Batch {
        for def in &s.new_series {
            let id = self.table.intern(&def.resource, &def.metric, def.exp);
            debug_assert_eq!(id, def.id, "sampler and uplink series tables diverged");
            self.spool.define(def);
        }
        let mut fresh = s.batch;
        let pushed = self.spool.push(&mut fresh);
        self.spool.sync();
        self.counters.last_seq.store(pushed.seq, Ordering::Relaxed);
        if pushed.dropped_readings > 0 || pushed.dropped > 0 {
            self.status.add_dropped(pushed.dropped_readings);
        }
        if pushed.first_dropped.is_some_and(|f| f > self.sent) {
            self.unsent_dropped = true;
        }
        self.status.set_spooled(self.spool.len() as u64);
        fresh
    }

    /// Runs `fut` while still taking batches into the spool. `None` when the
    /// sampler stopped first.
    async fn while_sampling<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                s = self.rx.recv() => match s {
                    Some(s) => {
                        self.accept(s);
                    }
                    None => return None,
                },
            }
        }
    }
}

/// Runs the uplink until the sampler's channel closes; then sends what it
/// can within a short grace period and closes the connection.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    cfg: UplinkConfig,
    client: watch::Receiver<quinn::ClientConfig>,
    rx: mpsc::Receiver<Sampled>,
    applier: (mpsc::Sender<Configure>, mpsc::Receiver<Applied>),
    status: Arc<UplinkStatus>,
    counters: Arc<UplinkCounters>,
    spool: Spool,
    table: SeriesTable,
) -> std::io::Result<()> {
    let bind: SocketAddr = if cfg.supervisor.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid literal")
    } else {
        "[::]:0".parse().expect("valid literal")
    };
    let endpoint = quinn::Endpoint::client(bind)?;
    let mut st = State {
        client,
        spool,
        cfg,
        table,
        status,
        counters,
        rx,
        configure: applier.0,
        outcomes: applier.1,
        sent: 0,
        unsent_dropped: false,
    };
    let mut backoff = st.cfg.backoff_min;
    loop {
        let mut welcomed = false;
        match session(&endpoint, &mut st, &mut welcomed).await {
            Ok(Exit::Shutdown) => break,
            Err(e) => warn!(supervisor = %st.cfg.supervisor, error = %e, "uplink down; will retry"),
        }
        if welcomed {
            backoff = st.cfg.backoff_min;
        }
        // Full jitter: spread reconnects of a fleet after a supervisor restart.
        let delay = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
        backoff = (backoff * 2).min(st.cfg.backoff_max);
        if st.while_sampling(tokio::time::sleep(delay)).await.is_none() {
            break;
        }
    }
    endpoint.close(0u32.into(), b"agent stopped");
    endpoint.wait_idle().await;
    Ok(())
}

struct Link {
    conn: quinn::Connection,
    framed: Framed,
    udp_base: u64,
}

impl Link {
    async fn write(
        &mut self,
        frame: &Frame,
        counters: &UplinkCounters,
    ) -> Result<(), SessionError> {
        let n = self.framed.write(frame).await?;
        counters.wire_bytes.fetch_add(n as u64, Ordering::Relaxed);
        let udp = self.conn.stats().udp_tx.bytes;
        counters
            .udp_bytes
            .fetch_add(udp - self.udp_base, Ordering::Relaxed);
        self.udp_base = udp;
        Ok(())
    }

    async fn read(&mut self) -> Result<Frame, SessionError> {
        match self.framed.read().await? {
            Some((f, _)) => Ok(f),
            None => Err(SessionError::Ended),
        }
    }
}

async fn send_batch(
    link: &mut Link,
    enc: &mut BatchEncoder,
    st: &mut State,
    batch: &vcp_common::batch::Batch,
) -> Result<(), SessionError> {
    let mut payload = Vec::new();
    enc.encode(batch, &st.table, &mut payload)?;
    link.write(&Frame::Batch(payload), &st.counters).await?;
    st.counters.batches_sent.fetch_add(1, Ordering::Relaxed);
    st.sent = st.sent.max(batch.seq);
    Ok(())
}

/// Sends every held batch past what was sent, taking new windows into the
/// spool between batches (a long backlog must not stall the sampler).
async fn send_backlog(
    link: &mut Link,
    enc: &mut BatchEncoder,
    st: &mut State,
) -> Result<(), SessionError> {
    loop {
        let backlog = st.spool.backlog(st.sent);
        let mut any = false;
        for b in backlog {
            let b = b?;
            send_batch(link, enc, st, &b).await?;
            any = true;
            while let Ok(s) = st.rx.try_recv() {
                st.accept(s);
            }
            if st.unsent_dropped {
                return Err(SessionError::Gap);
            }
        }
        if !any {
            return Ok(());
        }
    }
}

fn on_ack(st: &mut State, seq: u64) {
    st.spool.ack(seq);
    st.counters.acked_seq.fetch_max(seq, Ordering::Relaxed);
    st.status.record_ack(Instant::now());
    st.status.set_spooled(st.spool.len() as u64);
}

async fn session(
    endpoint: &quinn::Endpoint,
    st: &mut State,
    welcomed: &mut bool,
) -> Result<Exit, SessionError> {
    let client = st.client.borrow().clone();
    let connecting = endpoint.connect_with(client, st.cfg.supervisor, &st.cfg.server_name)?;
    let Some(conn) = st.while_sampling(connecting).await else {
        return Ok(Exit::Shutdown);
    };
    let conn = conn?;
    let served = serve(conn.clone(), st, welcomed).await;
    // When the connection is gone its close reason (a revoked certificate,
    // say) tells more than the stream's "connection lost".
    served.map_err(|e| match (e, conn.close_reason()) {
        (SessionError::Stream(s), Some(reason)) if s.is_connection_lost() => reason.into(),
        (e, _) => e,
    })
}

/// The session on connection `conn`.
async fn serve(
    conn: quinn::Connection,
    st: &mut State,
    welcomed: &mut bool,
) -> Result<Exit, SessionError> {
    let Some(streams) = st.while_sampling(conn.open_bi()).await else {
        return Ok(Exit::Shutdown);
    };
    let (send, recv) = streams?;
    st.counters.connections.fetch_add(1, Ordering::Relaxed);
    let mut link = Link {
        udp_base: 0,
        conn,
        framed: Framed::new(send, recv, st.cfg.max_frame),
    };
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        agent_id: st.cfg.agent_id.clone(),
        hostname: st.cfg.hostname.clone(),
        incarnation: st.spool.incarnation(),
        first_seq: st.spool.first_seq(),
    };
    link.write(&Frame::Hello(hello), &st.counters).await?;
    let welcome = tokio::time::timeout(HELLO_TIMEOUT, link.read());
    let Some(welcome) = st.while_sampling(welcome).await else {
        return Ok(Exit::Shutdown);
    };
    let applied = match welcome.map_err(|_| SessionError::NoWelcome(HELLO_TIMEOUT))?? {
        Frame::Welcome(w) => {
            let applied = w.last_applied.unwrap_or(0);
            on_ack(st, applied);
            applied
        }
        Frame::Close { reason } => return Err(SessionError::Refused(reason)),
        _ => return Err(SessionError::Unexpected),
    };
    *welcomed = true;
    info!(supervisor = %st.cfg.supervisor, resend = st.spool.len(), "connected to supervisor");

    // What the spool could not keep is said before anything after it.
    st.sent = applied;
    st.unsent_dropped = false;
    for (up_to, readings) in st.spool.gaps_after(applied) {
        warn!(
            up_to,
            readings, "reporting batches the spool could not keep"
        );
        link.write(&Frame::Dropped { up_to, readings }, &st.counters)
            .await?;
        st.counters.gaps_reported.fetch_add(1, Ordering::Relaxed);
        st.sent = st.sent.max(up_to);
    }
    // A fresh encoder per connection: its dictionary and compression context
    // start empty on both sides, so spooled batches re-encode cleanly.
    let mut enc = BatchEncoder::new(st.cfg.zstd_level)?;
    send_backlog(&mut link, &mut enc, st).await?;
    loop {
        tokio::select! {
            s = st.rx.recv() => match s {
                Some(s) => {
                    let fresh = st.accept(s);
                    if st.unsent_dropped {
                        return Err(SessionError::Gap);
                    }
                    // In the steady state the new batch is the next to send:
                    // no need to read the spool back.
                    if fresh.seq == st.sent + 1 {
                        send_batch(&mut link, &mut enc, st, &fresh).await?;
                    } else {
                        send_backlog(&mut link, &mut enc, st).await?;
                    }
                }
                None => {
                    drain(&mut link, st).await;
                    return Ok(Exit::Shutdown);
                }
            },
            Some(applied) = st.outcomes.recv() => {
                link.write(&Frame::Applied(applied), &st.counters).await?;
            }
            f = link.read() => match f? {
                Frame::Ack { seq } => on_ack(st, seq),
                Frame::Configure(c) => {
                    if let Err(e) = st.configure.try_send(c) {
                        // The applier is far behind: say so rather than queue forever.
                        let c = match e {
                            mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
                        };
                        let applied = Applied { id: c.id, ok: false, detail: "the agent's applier is overloaded".into() };
                        link.write(&Frame::Applied(applied), &st.counters).await?;
                    }
                }
                Frame::Close { reason } => return Err(SessionError::Refused(reason)),
                _ => return Err(SessionError::Unexpected),
            },
        }
    }
}

/// On shutdown: wait briefly for the last acknowledgements, then say goodbye.
async fn drain(link: &mut Link, st: &mut State) {
    let last = st.spool.last_seq();
    let wait = async {
        while !st.spool.is_empty() {
            match link.read().await {
                Ok(Frame::Ack { seq }) => on_ack(st, seq),
                _ => break,
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(2), wait)
        .await
        .is_err()
    {
        debug!(
            last,
            unacked = st.spool.len(),
            "shutdown before every batch was acknowledged"
        );
    }
    link.framed
        .close_with("agent shutting down", Duration::from_millis(500))
        .await;
    link.conn.close(0u32.into(), b"agent shutting down");
}
