//! `/v1/service-sets`: service sets, the plane each runs under, the
//! instances in force and how their goals fare.

use axum::extract::{Path, State};
use axum::Json;

use super::views::{self, ServiceSetView};
use super::{ApiError, ApiState, Caller};

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<ServiceSetView>>, ApiError> {
    views::service_sets(&*s.control, &caller).map(Json)
}

pub async fn get_one(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ServiceSetView>, ApiError> {
    views::service_sets(&*s.control, &caller)?
        .into_iter()
        .find(|x| x.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no service set {id:?}")))
}
