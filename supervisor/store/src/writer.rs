//! The store's one writer thread: takes the first waiting write, then
//! everything else already queued (up to [`GROUP_WEIGHT`] charges), and
//! commits the group as ONE transaction, so one fsync pays for many writes
//! of every kind (agents' positions, charges, checkpoints, workflows).
//!
//! A caller either waits for its write's commit ([`Writer::wait`],
//! [`Writer::wait_blocking`]) or queues it and goes on
//! ([`Writer::queue`]); a failed commit of queued writes is counted and
//! reported by the next [`Write::Barrier`] as [`StoreError::Lost`].
//!
//! Under load (the last group held more than one write) a group waits for
//! company until [`GROUP_WAIT`] after the last commit began, so the store
//! commits at most about once per `GROUP_WAIT` however many writers there
//! are; an idle store commits a lone write at once.
//!
//! Back-pressure: at most [`QUEUE_WRITES`] writes wait; past it a sender
//! waits too (an async one on the blocking pool, counted in
//! [`Writer::full`]). Nothing is ever dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::backend::{Backend, Done, Write};
use crate::error::StoreError;

/// Writes waiting for the writer before senders wait.
pub const QUEUE_WRITES: usize = 4096;
/// Weight (charges count one each) after which a group takes no more.
pub const GROUP_WEIGHT: usize = 20_000;
/// Under load (the last group held more than one write), the least time
/// from one commit's start to the next: fewer commits, hence fewer fsyncs,
/// each acknowledging more. With 2 ms, 1,000 agents' batches a second made
/// ~380 commits of ~2.7 writes, and the fsyncs alone were 9 % of the
/// supervisor's CPU; ~7 % at 10 ms (at most ~100 commits a second), ~5 % at
/// 20 ms. A write waits at most this much longer for its acknowledgement
/// (an agent's next batch comes a second later).
pub const GROUP_WAIT: Duration = Duration::from_millis(20);

enum Reply {
    /// Queued: a failure is counted for the next barrier.
    Queued,
    Async(oneshot::Sender<Result<Done, StoreError>>),
    Blocking(SyncSender<Result<Done, StoreError>>),
}

struct Pending {
    write: Write,
    reply: Reply,
}

#[derive(Default)]
struct Shared {
    /// Queued writes whose commit failed since a barrier reported it: their
    /// weight and the last error.
    lost: Mutex<Option<(u64, String)>>,
    /// Times a sender found the queue full.
    full: AtomicU64,
}

/// Handle to the writer thread; cheap to clone. The thread stops when every
/// handle is dropped, after committing what was queued.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: SyncSender<Pending>,
    shared: Arc<Shared>,
}

impl Writer {
    pub(crate) fn start(backend: impl Backend) -> std::io::Result<Writer> {
        let (tx, rx) = sync_channel(QUEUE_WRITES);
        let shared = Arc::new(Shared::default());
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("vcp-store".into())
            .spawn(move || run(backend, rx, &thread))?;
        Ok(Writer { tx, shared })
    }

    /// Times a sender found the queue full and waited.
    pub(crate) fn full(&self) -> u64 {
        self.shared.full.load(Ordering::Relaxed)
    }

