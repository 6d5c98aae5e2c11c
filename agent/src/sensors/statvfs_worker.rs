//! `statvfs` off the sampler's thread. On a network filesystem whose
//! server is gone (NFS, CIFS, …) `statvfs` blocks for as long as the server
//! stays away, and would stop every sensor with it. So a worker thread
//! makes the calls; one that has not returned within the timeout makes its
//! mount *stuck*: no readings for it, and it is not asked again until the
//! call returns. The stuck worker is left to it (it ends when the call
//! returns) and a fresh one takes the next call, so at most one thread
//! waits per stuck mount.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::filesystem::Space;

/// How long a call may take before its mount counts as stuck.
pub const TIMEOUT: Duration = Duration::from_millis(500);

type Call = fn(&Path) -> io::Result<Space>;

/// What a call came to.
#[derive(Debug)]
pub enum Asked {
    Done(io::Result<Space>),
    /// Did not return within the timeout (said once, when it starts).
    StuckNow,
    /// Still has not returned since it got stuck.
    Stuck,
}

struct Worker {
    ask: Sender<PathBuf>,
    answer: Receiver<io::Result<Space>>,
}

pub struct StatvfsWorker {
    call: Call,
    timeout: Duration,
    worker: Option<Worker>,
    stuck: Arc<Mutex<HashSet<PathBuf>>>,
}

impl std::fmt::Debug for StatvfsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatvfsWorker")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl StatvfsWorker {
    pub fn new(call: Call, timeout: Duration) -> StatvfsWorker {
        StatvfsWorker {
            call,
            timeout,
            worker: None,
            stuck: Arc::default(),
        }
    }

    fn start(&self) -> io::Result<Worker> {
        let (ask, asks) = channel::<PathBuf>();
        let (answers, answer) = channel();
        let (call, stuck) = (self.call, self.stuck.clone());
        std::thread::Builder::new()
            .name("vcp-statvfs".into())
            .spawn(move || {
                while let Ok(point) = asks.recv() {
                    let result = call(&point);
                    // Returned: the mount is no longer stuck, whether or
                    // not it was given up on meanwhile.
                    stuck
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&point);
                    if answers.send(result).is_err() {
                        return; // given up on; a fresh worker took over
                    }
                }
            })?;
        Ok(Worker { ask, answer })
    }

    pub fn ask(&mut self, point: &Path) -> Asked {
        if self
            .stuck
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(point)
        {
            return Asked::Stuck;
        }
        if self.worker.is_none() {
            match self.start() {
                Ok(w) => self.worker = Some(w),
                Err(e) => return Asked::Done(Err(e)),
            }
        }
        let w = self.worker.as_ref().expect("started above");
        // Marked before the call; the worker unmarks it when the call
        // returns, however late.
        self.stuck
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(point.to_owned());
        let answer = match w.ask.send(point.to_owned()) {
            Ok(()) => w.answer.recv_timeout(self.timeout),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        };
        match answer {
            Ok(result) => Asked::Done(result),
            Err(RecvTimeoutError::Timeout) => {
                // The worker unmarks the mount when its call returns.
                self.worker = None;
                Asked::StuckNow
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.unmark(point);
                self.worker = None;
                Asked::Done(Err(io::Error::other("statvfs worker ended")))
            }
        }
    }

    fn unmark(&self, point: &Path) {
        self.stuck
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(point);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn fake(point: &Path) -> io::Result<Space> {
        if point == Path::new("/hung") {
            SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(Space {
            size: 10,
            used: 4,
            available: 5,
            inodes: 0,
            inodes_free: 0,
        })
    }

    #[test]
    fn a_hung_mount_is_given_up_on_asked_again_only_once_it_returns_and_others_go_on() {
        let mut w = StatvfsWorker::new(fake, Duration::from_millis(50));
        assert!(matches!(w.ask(Path::new("/")), Asked::Done(Ok(_))));
        assert!(matches!(w.ask(Path::new("/hung")), Asked::StuckNow));
        // While it hangs: not asked again, and the others are answered.
        assert!(matches!(w.ask(Path::new("/hung")), Asked::Stuck));
        assert!(matches!(w.ask(Path::new("/")), Asked::Done(Ok(_))));
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);
        // Once the call returned, the mount is asked again.
        std::thread::sleep(Duration::from_millis(400));
        assert!(matches!(w.ask(Path::new("/hung")), Asked::StuckNow));
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 2);
    }
}
