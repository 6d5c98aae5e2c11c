//! The line parser of the application endpoint: pure, tested on fixtures
//! (see the module docs of `app` for the rules).

use vcp_common::resource;

use super::{ACCEPTED, MAX_NAME, MAX_RESOURCE};

/// One accepted line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppSample<'a> {
    pub resource: &'a str,
    /// Index of the metric in [`ACCEPTED`].
    pub metric: usize,
    pub value: f64,
}

/// Checks a resource named by a line or by the configuration: a valid
/// resource id of at most [`MAX_RESOURCE`] bytes.
pub fn check_resource(r: &str) -> Result<(), String> {
    if r.len() > MAX_RESOURCE {
        return Err(format!(
            "resource {:?}… is longer than {MAX_RESOURCE} bytes",
            r.chars().take(64).collect::<String>()
        ));
    }
    resource::validate(r).map_err(|e| e.to_string())
}

/// Parses one non-empty line; the error says why it is malformed.
pub fn parse_line<'a>(
    line: &'a str,
    default_resource: Option<&'a str>,
) -> Result<AppSample<'a>, &'static str> {
    let (name, rest) = line.split_once(':').ok_or("no ':' after the name")?;
    if !name.starts_with("app.")
        || name.len() > MAX_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
    {
        return Err("name must be app.[a-z0-9._], at most 100 characters");
    }
    let metric = ACCEPTED
        .iter()
        .position(|m| m.name == name)
        .ok_or("not an accepted app metric")?;
    let mut parts = rest.split('|');
    let value = parts.next().unwrap_or("");
    if parts.next() != Some("g") {
        return Err("type must be g (gauge)");
    }
    let tags = match parts.next() {
        None => None,
        Some(t) => Some(
            t.strip_prefix('#')
                .ok_or("only a #tags section may follow |g")?,
        ),
    };
    if parts.next().is_some() {
        return Err("trailing sections");
    }
    if !value.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err("value must be an unsigned number");
    }
    let value: f64 = value.parse().map_err(|_| "value is not a number")?;
    if !value.is_finite() {
        return Err("value is not finite");
    }
    let mut resource = None;
    for tag in tags.into_iter().flat_map(|t| t.split(',')) {
        if let Some(r) = tag.strip_prefix("resource:") {
            if resource.replace(r).is_some() {
                return Err("resource tag given twice");
            }
        }
    }
    let resource = resource
        .or(default_resource)
        .ok_or("no resource tag and no default resource")?;
    if check_resource(resource).is_err() {
        return Err("resource must be a valid resource id of at most 200 bytes");
    }
    Ok(AppSample {
        resource,
        metric,
        value,
    })
}

/// Parses a datagram's lines (blank lines are skipped), handing each good
/// sample to `f`; returns the number of malformed lines.
pub fn parse_datagram<'a>(
    text: &'a str,
    default_resource: Option<&'a str>,
    mut f: impl FnMut(AppSample<'a>),
) -> u64 {
    let mut malformed = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match parse_line(line, default_resource) {
            Ok(s) => f(s),
            Err(why) => {
                malformed += 1;
                tracing::trace!(line, reason = why, "app sensor: malformed line");
            }
        }
    }
    malformed
}
