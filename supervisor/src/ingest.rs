//! Ingest: one task per agent connection, a thin driver of the agent's
//! [`AgentSession`]. The session decides; this task moves the stream's
//! bytes into it and its answers out, applies batches to the host's view,
//! makes the agent's record durable when the session asks (and only then
//! lets it acknowledge), and hands configurations and their outcomes
//! between the dispatcher and the agent.
//!
//! Anything wrong on one connection closes that connection with a reason;
//! nothing here can reach another agent.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn, Instrument};
use vcp_common::batch::Batch;
use vcp_common::frame::Configure;
use vcp_common::protocol::close;
use vcp_common::session::agent::{AgentEvent, AgentLimits, AgentRecord, AgentSession};
use vcp_common::session::Close;

use crate::dispatch::{DispatchHandle, DispatchMsg};
use crate::fleet::{AgentEntry, Fleet};
use crate::live::Claim;
use crate::stream::{self, Pipe, Read};
use crate::unix_ms;
use vcp_core::view::{Carry, HostCell};

/// Configurations queued for one connected agent.
const CONFIGURE_QUEUE: usize = 64;

static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Tells the dispatcher when the agent's session ends, however it ends.
struct Online {
    dispatch: DispatchHandle,
    agent: String,
    tx: tokio::sync::mpsc::Sender<Configure>,
}

impl Drop for Online {
    fn drop(&mut self) {
        self.dispatch.disconnected(&self.agent, self.tx.clone());
    }
}

/// Serves the connection of agent `agent_id` (named by its certificate)
/// until it ends; a failure closes the connection with its reason and is
/// logged.
pub async fn serve(
    fleet: Arc<Fleet>,
    dispatch: Option<DispatchHandle>,
    conn: quinn::Connection,
    agent_id: String,
    limits: AgentLimits,
    claim: Claim,
) {
    let span = tracing::info_span!("agent", remote = %conn.remote_address(), agent_id = %agent_id);
    async move {
        let agent = fleet.agent(&agent_id);
        // A replaced session (its connection is closed by the claim) lets
        // go of the record promptly.
        let Ok(mut record) = tokio::time::timeout(limits.hello_timeout, agent.record.lock()).await
        else {
            warn!("the agent's previous session did not end in time");
            conn.close(
                close::INTERNAL.into(),
                b"the previous session has not ended",
            );
            return;
        };
        let session = match AgentSession::new(&agent_id, *record, limits, Instant::now()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot start a batch decoder");
                conn.close(
                    close::INTERNAL.into(),
                    b"the supervisor cannot decode batches",
                );
                return;
            }
        };
        let mut d = Driver {
            cell: fleet.view.host(&agent_id),
            fleet: &fleet,
            agent: &agent,
            dispatch,
            conn: &conn,
            session,
            number: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            carry: Carry::default(),
            online: None,
            udp_seen: (0, 0),
        };
        d.carry = Carry::from_snapshot(&d.cell.load());
        let end = d.run(&mut record).await;
        drop(d);
        agent.stats.connected.store(false, Ordering::Relaxed);
        match end {
            End::Closed(c) if c.by_peer => info!(reason = %c.reason, "agent disconnected"),
            End::Closed(c) => {
                warn!(code = c.code, reason = %c.reason, "closed the agent's connection")
            }
            End::Lost(why) => info!(reason = %why, "agent connection ended"),
        }
        drop(claim);
    }
    .instrument(span)
    .await
}

enum Wake {
    Read(Read),
    Timeout,
    Configure(Configure),
    Closed(quinn::ConnectionError),
}

/// The next configuration, or never before the agent is online.
async fn recv(rx: Option<&mut tokio::sync::mpsc::Receiver<Configure>>) -> Option<Configure> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

enum End {
    Closed(Close),
    Lost(String),
}

struct Driver<'a> {
    fleet: &'a Fleet,
    agent: &'a AgentEntry,
    dispatch: Option<DispatchHandle>,
    conn: &'a quinn::Connection,
    session: AgentSession,
    /// This session's number: the view's dictionary belongs to it.
    number: u64,
    cell: Arc<HostCell>,
    carry: Carry,
    online: Option<(Online, tokio::sync::mpsc::Receiver<Configure>)>,
    /// UDP bytes (received, sent) on this connection already counted.
    udp_seen: (u64, u64),
}

