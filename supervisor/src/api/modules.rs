//! `/v1/modules` (the catalog, with reputation and contribution), module
//! feedback, and `/v1/decisions`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::parse_json;
use super::extract::Params;
use super::views::{self, DecisionView, ModuleView};
use super::{blocking, ApiError, ApiState, Caller};
use crate::judge::module_key;
use crate::unix_ms;
use vcp_core::plane::virtual_plane_id;
use vcp_store::accounts::Role;
use vcp_store::planes::FeedbackRecord;

pub async fn list(State(s): State<ApiState>, caller: Caller) -> Json<Vec<ModuleView>> {
    Json(views::modules(&*s.control, &caller))
}

pub async fn get_one(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ModuleView>, ApiError> {
    views::modules(&*s.control, &caller)
        .into_iter()
        .find(|m| m.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no module {id:?}")))
}

/// The body of `POST /v1/modules/{id}/feedback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Feedback {
    /// 1 (bad) to 5 (excellent).
    rating: f64,
    #[serde(default)]
    comment: String,
    /// The plane the module serves; a customer's own by default.
    #[serde(default)]
    control_plane: Option<String>,
}

/// Ratings one account may give one module in one plane per window.
const FEEDBACK_PER_WINDOW: usize = 10;
const FEEDBACK_WINDOW_MS: i64 = 60_000;

/// Longest feedback comment kept.
const MAX_COMMENT: usize = 2000;

pub async fn feedback(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<FeedbackRecord>), ApiError> {
    caller.require_role(&[Role::Customer, Role::Operator])?;
    let f: Feedback = parse_json(&body)?;
    if !(1.0..=5.0).contains(&f.rating) {
        return Err(ApiError::unprocessable(format!(
            "rating {} is not in 1..=5",
            f.rating
        )));
    }
    if f.comment.chars().count() > MAX_COMMENT {
        return Err(ApiError::unprocessable(format!(
            "comment is longer than {MAX_COMMENT} characters"
        )));
    }
    // The module must be one the caller sees (404 otherwise).
    let _ = get_one(State(s.clone()), caller.clone(), Path(id.clone())).await?;
    let plane = match (f.control_plane, caller.role) {
        (Some(p), _) => p,
        (None, Role::Customer) => {
            let own = virtual_plane_id(&caller.account);
            if s.control.plane(&own).is_some() {
                own
            } else {
                vcp_core::plane::DEFAULT_PLANE.to_owned()
            }
        }
        (None, _) => {
            return Err(ApiError::unprocessable(
                "invalid request: missing field `control_plane`",
            ))
        }
    };
    let Some(p) = s.control.plane(&plane) else {
        return Err(ApiError::not_found(format!("no control plane {plane:?}")));
    };
    // A customer rates modules of its own plane, or of the default plane
    // when its service sets run there.
    let concerns_caller = views::sees_plane(&caller, &p)
        || p.scope
            .service_sets
            .iter()
            .any(|x| x.customer == caller.account);
    if !concerns_caller {
        return Err(ApiError::not_found(format!("no control plane {plane:?}")));
    }
    if s.control.known_stats(&id, &plane).is_none() {
        return Err(ApiError::unprocessable(format!(
            "module {id:?} has not served control plane {plane:?}"
        )));
    }
    let record = FeedbackRecord {
        module: id,
        control_plane: plane,
        account: caller.account.clone(),
        rating: f.rating,
        comment: f.comment,
        at_ms: unix_ms(),
    };
    // Stored first (and counted): a rating that reached the judge is on
    // record, and one account cannot flood a module's reputation.
    let (planes, stored) = (s.planes.clone(), record.clone());
    let number = blocking(move || {
        let recent = planes.feedback_since(
            &stored.account,
            &stored.module,
            &stored.control_plane,
            stored.at_ms - FEEDBACK_WINDOW_MS,
        )?;
        if recent >= FEEDBACK_PER_WINDOW {
            return Ok(None);
        }
        planes.add_feedback(&stored).map(Some)
    })
    .await?;
    let Some(number) = number else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "at most {FEEDBACK_PER_WINDOW} ratings of {:?} a minute per account",
                record.module
            ),
        ));
    };
    s.control
        .judge()
        .feedback(
            module_key(&record.control_plane, &record.module),
            f.rating,
            Some(number),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn decisions(
    State(s): State<ApiState>,
    caller: Caller,
    Params(q): Params<Limit>,
) -> Result<Json<Vec<DecisionView>>, ApiError> {
    views::decisions(&*s.control, &caller, q.limit).map(Json)
}
