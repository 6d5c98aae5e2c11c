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

    /// Whether a process of group `pgid` is alive (zombies are not).
    fn group_alive(pgid: u32) -> Vec<String> {
        let mut alive = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp …; comm may hold spaces.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
                alive.push(stat);
            }
        }
        alive
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let tmp = tempfile::tempdir().unwrap();
        let pids = tmp.path().join("pids");
        let mut a = ExecActuator::new(
            "sh".into(),
            vec![
                "-c".into(),
                "sleep 30 & echo $$ $! > \"$1\"; sh -c 'sleep 30' & sleep 30".into(),
                "sh".into(),
                pids.display().to_string(),
            ],
            Duration::from_millis(500),
        );
        let e = a.apply(&conf()).unwrap_err();
        assert!(matches!(e, ActuatorError::TimedOut { .. }), "{e}");
        let text = std::fs::read_to_string(&pids).unwrap();
        let ids: Vec<u32> = text
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let (leader, grandchild) = (ids[0], ids[1]);
        // SIGKILL is delivered at once, but the orphans' exit and reaping
        // take a moment.
        let give_up = Instant::now() + Duration::from_secs(5);
        while !group_alive(leader).is_empty() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(group_alive(leader), Vec::<String>::new());
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
        assert!(
            state.as_deref().map_or(true, |s| s.contains(") Z ")),
            "grandchild {grandchild} alive: {state:?}"
        );
    }

    fn env_of(a: &mut ExecActuator, file: &std::path::Path) -> Vec<String> {
        a.args.extend(["sh".into(), file.display().to_string()]);
        a.apply(&conf()).unwrap();
        let mut vars: Vec<String> = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            // The shell itself exports its working directory.
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("OLDPWD="))
            .map(str::to_owned)
            .collect();
        vars.sort();
        vars
    }

    #[test]
    fn environment_is_only_path_and_the_configured_variables() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("env");
        let script = "exec env > \"$1\"";
        let present = format!("VCP_EXEC_TEST_PASS_{}", std::process::id());
        let absent = format!("VCP_EXEC_TEST_ABSENT_{}", std::process::id());
        let leaked = format!("VCP_EXEC_TEST_LEAK_{}", std::process::id());
        std::env::set_var(&present, "from the agent");
        std::env::set_var(&leaked, "secret");
        std::env::remove_var(&absent);

        let mut a = sh(script, DEFAULT_TIMEOUT);
        assert_eq!(env_of(&mut a, &file), [format!("PATH={PATH}")]);

        let env: BTreeMap<String, String> = [("VCP_MODE", "test run"), ("LANG", "C")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let mut a = sh(script, DEFAULT_TIMEOUT).with_env(env, vec![present.clone(), absent]);
        assert_eq!(
            env_of(&mut a, &file),
            [
                "LANG=C".to_owned(),
                format!("PATH={PATH}"),
                format!("{present}=from the agent"),
                "VCP_MODE=test run".to_owned(),
            ]
        );

        // `env` wins over `pass_env` and over the fixed PATH.
        let env: BTreeMap<String, String> = [(present.as_str(), "configured"), ("PATH", "/bin")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let mut a = sh(script, DEFAULT_TIMEOUT).with_env(env, vec![present.clone()]);
        assert_eq!(
            env_of(&mut a, &file),
            ["PATH=/bin".to_owned(), format!("{present}=configured")]
        );
        std::env::remove_var(&present);
        std::env::remove_var(&leaked);
    }

    #[test]
    fn env_names_are_checked() {
        check_env_name("VCP_MODE").unwrap();
        for bad in ["", "A=B", "A\0"] {
            assert!(check_env_name(bad).is_err(), "{bad:?}");
        }
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
