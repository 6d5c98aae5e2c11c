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
//! The command must exit within the timeout (default 5 s) or it is killed
//! and the apply fails with "timed out after … ms". Only the direct child is
//! killed: a command that forks must clean up after itself. A non-zero exit
//! fails with the exit status and the first 200 bytes of stderr. Output is
//! drained by helper threads so a chatty command cannot block on a full pipe.

use std::io::{Read, Write};
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

/// Runs a command per configuration.
#[derive(Debug, Clone)]
pub struct ExecActuator {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

impl ExecActuator {
    pub fn new(program: String, args: Vec<String>, timeout: Duration) -> Self {
        ExecActuator {
            program,
            args,
            timeout,
        }
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

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl Actuator for ExecActuator {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn apply(&mut self, c: &Configuration) -> Result<Applied, ActuatorError> {
        let mut payload = to_json(c);
        payload.push('\n');
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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
mod tests {
    use super::*;

    fn conf() -> Configuration {
        Configuration {
            round: 7,
            target: Target::Resource {
                host: "h1".into(),
                resource: vcp_common::resource::ResourceId::new("cgroup/web").unwrap(),
            },
            parameter: "cpu.max".into(),
            value: 1.5,
        }
    }

    fn sh(script: &str, timeout: Duration) -> ExecActuator {
        ExecActuator::new("sh".into(), vec!["-c".into(), script.into()], timeout)
    }

    #[test]
    fn json_shape() {
        assert_eq!(
            to_json(&conf()),
            r#"{"round":7,"target":{"Resource":{"host":"h1","resource":"cgroup/web"}},"parameter":"cpu.max","value":1.5}"#
        );
        let c = Configuration {
            round: 0,
            target: Target::Member {
                service_set: "s\"q\\".into(),
                host: "h\n\u{1}é".into(),
            },
            parameter: "w".into(),
            value: 2.0,
        };
        assert_eq!(
            to_json(&c),
            r#"{"round":0,"target":{"Member":{"service_set":"s\"q\\","host":"h\n\u0001é"}},"parameter":"w","value":2.0}"#
        );
        let c = Configuration {
            target: Target::ServiceSet("x".into()),
            value: f64::NAN,
            ..conf()
        };
        assert!(to_json(&c).contains(r#""target":{"ServiceSet":"x"}"#));
        assert!(to_json(&c).ends_with(r#""value":null}"#));
    }

    #[test]
    fn payload_arrives_on_stdin() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("got.json");
        let mut a = ExecActuator::new(
            "sh".into(),
            vec![
                "-c".into(),
                "cat > \"$1\"; echo done".into(),
                "sh".into(),
                file.display().to_string(),
            ],
            DEFAULT_TIMEOUT,
        );
        let applied = a.apply(&conf()).unwrap();
        assert_eq!(applied.detail, "sh exited 0: done");
        let got = std::fs::read_to_string(&file).unwrap();
        assert_eq!(got, format!("{}\n", to_json(&conf())));
    }

    #[test]
    fn timeout_kills_quickly() {
        let mut a = ExecActuator::new("sleep".into(), vec!["5".into()], Duration::from_millis(200));
        let t = Instant::now();
        let e = a.apply(&conf()).unwrap_err();
        let took = t.elapsed();
        assert!(matches!(e, ActuatorError::TimedOut { .. }), "{e}");
        assert!(e.to_string().contains("timed out after 200 ms"), "{e}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn failure_reports_status_and_stderr() {
        let mut a = sh("echo boom >&2; exit 3", DEFAULT_TIMEOUT);
        let e = a.apply(&conf()).unwrap_err();
        match &e {
            ActuatorError::Exit { status, stderr } => {
                assert!(status.contains('3'), "{status}");
                assert_eq!(stderr, "boom");
            }
            other => panic!("{other}"),
        }
        // stderr is cut at 200 bytes.
        let mut a = sh(
            "head -c 5000 /dev/zero | tr '\\0' x >&2; exit 1",
            DEFAULT_TIMEOUT,
        );
        match a.apply(&conf()).unwrap_err() {
            ActuatorError::Exit { stderr, .. } => assert_eq!(stderr, "x".repeat(200)),
            other => panic!("{other}"),
        }
        // A command that does not read stdin and exits 0 is fine.
        sh("exit 0", DEFAULT_TIMEOUT).apply(&conf()).unwrap();
        // A missing program is an error, not a panic.
        let mut a = ExecActuator::new("/no/such/program".into(), vec![], DEFAULT_TIMEOUT);
        let e = a.apply(&conf()).unwrap_err();
        assert!(e.to_string().contains("/no/such/program"), "{e}");
    }
}
