//! The ledger's writer thread: owns the connection and commits in groups.
//!
//! Callers queue messages; the thread takes the first waiting message and
//! then everything else already queued (up to [`GROUP_CHARGES`] charges) and
//! commits it as ONE transaction, so one fsync pays for many charges.
//!
//! - [`Ledger::record`] is fire-and-forget: validated, queued, returns.
//! - [`Ledger::flush`] resolves once everything queued before it is
//!   committed; it reports a failed commit of fire-and-forget charges since
//!   the previous flush as [`LedgerError::Lost`].
//! - [`Ledger::record_durable`] resolves after its own commit, with the
//!   number of charges that were new (not already there by key).
//!
//! Back-pressure: the queue is bounded at [`QUEUE_MESSAGES`] messages; when
//! it is full a sender BLOCKS its thread until the writer takes the next
//! group (milliseconds at ≥ 100,000 charges/s). Nothing is ever dropped.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{checked, open_writer, sql, Charge, LedgerError, LedgerReader, StateRow};

/// Messages waiting for the writer before senders block.
pub const QUEUE_MESSAGES: usize = 4096;
/// Charges after which the writer stops adding messages to a group.
pub const GROUP_CHARGES: usize = 20_000;

enum Msg {
    Record(Vec<Charge>),
    Durable(
        Vec<Charge>,
        Vec<StateRow>,
        oneshot::Sender<Result<usize, LedgerError>>,
    ),
    Flush(oneshot::Sender<Result<u64, LedgerError>>),
    State(StateRow),
}

impl Msg {
    fn charges(&self) -> &[Charge] {
        match self {
            Msg::Record(c) | Msg::Durable(c, _, _) => c,
            Msg::Flush(_) | Msg::State(_) => &[],
        }
    }

    fn state(&self) -> &[StateRow] {
        match self {
            Msg::Durable(_, s, _) => s,
            Msg::State(s) => std::slice::from_ref(s),
            _ => &[],
        }
    }
}

/// Handle to the writer thread; cheap to clone. The thread stops when every
/// handle is dropped, after committing what was queued.
#[derive(Clone)]
pub struct Ledger {
    tx: SyncSender<Msg>,
}

impl Ledger {
    /// Opens (creating if needed) `dir/ledger.sqlite`, starts the writer and
    /// returns it with a read-only reader of the same file.
    pub fn open(dir: &Path) -> Result<(Ledger, LedgerReader), LedgerError> {
        let conn = open_writer(dir)?;
        let committed: i64 = conn
            .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
            .map_err(sql("count entries"))?;
        let reader = LedgerReader::open(dir)?;
        let (tx, rx) = sync_channel(QUEUE_MESSAGES);
        std::thread::Builder::new()
            .name("vcp-ledger".into())
            .spawn(move || writer(conn, rx, committed as u64))
            .map_err(|source| LedgerError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        Ok((Ledger { tx }, reader))
    }

    /// Queues charges for the next group commit and returns at once.
    /// Zero charges are skipped; an invalid charge refuses the whole batch.
    pub fn record(&self, charges: Vec<Charge>) -> Result<(), LedgerError> {
        let charges = checked(charges)?;
        if charges.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Msg::Record(charges))
            .map_err(|_| LedgerError::Closed)
    }

    /// Records charges and waits for their commit; returns how many were new.
    pub async fn record_durable(&self, charges: Vec<Charge>) -> Result<usize, LedgerError> {
        self.record_durable_with(charges, Vec::new()).await
    }

    /// Records charges and state rows in one transaction and waits for its
    /// commit: the state holds exactly when the charges do.
    pub async fn record_durable_with(
        &self,
        charges: Vec<Charge>,
        state: Vec<StateRow>,
    ) -> Result<usize, LedgerError> {
        let charges = checked(charges)?;
        if charges.is_empty() && state.is_empty() {
            return Ok(0);
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Durable(charges, state, done))
            .map_err(|_| LedgerError::Closed)?;
        wait.await.map_err(|_| LedgerError::Closed)?
    }

