//! Ingest: one task per agent connection. It checks who the agent is,
//! decodes its batches, applies each exactly once to the view, makes the
//! agent's position durable, and only then acknowledges.
//!
//! Anything wrong on one connection closes that connection with a reason;
//! no error here can reach another agent.

pub mod cursor;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::{debug, info, warn, Instrument};
use vcp_client::framed::{Framed, StreamError};
use vcp_common::batch::Batch;
use vcp_common::codec::{BatchDecoder, CodecError, Limits};
use vcp_common::frame::{Frame, Hello, Welcome, PROTOCOL_VERSION};
use vcp_common::protocol::{close, HELLO_TIMEOUT};

use crate::dispatch::{DispatchHandle, DispatchMsg};
use crate::fleet::{AgentEntry, Fleet};
use crate::store::StoreError;
use crate::tls::{check_agent, PeerError};
use crate::unix_ms;
use cursor::Admit;

/// Limits applied to every agent connection.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub max_frame: usize,
    pub batch: Limits,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_frame: vcp_common::protocol::DEFAULT_MAX_FRAME,
            batch: Limits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no stream opened within {0:?}")]
    NoStream(std::time::Duration),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("bad batch: {0}")]
    Batch(#[from] CodecError),
    #[error("expected {expected}, got {got}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    #[error("protocol version {theirs} not supported (this supervisor speaks {ours})")]
    Version { theirs: u16, ours: u16 },
    #[error("authentication: {0}")]
    Auth(#[from] PeerError),
    #[error("sequence gap: expected batch {expected}, got {got}")]
    Gap { expected: u64, got: u64 },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the agent ended the stream before its Hello")]
    NoHello,
}

impl IngestError {
    fn is_connection_lost(&self) -> bool {
        match self {
            IngestError::Connection(_) => true,
            IngestError::Stream(e) => e.is_connection_lost(),
            _ => false,
        }
    }

    fn close_code(&self) -> u32 {
        match self {
            IngestError::Auth(_) => close::AUTH,
            IngestError::Version { .. } => close::VERSION,
            _ => close::PROTOCOL,
        }
    }
}

/// How long a refused peer gets to read our in-band reason.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Tells the dispatcher when the agent's session ends, however it ends.
struct Online<'a> {
    dispatch: Option<&'a DispatchHandle>,
    agent: &'a str,
    tx: tokio::sync::mpsc::Sender<vcp_common::frame::Configure>,
}

impl Drop for Online<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.dispatch {
            d.send(DispatchMsg::Disconnected {
                agent: self.agent.to_owned(),
                tx: self.tx.clone(),
            });
        }
    }
}

/// Serves one agent connection until it ends; never returns an error: a
/// failure closes the connection with its reason and is logged.
pub async fn serve(
    fleet: Arc<Fleet>,
    dispatch: Option<DispatchHandle>,
    conn: quinn::Connection,
    limits: IngestLimits,
) {
    let span = tracing::info_span!("agent", remote = %conn.remote_address(), agent_id = tracing::field::Empty);
    async move {
        let mut agent = None;
        let result = run(&fleet, dispatch.as_ref(), &conn, &limits, &mut agent).await;
        if let Some(a) = &agent {
            a.stats.connected.store(false, Ordering::Relaxed);
        }
        match result {
            Ok(()) => info!("agent disconnected"),
            Err(e) if e.is_connection_lost() => info!(reason = %e, "agent connection ended"),
            Err(e) => {
                warn!(error = %e, "closing agent connection");
                conn.close(e.close_code().into(), e.to_string().as_bytes());
            }
        }
    }
    .instrument(span)
    .await
}

async fn run(
    fleet: &Fleet,
    dispatch: Option<&DispatchHandle>,
    conn: &quinn::Connection,
    limits: &IngestLimits,
    agent_slot: &mut Option<Arc<AgentEntry>>,
) -> Result<(), IngestError> {
    let (send, recv) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| IngestError::NoStream(HELLO_TIMEOUT))??;
    let mut framed = Framed::new(send, recv, limits.max_frame);
    let result = session(fleet, dispatch, conn, limits, agent_slot, &mut framed).await;
    if let Err(e) = &result {
        if !e.is_connection_lost() {
            // Say why in-band too, and let that (and any last Ack) arrive
            // before the connection close overtakes it.
            framed.close_with(&e.to_string(), CLOSE_GRACE).await;
        }
    }
    result
}

