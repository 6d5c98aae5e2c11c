//! [`ResourceId`]: the one validated name of a resource of a host —
//! `cpu`, `cpu/3`, `nic/eth0`, `gpu/0`, `memory`, `cgroup/system.slice/web`.
//!
//! A resource id is a path of segments separated by `/`. Every segment is
//! 1 to [`MAX_SEGMENT`] characters of `A-Z a-z 0-9 . _ : @ + = , ~ -` and
//! is neither `.` nor `..`; there is no leading, trailing or doubled `/`.
//! A string that breaks a rule is refused, never repaired, so one resource
//! has exactly one spelling and "inside" is a question about segments, not
//! about string prefixes: `cgroup/web/../x` is not a resource id at all, and
//! `cgroup/webx` is not inside `cgroup/web`.
//!
//! Configuration, the API, admission and the agent's actuators all take
//! this type; on the wire it is a plain string checked as it is decoded.

use serde::{Deserialize, Serialize};

/// Longest resource id, in bytes.
pub const MAX_LEN: usize = 255;
/// Longest segment, in bytes.
pub const MAX_SEGMENT: usize = 128;

/// Why a string is not a resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    #[error("resource id is empty")]
    Empty,
    #[error("resource id {id:?} is longer than {MAX_LEN} bytes")]
    TooLong { id: String },
    #[error("resource id {id:?} has an empty segment (leading, trailing or doubled '/')")]
    EmptySegment { id: String },
    #[error("resource id {id:?} has a '.' or '..' segment")]
    DotSegment { id: String },
    #[error("resource id {id:?}: segment {segment:?} is longer than {MAX_SEGMENT} bytes")]
    LongSegment { id: String, segment: String },
    #[error("resource id {id:?} has character {ch:?}: use A-Z a-z 0-9 . _ : @ + = , ~ - and '/' between segments")]
    BadChar { id: String, ch: char },
}

/// A validated resource id. See the module docs for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceId(String);

fn segment_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:@+=,~-".contains(&b)
}

/// `text` (a chip's or a sensor's name, say) as one segment: trimmed, each
/// character a segment does not take written as `_`, and `_` for what
/// would be empty, `.` or `..`. (It may still be longer than a segment
/// may be: [`validate`] the id it goes into.)
pub fn to_segment(text: &str) -> String {
    let s: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii() && segment_char(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => "_".into(),
        _ => s,
    }
}

/// Checks `s` against the rules without allocating.
pub fn validate(s: &str) -> Result<(), ResourceIdError> {
    let id = || s.to_owned();
    if s.is_empty() {
        return Err(ResourceIdError::Empty);
    }
    if s.len() > MAX_LEN {
        return Err(ResourceIdError::TooLong {
            id: s.chars().take(64).collect(),
        });
    }
    for segment in s.split('/') {
        if segment.is_empty() {
            return Err(ResourceIdError::EmptySegment { id: id() });
        }
        if segment == "." || segment == ".." {
            return Err(ResourceIdError::DotSegment { id: id() });
        }
        if segment.len() > MAX_SEGMENT {
            return Err(ResourceIdError::LongSegment {
                id: id(),
                segment: segment.to_owned(),
            });
        }
        if let Some(ch) = segment
            .chars()
            .find(|c| !c.is_ascii() || !segment_char(*c as u8))
        {
            return Err(ResourceIdError::BadChar { id: id(), ch });
        }
    }
    Ok(())
}

/// Whether `inner` is `outer` or a resource below it, segment by segment.
/// Both are taken as they are: an invalid `inner` is inside nothing.
pub fn is_within(inner: &str, outer: &str) -> bool {
    validate(inner).is_ok()
        && (inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/')))
}

impl ResourceId {
    /// Validates `s` as a resource id.
    pub fn new(s: impl Into<String>) -> Result<Self, ResourceIdError> {
        let s = s.into();
        validate(&s)?;
        Ok(ResourceId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, in order.
    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The first segment: what kind of resource it is (`cpu`, `nic`, `cgroup`).
    pub fn class(&self) -> &str {
        self.segments().next().unwrap_or_default()
    }

    /// The rest after `prefix/`, when the first segment is `prefix`
    /// (`cgroup/a/b` with `cgroup` gives `a/b`).
    pub fn below(&self, prefix: &str) -> Option<&str> {
        self.0
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
    }

    /// Whether `resource` is this resource or lies below it.
    pub fn contains(&self, resource: &str) -> bool {
        is_within(resource, &self.0)
    }

    /// Whether one of the two lies within the other.
    pub fn overlaps(&self, other: &ResourceId) -> bool {
        self.contains(&other.0) || other.contains(&self.0)
    }
}

impl TryFrom<String> for ResourceId {
    type Error = ResourceIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ResourceId::new(s)
    }
}

impl TryFrom<&str> for ResourceId {
    type Error = ResourceIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        ResourceId::new(s)
    }
}

impl From<ResourceId> for String {
    fn from(r: ResourceId) -> String {
        r.0
    }
}

impl std::str::FromStr for ResourceId {
    type Err = ResourceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceId::new(s)
    }
}

