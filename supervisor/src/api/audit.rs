//! `GET /v1/audit?after=SEQ&limit=N` (operator): the audit trail, oldest
//! first, a page at a time (`limit` at most
//! [`vcp_store::audit::MAX_PAGE`], default 100). The next page starts
//! after the last line's `seq`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::Params;
use super::{blocking, ApiError, ApiState, Caller};
use vcp_store::audit::AuditRecord;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    caller.require_operator()?;
    let audit = s.audit.clone();
    blocking(move || audit.after(q.after, q.limit))
        .await
        .map(Json)
}
