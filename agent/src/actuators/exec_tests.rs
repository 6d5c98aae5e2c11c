//! The exec actuator against real child processes: argument and JSON
//! passing, environment, timeouts, output limits, exit codes.

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