    fn count_full(&self) {
        let n = self.shared.full.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(times = n, "store queue full: writers wait for the commit");
        }
    }

    /// Sends, waiting on this thread while the queue is full.
    fn send_blocking(&self, pending: Pending) -> Result<(), StoreError> {
        match self.tx.try_send(pending) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(p)) => {
                self.count_full();
                self.tx.send(p).map_err(|_| StoreError::Closed)
            }
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }

    /// Queues `write` for the next group and returns at once (waiting only
    /// while the queue is full).
    pub(crate) fn queue(&self, write: Write) -> Result<(), StoreError> {
        self.send_blocking(Pending {
            write,
            reply: Reply::Queued,
        })
    }

    /// Writes and waits for the commit, from async code: a full queue is
    /// waited on from the blocking pool, never on the runtime's threads.
    pub(crate) async fn wait(&self, write: Write) -> Result<Done, StoreError> {
        let (done, outcome) = oneshot::channel();
        let pending = Pending {
            write,
            reply: Reply::Async(done),
        };
        match self.tx.try_send(pending) {
            Ok(()) => {}
            Err(TrySendError::Full(p)) => {
                self.count_full();
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(p).is_ok())
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .then_some(())
                    .ok_or(StoreError::Closed)?;
            }
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    /// Writes and waits for the commit, blocking this thread (off the async
    /// runtime, or where blocking on one commit is what was meant).
    pub(crate) fn wait_blocking(&self, write: Write) -> Result<Done, StoreError> {
        let (done, outcome) = sync_channel(1);
        self.send_blocking(Pending {
            write,
            reply: Reply::Blocking(done),
        })?;
        outcome.recv().map_err(|_| StoreError::Closed)?
    }
}

fn run(mut backend: impl Backend, rx: Receiver<Pending>, shared: &Shared) {
    let mut entries = backend.entries();
    let mut last_group = 0;
    let mut last_commit = Instant::now();
    while let Ok(first) = rx.recv() {
        let mut until = (last_group > 1).then(|| last_commit + GROUP_WAIT);
        let mut weight = first.write.weight();
        let (mut writes, mut replies) = (vec![first.write], vec![first.reply]);
        while weight < GROUP_WEIGHT {
            let more = match (rx.try_recv(), until.take()) {
                (Ok(more), keep) => {
                    until = keep;
                    more
                }
                // Asleep once until the group's time is up, then whatever
                // came meanwhile: one wake-up per group, not one per write
                // (a thread woken a thousand times a second spent more in
                // being switched to than in SQLite).
                (Err(TryRecvError::Empty), Some(until)) => {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    continue;
                }
                (Err(_), _) => break,
            };
            weight += more.write.weight();
            writes.push(more.write);
            replies.push(more.reply);
        }
        last_group = writes.len();
        last_commit = Instant::now();
        let outcomes = backend.commit(&writes).unwrap_or_else(|e| {
            let error = e.to_string();
            tracing::error!(%error, writes = writes.len(), weight, "store commit failed");
            (0..writes.len())
                .map(|_| Err(StoreError::Commit(error.clone())))
                .collect()
        });
        for ((write, reply_to), outcome) in writes.iter().zip(replies).zip(outcomes) {
            let outcome = match outcome {
                Ok(Done::Rows(n)) => {
                    entries += n as u64;
                    Ok(Done::Rows(n))
                }
                Ok(_) if matches!(write, Write::Barrier) => barrier(shared, entries),
                other => other,
            };
            reply(reply_to, outcome, write, shared);
        }
    }
}

/// What a barrier reports: the losses since the last one, or the count.
fn barrier(shared: &Shared, entries: u64) -> Result<Done, StoreError> {
    let lost = shared.lost.lock().unwrap_or_else(|p| p.into_inner()).take();
    match lost {
        Some((weight, error)) => Err(StoreError::Lost { weight, error }),
        None => Ok(Done::Entries(entries)),
    }
}

fn reply(reply: Reply, outcome: Result<Done, StoreError>, write: &Write, shared: &Shared) {
    match (reply, outcome) {
        (Reply::Queued, Ok(_)) => {}
        (Reply::Queued, Err(e)) => {
            let mut lost = shared.lost.lock().unwrap_or_else(|p| p.into_inner());
            let entry = lost.get_or_insert((0, String::new()));
            entry.0 += write.weight() as u64;
            entry.1 = e.to_string();
        }
        (Reply::Async(done), outcome) => {
            let _ = done.send(outcome);
        }
        (Reply::Blocking(done), outcome) => {
            let _ = done.send(outcome);
        }
    }
}
