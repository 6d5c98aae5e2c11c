//! Text a peer or an operator hands the agent or the supervisor: the
//! application endpoint's lines, and configuration files.

use std::path::Path;

use vcp_agent::config::AgentFile;
use vcp_agent::sensors::app::{parse_datagram, ACCEPTED};
use vcp_supervisor::config::{overlapping_members, SupervisorFile};

/// A datagram for the application endpoint; odd first byte: with a
/// default resource. Whatever is accepted is well formed.
pub fn app_line(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let default = (mode & 1 == 1).then_some("cgroup/default");
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    let mut good = 0;
    let bad = parse_datagram(text, default, |s| {
        good += 1;
        assert!(vcp_common::resource::validate(s.resource).is_ok(), "{s:?}");
        assert!(s.metric < ACCEPTED.len());
        assert!(s.value.is_finite() && s.value >= 0.0, "{s:?}");
    });
    assert_eq!(good + bad, lines, "each line is taken or counted");
}

/// A configuration file; even first byte: the supervisor's, odd: the
/// agent's. An accepted file keeps the rules its loader checks.
pub fn config(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if which & 1 == 0 {
        if let Ok(file) = SupervisorFile::parse(text, Path::new("fuzz.toml")) {
            assert!(overlapping_members(&file.service_sets, None).is_none());
            assert!(file.limits.validate().is_ok());
            for s in &file.service_sets {
                let i = s.instances.get_ref();
                assert!(i.min <= i.initial && i.initial <= i.max);
            }
        }
    } else if let Ok(file) = AgentFile::parse(text) {
        let _ = file.validate();
    }
}