    /// Queues a state row for the next group commit (a checkpoint: the
    /// newest one written wins). Returns at once.
    pub fn save_state(&self, row: StateRow) -> Result<(), LedgerError> {
        self.tx
            .send(Msg::State(row))
            .map_err(|_| LedgerError::Closed)
    }

    /// Waits until everything queued before it is committed; returns the
    /// number of entries in the ledger.
    pub async fn flush(&self) -> Result<u64, LedgerError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Flush(done))
            .map_err(|_| LedgerError::Closed)?;
        wait.await.map_err(|_| LedgerError::Closed)?
    }
}

fn writer(mut conn: Connection, rx: Receiver<Msg>, mut committed: u64) {
    // Fire-and-forget charges whose commit failed since a flush last
    // reported it, and the last error.
    let mut lost: Option<(u64, String)> = None;
    while let Ok(first) = rx.recv() {
        let mut size = first.charges().len();
        let mut group = vec![first];
        while size < GROUP_CHARGES {
            let Ok(more) = rx.try_recv() else { break };
            size += more.charges().len();
            group.push(more);
        }
        let result = commit(&mut conn, &group).map_err(|e| e.to_string());
        match &result {
            Ok(new) => committed += new.iter().sum::<usize>() as u64,
            Err(error) => {
                tracing::error!(error = %error, charges = size, "ledger commit failed");
                for msg in &group {
                    if let Msg::Record(c) = msg {
                        let entry = lost.get_or_insert((0, String::new()));
                        entry.0 += c.len() as u64;
                        entry.1.clone_from(error);
                    }
                }
            }
        }
        // A flush reports (and so clears) the losses before it.
        let report = match group.iter().any(|m| matches!(m, Msg::Flush(_))) {
            true => lost.take(),
            false => None,
        };
        for (i, msg) in group.into_iter().enumerate() {
            match (msg, &result) {
                (Msg::Record(_), _) | (Msg::State(_), _) => {}
                (Msg::Durable(_, _, done), Ok(new)) => {
                    let _ = done.send(Ok(new.get(i).copied().unwrap_or(0)));
                }
                (Msg::Durable(_, _, done), Err(error)) => {
                    let _ = done.send(Err(LedgerError::Commit(error.clone())));
                }
                (Msg::Flush(done), result) => {
                    let _ = done.send(match (&report, result) {
                        (Some((charges, error)), _) => Err(LedgerError::Lost {
                            charges: *charges,
                            error: error.clone(),
                        }),
                        (None, Ok(_)) => Ok(committed),
                        (None, Err(error)) => Err(LedgerError::Commit(error.clone())),
                    });
                }
            }
        }
    }
}

/// Inserts the group in one transaction; returns the new rows per message.
fn commit(conn: &mut Connection, group: &[Msg]) -> Result<Vec<usize>, LedgerError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("begin"))?;
    let mut new = Vec::with_capacity(group.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO entries (key, at_ms, debit, credit, amount, module, control_plane,
                   kind, description, quantity, unit_price)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(key) DO NOTHING",
            )
            .map_err(sql("prepare insert"))?;
        for msg in group {
            let mut n = 0;
            for c in msg.charges() {
                n += stmt
                    .execute(params![
                        c.key,
                        c.at_ms,
                        c.debit,
                        c.credit,
                        c.amount,
                        c.module,
                        c.control_plane,
                        c.kind,
                        c.description,
                        c.quantity,
                        c.unit_price,
                    ])
                    .map_err(sql("insert charge"))?;
            }
            new.push(n);
        }
        let mut state = tx
            .prepare_cached(
                "INSERT INTO state (name, at_ms, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET at_ms = ?2, bytes = ?3 WHERE ?2 >= state.at_ms",
            )
            .map_err(sql("prepare state"))?;
        for row in group.iter().flat_map(|m| m.state()) {
            state
                .execute(params![row.name, row.at_ms, row.bytes])
                .map_err(sql("save state"))?;
        }
    }
    tx.commit().map_err(sql("commit"))?;
    Ok(new)
}
