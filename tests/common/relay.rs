//! A UDP relay that puts network faults between real QUIC peers on
//! 127.0.0.1 (`tc netem` is not available on these machines): packet loss,
//! added delay and jitter (which reorders), duplication, and a blackhole
//! for a while. Each client address gets its own upstream socket, so the
//! supervisor sees one peer per client, as it would without the relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::UdpSocket;

/// What the relay does to packets, both ways.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Share of packets dropped, 0..1.
    pub loss: f64,
    pub delay: Duration,
    /// Extra delay, uniform in 0..jitter (packets overtake each other).
    pub jitter: Duration,
    /// Share of packets sent twice.
    pub duplicate: f64,
    /// Every packet is dropped until then.
    pub blackhole_until: Option<Instant>,
}

/// Packets seen and dropped, for the test's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub packets: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

struct Shared {
    faults: Faults,
    counts: Counts,
}

pub struct Relay {
    /// Where clients send instead of the upstream address.
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

/// Sends `data` to `to` from `socket` as the faults say.
fn forward(socket: &Arc<UdpSocket>, to: SocketAddr, data: Vec<u8>, shared: &Mutex<Shared>) {
    let (copies, delay) = {
        let mut s = shared.lock().unwrap();
        s.counts.packets += 1;
        let f = s.faults;
        let mut rng = rand::rng();
        let blackhole = f.blackhole_until.is_some_and(|t| Instant::now() < t);
        if blackhole || rng.random_bool(f.loss.clamp(0.0, 1.0)) {
            s.counts.dropped += 1;
            return;
        }
        let copies = if rng.random_bool(f.duplicate.clamp(0.0, 1.0)) {
            s.counts.duplicated += 1;
            2
        } else {
            1
        };
        let jitter = f.jitter.mul_f64(rng.random_range(0.0..1.0));
        (copies, f.delay + jitter)
    };
    let socket = socket.clone();
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        for _ in 0..copies {
            let _ = socket.send_to(&data, to).await;
        }
    });
}

impl Relay {
    /// A relay in front of `upstream`, faultless until told otherwise.
    pub async fn start(upstream: SocketAddr) -> Relay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            faults: Faults::default(),
            counts: Counts::default(),
        }));
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, client)) = front.recv_from(&mut buf).await {
                let back = match backs.get(&client) {
                    Some(b) => b.clone(),
                    None => {
                        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        backs.insert(client, b.clone());
                        // Upstream's answers go back to this client.
                        let (b2, front2, s2) = (b.clone(), front.clone(), s.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 65_536];
                            while let Ok((n, _)) = b2.recv_from(&mut buf).await {
                                forward(&front2, client, buf[..n].to_vec(), &s2);
                            }
                        });
                        b
                    }
                };
                forward(&back, upstream, buf[..n].to_vec(), &s);
            }
        });
        Relay { addr, shared, task }
    }

    pub fn set(&self, faults: Faults) {
        self.shared.lock().unwrap().faults = faults;
    }

    /// Drops every packet for `d` from now (other faults stay).
    pub fn blackhole(&self, d: Duration) {
        self.shared.lock().unwrap().faults.blackhole_until = Some(Instant::now() + d);
    }

    pub fn counts(&self) -> Counts {
        self.shared.lock().unwrap().counts
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
