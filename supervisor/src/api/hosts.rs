//! `/v1/hosts`: the fleet's hosts with their latest readings.

use axum::extract::{Path, State};
use axum::Json;

use super::views::{self, HostView};
use super::{ApiError, ApiState, Caller};

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<HostView>>, ApiError> {
    views::hosts(&*s.control, &caller).map(Json)
}

pub async fn get_one(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    views::hosts(&*s.control, &caller)?
        .into_iter()
        .find(|h| h.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no host {id:?}")))
}