impl Driver<'_> {
    async fn run(&mut self, record: &mut AgentRecord) -> End {
        let mut pipe = match Pipe::accept(self.conn, self.session.poll_timeout()).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => None,
            Err(e) => return End::Lost(e.to_string()),
        };
        if pipe.is_none() {
            self.session.handle_timeout(Instant::now());
        }
        loop {
            while let Some(ev) = self.session.poll_event() {
                if let Some(end) = self.on_event(ev, &mut pipe, record).await {
                    return end;
                }
            }
            let Some(p) = pipe.as_mut() else {
                return End::Lost("no stream opened".into());
            };
            let out = self.session.take_transmit();
            if let Err(e) = p.write(&out).await {
                return End::Lost(e);
            }
            let reading = self.session.wants_input(Instant::now());
            let timeout = self.session.poll_timeout();
            let configs = self.online.as_mut().map(|(_, rx)| rx);
            let wake = tokio::select! {
                r = p.read(), if reading => Wake::Read(r),
                _ = stream::until(timeout) => Wake::Timeout,
                Some(c) = recv(configs) => Wake::Configure(c),
                // Noticed even while not reading (a throttled agent).
                e = self.conn.closed() => Wake::Closed(e),
            };
            match wake {
                Wake::Read(Read::Bytes(bytes)) => {
                    self.count_udp();
                    self.session.handle_input(&bytes, Instant::now());
                }
                Wake::Read(Read::Finished) => self.session.handle_finished(Instant::now()),
                Wake::Read(Read::Lost(why)) => return End::Lost(why),
                Wake::Timeout => self.session.handle_timeout(Instant::now()),
                Wake::Configure(c) => self.session.send_configure(c),
                Wake::Closed(e) => return End::Lost(e.to_string()),
            }
        }
    }

    fn count_udp(&mut self) {
        let stats = &self.agent.stats;
        stats.last_seen_ms.store(unix_ms(), Ordering::Relaxed);
        let quic = self.conn.stats();
        let (rx, tx) = (quic.udp_rx.bytes, quic.udp_tx.bytes);
        stats
            .udp_bytes
            .fetch_add(rx.saturating_sub(self.udp_seen.0), Ordering::Relaxed);
        stats
            .udp_sent_bytes
            .fetch_add(tx.saturating_sub(self.udp_seen.1), Ordering::Relaxed);
        self.udp_seen = (rx, tx);
    }

    fn view(&mut self, new_series: &[vcp_common::batch::SeriesDef], batch: &Batch) {
        let next = self
            .cell
            .load()
            .with_batch(self.number, new_series, batch, &mut self.carry);
        self.cell.store(next);
        if let Some(&sampled) = batch.timestamps.last() {
            let ms = unix_ms().saturating_sub(sampled).max(0) as u64;
            self.fleet.ingest_latency.record_us(ms.saturating_mul(1000));
        }
    }

    async fn on_event(
        &mut self,
        ev: AgentEvent,
        pipe: &mut Option<Pipe>,
        record: &mut AgentRecord,
    ) -> Option<End> {
        let stats = &self.agent.stats;
        match ev {
            AgentEvent::Persist(r) => {
                match self.fleet.store.save_agent(&self.agent.id, r).await {
                    Ok(()) => {
                        *record = r;
                        stats.set_totals(&r.totals);
                        stats.last_seq.store(r.cursor.last_seq, Ordering::Relaxed);
                        self.session.committed(Instant::now());
                    }
                    Err(e) => self.session.persist_failed(&e.to_string()),
                }
                // Acknowledge at once, before the next burst's commit.
                if let Some(p) = pipe.as_mut() {
                    if let Err(e) = p.write(&self.session.take_transmit()).await {
                        return Some(End::Lost(e));
                    }
                }
            }
            AgentEvent::Connected { hello, skipped } => {
                stats.connected.store(true, Ordering::Relaxed);
                stats.connections.fetch_add(1, Ordering::Relaxed);
                info!(
                    incarnation = hello.incarnation,
                    last_seq = self.session.record().cursor.last_seq,
                    skipped,
                    hostname = %hello.hostname,
                    "agent connected"
                );
                if let Some(d) = &self.dispatch {
                    let (tx, rx) = tokio::sync::mpsc::channel(CONFIGURE_QUEUE);
                    d.connected(&self.agent.id, tx.clone()).await;
                    let online = Online {
                        dispatch: d.clone(),
                        agent: self.agent.id.clone(),
                        tx,
                    };
                    self.online = Some((online, rx));
                }
            }
            AgentEvent::Apply { new_series, batch } => {
                self.view(&new_series, &batch);
                self.session.recycle(batch);
            }
            AgentEvent::Define { new_series } => {
                debug!(series = new_series.len(), "a resent batch defined series");
                self.view(&new_series, &Batch::default());
            }
            AgentEvent::Dropped {
                up_to,
                readings,
                skipped,
            } => warn!(
                up_to,
                readings, skipped, "agent dropped batches from a full spool"
            ),
            AgentEvent::Applied(applied) => {
                if let Some(d) = &self.dispatch {
                    d.send(DispatchMsg::Applied {
                        agent: self.agent.id.clone(),
                        applied,
                    });
                }
            }
            AgentEvent::Closed(c) => {
                let last = self.session.take_transmit();
                stream::close(self.conn, pipe.as_mut(), &last, &c).await;
                return Some(End::Closed(c));
            }
        }
        None
    }
}
