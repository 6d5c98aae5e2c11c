//! The exec actuator: runs a configured command (program + args, no shell)
//! with the configuration as one line of JSON on stdin, e.g.
//!
//! ```json
//! {"round":7,"target":{"Resource":{"host":"h1","resource":"cgroup/web"}},"parameter":"cpu.max","value":1.5}
//! ```
//!
//! The JSON is formatted by hand (the agent does not link `serde_json`) in
//! the same shape `serde_json` gives [`Configuration`]; a non-finite value
//! is written as `null`.
//!
//! The command runs in its own process group (its pid is the group id)
//! and must exit within the timeout (default 5 s); otherwise the whole
//! group — the command and every process it started that stayed in the
//! group — is killed with SIGKILL, the command is reaped and the apply
//! fails with "timed out after … ms". A process that leaves the group
//! (`setsid`, `setpgid`) escapes this and is the command's responsibility.
//! A non-zero exit fails with the exit status and the first 200 bytes of
//! stderr. Output is drained by helper threads so a chatty command cannot
//! block on a full pipe.
//!
//! The command does not inherit the agent's environment: it gets only
//! `PATH=`[`PATH`], then each variable named in `pass_env` that is set in
//! the agent's environment, then the variables of `env` (which win, and may
//! set `PATH`). Variable names must be non-empty without `=` or NUL
//! ([`check_env_name`]); values must not contain NUL.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vcp_common::module::Target;

use super::{Actuator, ActuatorError, Applied, Configuration};

/// Default time a command may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of stderr (and stdout) kept for reports.
pub const KEEP_OUTPUT: usize = 200;
/// How long to wait for the output readers after the command exited (a
/// grandchild may hold the pipes open).
const READER_GRACE: Duration = Duration::from_millis(100);

/// The `PATH` a command gets unless `env` sets another.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Checks an environment variable name: non-empty, without `=` or NUL.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("empty variable name".into())
    } else if name.contains('=') || name.contains('\0') {
        Err(format!("variable name {name:?} contains '=' or NUL"))
    } else {
        Ok(())
    }
}

/// Runs a command per configuration.
#[derive(Debug, Clone)]
pub struct ExecActuator {
    program: String,
    args: Vec<String>,
    timeout: Duration,
    env: BTreeMap<String, String>,
    pass_env: Vec<String>,
}

impl ExecActuator {
    /// A command with only `PATH` in its environment.
    pub fn new(program: String, args: Vec<String>, timeout: Duration) -> Self {
        ExecActuator {
            program,
            args,
            timeout,
            env: BTreeMap::new(),
            pass_env: Vec::new(),
        }
    }

    /// Sets the variables `env` and copies those of `pass_env` from the
    /// agent's environment (when set there) at each run; `env` wins.
    pub fn with_env(mut self, env: BTreeMap<String, String>, pass_env: Vec<String>) -> Self {
        self.env = env;
        self.pass_env = pass_env;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).env_clear().env("PATH", PATH);
        for name in &self.pass_env {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        cmd.envs(&self.env);
        cmd.process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The configuration as JSON, in `serde_json`'s shape for it.
pub fn to_json(c: &Configuration) -> String {
    let mut o = String::with_capacity(128);
    o.push_str(&format!("{{\"round\":{},\"target\":", c.round));
    match &c.target {
        Target::ServiceSet(s) => {
            o.push_str("{\"ServiceSet\":");
            push_json_str(&mut o, s);
            o.push('}');
        }
        Target::Member { service_set, host } => {
            o.push_str("{\"Member\":{\"service_set\":");
            push_json_str(&mut o, service_set);
            o.push_str(",\"host\":");
            push_json_str(&mut o, host);
            o.push_str("}}");
        }
        Target::Resource { host, resource } => {
            o.push_str("{\"Resource\":{\"host\":");
            push_json_str(&mut o, host);
            o.push_str(",\"resource\":");
            push_json_str(&mut o, resource);
            o.push_str("}}");
        }
    }
    o.push_str(",\"parameter\":");
    push_json_str(&mut o, &c.parameter);
    o.push_str(",\"value\":");
    if c.value.is_finite() {
        // Debug keeps a decimal point or exponent: valid JSON, round-trips.
        o.push_str(&format!("{:?}", c.value));
    } else {
        o.push_str("null");
    }
    o.push('}');
    o
}

/// Reads a pipe to its end on a helper thread, keeping the first
/// [`KEEP_OUTPUT`] bytes.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        let spawned = std::thread::Builder::new()
            .name("vcp-exec-pipe".into())
            .spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let room = KEEP_OUTPUT.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = tx.send(kept);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "exec actuator: cannot start a pipe reader");
        }
    }
    rx
}

fn collected(rx: &mpsc::Receiver<Vec<u8>>) -> String {
    let bytes = rx.recv_timeout(READER_GRACE).unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// Kills the child's whole process group (the child leads it, see
/// [`ExecActuator::command`]) and reaps the child. The child is not reaped
/// before the kill, so its pid — the group id — cannot have been reused.
fn kill(child: &mut Child) {
    match libc::pid_t::try_from(child.id()) {
        Ok(pgid) if pgid > 1 => {
            // SAFETY: kill(2) takes plain integers and touches no memory;
            // a negative pid addresses the process group `pgid`.
            let killed = unsafe { libc::kill(-pgid, libc::SIGKILL) };
            if killed != 0 {
                let _ = child.kill();
            }
        }
        _ => {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

impl Actuator for ExecActuator {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn apply(&mut self, c: &Configuration) -> Result<Applied, ActuatorError> {
        let mut payload = to_json(c);
        payload.push('\n');
        let mut child = self
            .command()
            .spawn()
            .map_err(|e| ActuatorError::Failed(format!("starting {:?}: {e}", self.program)))?;
        let out = drain::<ChildStdout>(child.stdout.take());
        let err = drain::<ChildStderr>(child.stderr.take());
        if let Some(mut stdin) = child.stdin.take() {
            // Written on a thread so a command that never reads stdin cannot
            // block us past the timeout; a closed stdin is not an error.
            let _ = std::thread::Builder::new()
                .name("vcp-exec-stdin".into())
                .spawn(move || {
                    let _ = stdin.write_all(payload.as_bytes());
                });
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    kill(&mut child);
                    return Err(ActuatorError::Failed(format!(
                        "waiting for {:?}: {e}",
                        self.program
                    )));
                }
            }
            let elapsed = started.elapsed();
            if elapsed >= self.timeout {
                kill(&mut child);
                tracing::warn!(program = %self.program, round = c.round, "exec actuator: command timed out and was killed");
                return Err(ActuatorError::TimedOut {
                    after: self.timeout,
                });
            }
            std::thread::sleep(pause.min(self.timeout - elapsed));
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        if !status.success() {
            return Err(ActuatorError::Exit {
                status: status.to_string(),
                stderr: collected(&err),
            });
        }
        let stdout = collected(&out);
        Ok(Applied {
            detail: if stdout.is_empty() {
                format!("{} exited 0", self.program)
            } else {
                format!("{} exited 0: {stdout}", self.program)
            },
        })
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
