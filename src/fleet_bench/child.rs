//! The supervisor under test, as a process of its own (so its CPU and
//! memory are its own): `vcp bench-fleet-supervisor --dir DIR` run from
//! this executable. It reads its certificate from DIR, keeps its store in
//! DIR/store, listens on loopback ports of its choosing, prints one line
//! `ready <agents' address> <API address>`, and shuts down when its stdin
//! closes (so it never outlives the bench).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use vcp_common::identity::TlsMaterial;
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::{ApiOptions, Supervisor, SupervisorConfig};

pub const CA: &str = "ca.pem";
pub const CERT: &str = "supervisor.pem";
pub const KEY: &str = "supervisor.key";

/// The supervisor process the bench started.
pub struct Child {
    process: std::process::Child,
    pub quic: SocketAddr,
    pub api: SocketAddr,
}

impl Child {
    /// Starts the supervisor over `dir` and waits until it listens.
    pub fn start(dir: &Path) -> anyhow::Result<Child> {
        let log = std::fs::File::create(dir.join("supervisor.log"))?;
        let mut process = Command::new(std::env::current_exe()?)
            .arg("bench-fleet-supervisor")
            .arg("--dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting the supervisor process")?;
        let stdout = process.stdout.take().context("supervisor stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let mut words = line.split_whitespace();
        let (Some("ready"), Some(quic), Some(api)) = (words.next(), words.next(), words.next())
        else {
            let _ = process.kill();
            anyhow::bail!(
                "the supervisor did not start (see {}): {line:?}",
                dir.join("supervisor.log").display()
            );
        };
        Ok(Child {
            quic: quic.parse()?,
            api: api.parse()?,
            process,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Closes the supervisor's stdin and waits for it to stop.
    pub fn stop(mut self) -> anyhow::Result<()> {
        drop(self.process.stdin.take());
        self.process.wait()?;
        Ok(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.process.try_wait().ok().flatten().is_none() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// The child's side: runs the supervisor until stdin closes.
pub async fn serve(dir: PathBuf) -> anyhow::Result<()> {
    let tls = TlsMaterial::from_pem_files(&dir.join(CA), &dir.join(CERT), &dir.join(KEY))?;
    let supervisor = Supervisor::start(SupervisorConfig {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.join("store"),
        tls,
        control: SupervisorFile::default(),
        api: Some(ApiOptions::new("127.0.0.1:0".parse()?)),
        enrolment: None,
    })
    .await
    .context("starting the supervisor")?;
    let api = supervisor.api.as_ref().context("no API")?.addr;
    println!("ready {} {api}", supervisor.local_addr()?);
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    supervisor.shutdown().await;
    Ok(())
}