async fn session(
    fleet: &Fleet,
    dispatch: Option<&DispatchHandle>,
    conn: &quinn::Connection,
    limits: &IngestLimits,
    agent_slot: &mut Option<Arc<AgentEntry>>,
    framed: &mut Framed,
) -> Result<(), IngestError> {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, framed.read()).await {
        Err(_) => return Err(IngestError::NoStream(HELLO_TIMEOUT)),
        Ok(r) => match r? {
            Some((Frame::Hello(h), _)) => h,
            Some((other, _)) => {
                return Err(IngestError::Unexpected {
                    expected: "Hello",
                    got: other.frame_type().name(),
                })
            }
            None => return Err(IngestError::NoHello),
        },
    };
    admit_hello(conn, &hello)?;
    tracing::Span::current().record("agent_id", hello.agent_id.as_str());
    let agent = fleet.agent(&hello.agent_id);
    *agent_slot = Some(agent.clone());
    agent.replace_connection(conn);
    let mut record = agent.record.lock().await;
    let skipped = record.cursor.hello(hello.incarnation, hello.first_seq);
    record.totals.dropped_batches += skipped;
    fleet.store.save_agent(&agent.id, *record).await?;
    agent.stats.set_totals(&record.totals);
    agent
        .stats
        .last_seq
        .store(record.cursor.last_seq, Ordering::Relaxed);
    agent.stats.connected.store(true, Ordering::Relaxed);
    agent.stats.connections.fetch_add(1, Ordering::Relaxed);
    info!(
        incarnation = hello.incarnation,
        last_seq = record.cursor.last_seq,
        skipped,
        "agent connected"
    );
    framed
        .write(&Frame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            last_applied: Some(record.cursor.last_seq),
        }))
        .await?;

    let mut decoder = BatchDecoder::new(limits.batch)?;
    let cell = fleet.view.host(&agent.id);
    let empty = Batch::default();
    let mut udp_seen = conn.stats().udp_rx.bytes;
    // Configurations for this agent arrive here while it is connected.
    let (config_tx, mut configs) = tokio::sync::mpsc::channel(64);
    if let Some(d) = dispatch {
        d.send(DispatchMsg::Connected {
            agent: agent.id.clone(),
            tx: config_tx.clone(),
        });
    }
    let _online = Online {
        dispatch,
        agent: &agent.id,
        tx: config_tx,
    };
    loop {
        let (frame, wire) = tokio::select! {
            f = framed.read() => match f? {
                Some(f) => f,
                None => return Ok(()),
            },
            Some(c) = configs.recv() => {
                framed.write(&Frame::Configure(c)).await?;
                continue;
            }
        };
        agent.stats.last_seen_ms.store(unix_ms(), Ordering::Relaxed);
        let udp = conn.stats().udp_rx.bytes;
        agent
            .stats
            .udp_bytes
            .fetch_add(udp - udp_seen, Ordering::Relaxed);
        udp_seen = udp;
        match frame {
            Frame::Batch(payload) => {
                let decoded = decoder.decode(&payload)?;
                let seq = decoded.batch.seq;
                record.totals.wire_bytes += wire as u64;
                match record.cursor.admit(seq) {
                    Admit::Apply => {
                        let snap = cell.load();
                        cell.store(snap.with_batch(
                            hello.incarnation,
                            &decoded.new_series,
                            &decoded.batch,
                        ));
                        record.cursor.commit(seq);
                        record.totals.batches += 1;
                        record.totals.readings += decoded.batch.readings() as u64;
                    }
                    Admit::Duplicate => {
                        // The dictionary may grow on a resent batch: keep it.
                        if !decoded.new_series.is_empty() {
                            let snap = cell.load();
                            cell.store(snap.with_batch(
                                hello.incarnation,
                                &decoded.new_series,
                                &empty,
                            ));
                        }
                        record.totals.duplicates += 1;
                        debug!(seq, "duplicate batch discarded");
                    }
                    Admit::Gap { expected } => return Err(IngestError::Gap { expected, got: seq }),
                }
            }
            Frame::Dropped { up_to, readings } => {
                let skipped = record.cursor.skip_to(up_to);
                record.totals.dropped_batches += skipped;
                warn!(
                    up_to,
                    readings, skipped, "agent dropped batches from a full spool"
                );
            }
            Frame::Close { reason } => {
                info!(%reason, "agent closed its stream");
                return Ok(());
            }
            Frame::Applied(applied) => {
                if let Some(d) = dispatch {
                    d.send(DispatchMsg::Applied {
                        agent: agent.id.clone(),
                        applied,
                    });
                }
                continue;
            }
            other => {
                return Err(IngestError::Unexpected {
                    expected: "Batch, Dropped, Applied or Close",
                    got: other.frame_type().name(),
                })
            }
        }
        fleet.store.save_agent(&agent.id, *record).await?;
        agent.stats.set_totals(&record.totals);
        agent
            .stats
            .last_seq
            .store(record.cursor.last_seq, Ordering::Relaxed);
        framed
            .write(&Frame::Ack {
                seq: record.cursor.last_seq,
            })
            .await?;
    }
}

fn admit_hello(conn: &quinn::Connection, hello: &Hello) -> Result<(), IngestError> {
    if hello.protocol != PROTOCOL_VERSION {
        return Err(IngestError::Version {
            theirs: hello.protocol,
            ours: PROTOCOL_VERSION,
        });
    }
    check_agent(conn, &hello.agent_id)?;
    Ok(())
}
