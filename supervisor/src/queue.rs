//! Bounded queues between tasks, each with a stated policy when full.
//! [`Lossy`]: a sender on a round's path never waits — a message that
//! finds the queue full is dropped, counted (`vcp_queue_dropped_total`)
//! and logged; senders off the path may wait instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// The sending side of a bounded queue named `name`.
pub struct Lossy<T> {
    tx: mpsc::Sender<T>,
    pub name: &'static str,
    /// Messages dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
}

impl<T> Clone for Lossy<T> {
    fn clone(&self) -> Self {
        Lossy {
            tx: self.tx.clone(),
            name: self.name,
            dropped: self.dropped.clone(),
        }
    }
}

/// A queue of `capacity` messages.
pub fn lossy<T>(name: &'static str, capacity: usize) -> (Lossy<T>, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel(capacity);
    (
        Lossy {
            tx,
            name,
            dropped: Arc::default(),
        },
        rx,
    )
}

impl<T> Lossy<T> {
    /// Queues `m` without waiting; a full queue drops it (counted, logged
    /// at each power of two). `false` when dropped or the receiver is gone.
    pub fn send(&self, m: T) -> bool {
        match self.tx.try_send(m) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        queue = self.name,
                        dropped = n,
                        "queue full: message dropped"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues `m`, waiting for room: for senders off the round's path
    /// whose message must not be lost.
    pub async fn send_wait(&self, m: T) -> bool {
        self.tx.send(m).await.is_ok()
    }

    /// Queues `m` from synchronous code (a `Drop`): waits on a task of
    /// its own when the queue is full.
    pub fn send_later(&self, m: T)
    where
        T: Send + 'static,
    {
        if let Err(mpsc::error::TrySendError::Full(m)) = self.tx.try_send(m) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(m).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_unless_told_to_wait() {
        let (q, mut rx) = lossy::<u32>("test", 2);
        assert!(q.send(1) && q.send(2));
        assert!(!q.send(3));
        assert_eq!(q.dropped.load(Ordering::Relaxed), 1);
        q.send_later(4);
        assert_eq!(rx.recv().await, Some(1));
        assert!(q.send_wait(5).await);
        let rest: Vec<_> = [rx.recv().await, rx.recv().await, rx.recv().await]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(rest.len(), 3);
        assert!(rest.contains(&4) && rest.contains(&5));
    }
}
