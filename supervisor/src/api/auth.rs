//! The caller of a request: a bearer token in `Authorization`, or (for
//! the dashboard, and only for GET) the `vcp_token` cookie. No token, an
//! unknown, expired or revoked one is 401 saying which (checked in memory,
//! see `vcp_store::accounts`); what the caller may do is checked by each
//! handler.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::{ApiError, ApiState};
use vcp_store::accounts::{Principal, Role};

/// The dashboard's cookie.
pub const COOKIE: &str = "vcp_token";

/// An authenticated caller, holding its token's place among the requests
/// in flight (see [`super::limiter`]) until the handler is done with it.
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Principal,
    _in_flight: std::sync::Arc<tokio::sync::OwnedSemaphorePermit>,
}

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// The bearer token of `Authorization`, if any.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
}

fn token_of(parts: &Parts) -> Option<&str> {
    let headers = &parts.headers;
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return bearer(headers);
    }
    // The dashboard's cookie only reads: a request that changes something
    // must carry the token itself (no cross-site request can).
    if !matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        return None;
    }
    cookie(headers, COOKIE)
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(token) = token_of(parts) else {
            return Err(ApiError::unauthorized(
                "missing bearer token (Authorization: Bearer <token>)",
            ));
        };
        let principal = state
            .accounts
            .authenticate(token)
            .map_err(|r| ApiError::unauthorized(r.to_string()))?;
        if principal.role == Role::Enrol {
            return Err(ApiError::unauthorized(
                "a join token only enrols agents (vcp-agent --enrol-token)",
            ));
        }
        let key = vcp_store::accounts::digest(token);
        let permit = state
            .limiter
            .admit(&key, std::time::Instant::now())
            .map_err(|r| ApiError::too_many(r.reason, r.retry_after_s))?;
        Ok(Caller {
            principal,
            _in_flight: std::sync::Arc::new(permit),
        })
    }
}

impl Caller {
    pub fn require_operator(&self) -> Result<(), ApiError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only the operator may do this"))
        }
    }

    pub fn require_role(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} token may not do this",
                self.role
            )))
        }
    }
}
