//! Templates and the state machine, without a runtime or a database.

use std::sync::Arc;

use serde_json::json;

use super::{task, Script, DIAMOND};
use crate::workflow::machine::{Op, Workflow};
use crate::workflow::{Engine, Template, WorkflowError, WorkflowInfo, WorkflowState};

#[test]
fn bad_templates_are_refused() {
    static CYCLE: Template = Template {
        name: "cycle",
        tasks: &[task("a", &["b"]), task("b", &["a"])],
    };
    static TWICE: Template = Template {
        name: "twice",
        tasks: &[task("a", &[]), task("a", &[])],
    };
    static EMPTY: Template = Template {
        name: "empty",
        tasks: &[],
    };
    for t in [&CYCLE, &TWICE, &EMPTY] {
        assert!(t.validate().is_err(), "{}", t.name);
    }
    DIAMOND.validate().unwrap();
    assert!(crate::workflow::template::registry(vec![&DIAMOND, &DIAMOND]).is_err());
    // No runtime, no engine (and no panic).
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Engine::open(
            vcp_store::Store::open(dir.path()).unwrap().0.workflows(),
            vec![&DIAMOND],
            Arc::new(Script::default())
        ),
        Err(WorkflowError::NoRuntime)
    ));
}

#[test]
fn machine_is_pure_and_takes_time_as_an_argument() {
    let info = WorkflowInfo {
        id: "wf-1".into(),
        template: DIAMOND.name.into(),
        owner: "acme".into(),
        subject: "cp-1".into(),
        payload: json!(null),
        created_ms: 0,
    };
    let mut wf = Workflow::new(info, DIAMOND.tasks);
    let fx = wf.advance(10);
    assert_eq!(fx.launch, [(0, Op::Run)]);
    assert_eq!(wf.tasks[0].started_ms, Some(10));
    // Nothing landed: advancing again changes nothing.
    assert_eq!(wf.advance(11), Default::default());
    // An outcome for a task not in flight is ignored.
    assert!(!wf.land(1, Op::Run, Ok(()), 12));
    assert!(!wf.land(0, Op::Undo, Ok(()), 12));
    assert!(wf.land(0, Op::Run, Ok(()), 20));
    assert_eq!(wf.advance(21).launch, [(1, Op::Run)]);
    assert!(wf.land(1, Op::Run, Ok(()), 30));
    assert_eq!(wf.advance(31).launch, [(2, Op::Run), (3, Op::Run)]);
    assert!(wf.land(3, Op::Run, Err("no".into()), 40));
    assert_eq!(wf.state, WorkflowState::RollingBack);
    // register_modules is still in flight: nothing to do yet.
    assert_eq!(wf.advance(41), Default::default());
    assert!(wf.land(2, Op::Run, Ok(()), 50));
    let fx = wf.advance(51);
    assert_eq!(fx.launch, [(2, Op::Undo)]);
    assert_eq!(
        fx.changed,
        [4, 2],
        "activate skipped, register_modules undoing"
    );
    for (task, at) in [(2, 60), (1, 70), (0, 80)] {
        assert!(wf.land(task, Op::Undo, Ok(()), at));
        wf.advance(at + 1);
    }
    assert_eq!(wf.state, WorkflowState::RolledBack);
    assert_eq!(wf.finished_ms, Some(81));
}
