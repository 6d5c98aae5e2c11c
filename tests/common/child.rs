//! A supervisor in a child process — the test binary re-executed with its
//! `child_supervisor` test selected — so that a test can kill it, or read
//! its memory from /proc. Its directory holds the fleet's certificates
//! (`vcp::certs::write_fleet`), its store, and optionally `supervisor.toml`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use vcp_common::identity::TlsMaterial;
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::{Supervisor, SupervisorConfig};

const CHILD: &str = "VCP_TEST_CHILD_SUPERVISOR";

/// The body of the child process; returns at once in the parent. Each test
/// binary that spawns children calls it from an ignored test named
/// `child_supervisor`.
pub fn run_if_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (dir, port) = spec.split_once('|').expect("dir|port");
    let dir = PathBuf::from(dir);
    let tls = TlsMaterial::from_pem_files(
        &dir.join("ca.pem"),
        &dir.join("supervisor.pem"),
        &dir.join("supervisor.key"),
    )
    .unwrap();
    let config = dir.join("supervisor.toml");
    let control = if config.exists() {
        SupervisorFile::load(&config).unwrap()
    } else {
        SupervisorFile::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _sup = Supervisor::start(SupervisorConfig {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            data_dir: dir.join("store"),
            tls,
            control,
            api: None,
            enrolment: None,
        })
        .await
        .unwrap();
        std::future::pending::<()>().await;
    });
}

/// A child supervisor, killed (SIGKILL) when dropped.
pub struct ChildSupervisor(pub Child);

impl ChildSupervisor {
    pub fn spawn(dir: &Path, port: u16) -> ChildSupervisor {
        ChildSupervisor(
            Command::new(std::env::current_exe().unwrap())
                .args(["child_supervisor", "--exact", "--ignored", "--nocapture"])
                .env(CHILD, format!("{}|{port}", dir.display()))
                .spawn()
                .unwrap(),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildSupervisor {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fleet's TLS material for `id` in `dir` (written by `write_fleet`).
pub fn material(dir: &Path, id: &str) -> TlsMaterial {
    TlsMaterial::from_pem_files(
        &dir.join("ca.pem"),
        &dir.join(format!("{id}.pem")),
        &dir.join(format!("{id}.key")),
    )
    .unwrap()
}

const CHILD_AGENT: &str = "VCP_TEST_CHILD_AGENT";

/// The body of a child agent process; returns at once in the parent. Each
/// test binary that spawns child agents calls it from an ignored test named
/// `child_agent`. The agent reads this machine, keeps its spool in the
/// given state directory, and runs until killed.
pub fn run_agent_if_child() {
    let Ok(spec) = std::env::var(CHILD_AGENT) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [certs, addr, id, state] = parts[..] else {
        panic!("certs|addr|id|state, got {spec}");
    };
    let mut opts = crate::common::fast(1, Path::new(certs));
    opts.state_dir = Some(PathBuf::from(state));
    let tls = material(Path::new(certs), id);
    let o = vcp::loopback::agent_options(id, addr.parse().unwrap(), tls, &opts);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _agent = vcp_agent::Agent::start(o).unwrap();
        std::future::pending::<()>().await;
    });
}

/// A child agent, killed (SIGKILL) when dropped.
pub struct ChildAgent(pub Child);

impl ChildAgent {
    /// Agent `id` with the certificates in `certs`, reaching `addr`,
    /// spooling under `state/<id>`.
    pub fn spawn(certs: &Path, addr: std::net::SocketAddr, id: &str, state: &Path) -> ChildAgent {
        ChildAgent(
            Command::new(std::env::current_exe().unwrap())
                .args(["child_agent", "--exact", "--ignored", "--nocapture"])
                .env(
                    CHILD_AGENT,
                    format!("{}|{addr}|{id}|{}", certs.display(), state.display()),
                )
                .spawn()
                .unwrap(),
        )
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildAgent {
    fn drop(&mut self) {
        self.kill();
    }
}
