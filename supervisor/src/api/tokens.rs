//! `/v1/tokens` (operator): create a token (its secret shown once), list
//! them without secrets, revoke one. A revocation holds for every request
//! that follows it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::parse_json;
use super::{blocking, ApiError, ApiState, Caller};
use vcp_store::accounts::{AccountsError, Issued, Role, TokenInfo, Ttl, DEFAULT_TTL};

/// The body of `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    account: String,
    role: Role,
    /// `3s`, `1h`, `30d`…, or `never` (operator only); default 90 days.
    #[serde(default)]
    ttl: Option<String>,
    /// A join token's enrolments at most.
    #[serde(default)]
    uses: Option<u32>,
}

fn refused(e: AccountsError) -> ApiError {
    match e {
        AccountsError::Invalid(m) | AccountsError::Refused(m) => ApiError::unprocessable(m),
        AccountsError::NotFound(_) => ApiError::not_found(e.to_string()),
        AccountsError::Store(e) => ApiError::internal(e),
    }
}

pub async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Issued>), ApiError> {
    caller.require_operator()?;
    let req: CreateToken = parse_json(&body)?;
    let ttl: Ttl = match req.ttl.as_deref() {
        Some(t) => t.parse().map_err(ApiError::unprocessable)?,
        None => DEFAULT_TTL,
    };
    if req.account == vcp_core::plane::OPERATOR && req.role != Role::Operator {
        return Err(ApiError::unprocessable(
            "account \"operator\" is the operator's: role operator",
        ));
    }
    if req.uses.is_some() && req.role != Role::Enrol {
        return Err(ApiError::unprocessable(
            "uses bounds a join token's enrolments: role enrol",
        ));
    }
    let (accounts, actor) = (s.accounts.clone(), caller.ledger_account());
    let issued = tokio::task::spawn_blocking(move || match req.role {
        Role::Enrol => accounts.issue_join(&req.account, ttl, req.uses, &actor),
        role => accounts.issue(&req.account, role, ttl, &actor),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(issued)))
}

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    caller.require_operator()?;
    let accounts = s.accounts.clone();
    blocking(move || accounts.list()).await.map(Json)
}

pub async fn revoke(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    caller.require_operator()?;
    let (accounts, actor) = (s.accounts.clone(), caller.ledger_account());
    tokio::task::spawn_blocking(move || accounts.revoke(&id, &actor))
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .map_err(refused)
}