impl std::ops::Deref for ResourceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ResourceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ResourceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ResourceId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ResourceId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_ids() {
        for s in [
            "cpu",
            "cpu/3",
            "nic/eth0",
            "nic/br-lan.10",
            "gpu/0",
            "cgroup/system.slice/web.service",
            "cgroup/user.slice/user-1000.slice/user@1000.service",
            "cgroup/a:b+c=d,e~f",
        ] {
            let r = ResourceId::new(s).unwrap();
            assert_eq!(r.as_str(), s);
        }
        let r = ResourceId::new("cgroup/system.slice/web").unwrap();
        assert_eq!(r.class(), "cgroup");
        assert_eq!(r.below("cgroup"), Some("system.slice/web"));
        assert_eq!(r.below("cg"), None);
        assert_eq!(r.segments().count(), 3);
    }

    #[test]
    fn bad_ids_are_refused_with_the_reason() {
        use ResourceIdError::*;
        type Check = fn(&ResourceIdError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, Empty)),
            ("/cgroup/web", |e| matches!(e, EmptySegment { .. })),
            ("cgroup/web/", |e| matches!(e, EmptySegment { .. })),
            ("cgroup//web", |e| matches!(e, EmptySegment { .. })),
            ("cgroup/web/../x", |e| matches!(e, DotSegment { .. })),
            ("cgroup/./web", |e| matches!(e, DotSegment { .. })),
            ("..", |e| matches!(e, DotSegment { .. })),
            ("cgroup/we b", |e| matches!(e, BadChar { ch: ' ', .. })),
            ("cgroup/wé", |e| matches!(e, BadChar { ch: 'é', .. })),
            ("cgroup\\web", |e| matches!(e, BadChar { .. })),
            ("nic/eth0\n", |e| matches!(e, BadChar { .. })),
        ];
        for (s, ok) in cases {
            let e = ResourceId::new(*s).unwrap_err();
            assert!(ok(&e), "{s:?}: {e}");
            let wire = postcard::to_stdvec(s).unwrap();
            assert!(postcard::from_bytes::<ResourceId>(&wire).is_err());
        }
        assert!(matches!(
            ResourceId::new("a/".repeat(200)).unwrap_err(),
            TooLong { .. }
        ));
        assert!(matches!(
            ResourceId::new(format!("cgroup/{}", "x".repeat(129))).unwrap_err(),
            LongSegment { .. }
        ));
    }

    #[test]
    fn inside_is_by_segments() {
        let web = ResourceId::new("cgroup/web").unwrap();
        assert!(web.contains("cgroup/web"));
        assert!(web.contains("cgroup/web/worker"));
        assert!(!web.contains("cgroup/webx"));
        assert!(!web.contains("cgroup/web/../x"));
        assert!(!web.contains("cgroup/web/./x"));
        assert!(!web.contains("cgroup/web//x"));
        assert!(!web.contains("cgroup"));
        let cg = ResourceId::new("cgroup").unwrap();
        assert!(web.overlaps(&cg) && cg.overlaps(&web));
        assert!(!web.overlaps(&ResourceId::new("cgroup/api").unwrap()));
    }

    #[test]
    fn wire_form_is_a_string_checked_on_decode() {
        let r = ResourceId::new("nic/eth0").unwrap();
        let bytes = postcard::to_stdvec(&r).unwrap();
        assert_eq!(bytes, postcard::to_stdvec("nic/eth0").unwrap());
        assert_eq!(postcard::from_bytes::<ResourceId>(&bytes).unwrap(), r);
        let bad = postcard::to_stdvec("cgroup/../etc").unwrap();
        assert!(postcard::from_bytes::<ResourceId>(&bad).is_err());
    }
}
