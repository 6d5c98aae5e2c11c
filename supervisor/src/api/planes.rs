//! `/v1/control-planes` and `/v1/workflows`: customers provision their
//! virtual control planes through workflows.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use vcp_common::module::Kind;

use super::error::parse_json;
use super::views::{self, PlaneView};
use super::{blocking, ApiError, ApiState, Caller};
use crate::provisioner::Payload;
use crate::workflow::WorkflowView;
use vcp_core::plane::{virtual_plane_id, DEFAULT_PLANE};
use vcp_core::plane::{Choice, PlaneSpec};
use vcp_store::accounts::Role;

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<PlaneView>>, ApiError> {
    views::planes(&*s.control, &caller).map(Json)
}

pub async fn get_one(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PlaneView>, ApiError> {
    views::planes(&*s.control, &caller)?
        .into_iter()
        .find(|p| p.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no control plane {id:?}")))
}

/// The body of `POST /v1/control-planes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePlane {
    /// The customer; a customer's token may leave it out.
    #[serde(default)]
    customer: Option<String>,
    /// Per kind: keep the default, replace it or complement it with a
    /// custom module. Kinds left out keep the default.
    #[serde(default)]
    modules: BTreeMap<Kind, Choice>,
}

/// What a request that starts a workflow returns (202).
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub workflow: String,
    pub control_plane: String,
    /// Where to follow the workflow.
    pub status: String,
}

fn accepted(workflow: String, plane: String) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: format!("/v1/workflows/{workflow}"),
            workflow,
            control_plane: plane,
        }),
    )
}

/// Starts a workflow of `template` on plane `plane`.
async fn submit(
    s: &ApiState,
    template: &'static str,
    caller: &Caller,
    plane: String,
    payload: Payload,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let payload = serde_json::to_value(payload).map_err(ApiError::internal)?;
    let (engine, owner, subject) = (s.engine.clone(), caller.account.clone(), plane.clone());
    let wf = blocking(move || engine.submit(template, &owner, &subject, payload)).await?;
    let action = format!("plane.{template}");
    let actor = caller.ledger_account();
    s.audit
        .record(&actor, &action, &plane, format!("workflow {wf}"))
        .await
        .map_err(ApiError::internal)?;
    Ok(accepted(wf, plane))
}

pub async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require_role(&[Role::Customer, Role::Operator])?;
    let req: CreatePlane = parse_json(&body)?;
    let customer = match (req.customer, caller.role) {
        (Some(c), Role::Customer) if c != caller.account => {
            return Err(ApiError::forbidden(format!(
                "a token of {:?} may not provision for {c:?}",
                caller.account
            )))
        }
        (None, Role::Customer) => caller.account.clone(),
        (Some(c), _) => c,
        (None, _) => {
            return Err(ApiError::unprocessable(
                "invalid request: missing field `customer`",
            ))
        }
    };
    let spec = PlaneSpec {
        customer,
        modules: req.modules,
    };
    crate::provision::validate(&spec, s.control.file()).map_err(ApiError::unprocessable)?;
    let id = virtual_plane_id(&spec.customer);
    if s.control.plane(&id).is_some() {
        return Err(ApiError::conflict(format!(
            "customer {:?} already has control plane {id:?}",
            spec.customer
        )));
    }
    let (planes, customer) = (s.planes.clone(), spec.customer.clone());
    if let Some(r) = blocking(move || planes.get(&customer)).await? {
        // A record whose workflow ended without the plane in force (its
        // rollback failed) is stale; anything else is in progress.
        let (engine, wf) = (s.engine.clone(), r.workflow.clone());
        let running = blocking(move || engine.get(&wf))
            .await?
            .is_some_and(|w| !w.state.is_final());
        if running {
            return Err(ApiError::conflict(format!(
                "control plane {id:?} is being provisioned by {}",
                r.workflow
            )));
        }
        let (planes, customer) = (s.planes.clone(), spec.customer.clone());
        blocking(move || planes.remove(&customer)).await?;
    }
    let payload = Payload {
        spec,
        provisioned_by: None,
    };
    submit(&s, "provision", &caller, id, payload).await
}

pub async fn delete(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Json(plane) = get_one(State(s.clone()), caller.clone(), Path(id.clone())).await?;
    if plane.id == DEFAULT_PLANE {
        return Err(ApiError::conflict(
            "the default control plane cannot be removed",
        ));
    }
    let Some(spec) = s.control.provisioned(&plane.customer) else {
        return Err(ApiError::conflict(format!(
            "control plane {id:?} comes from the supervisor's configuration file; remove it there"
        )));
    };
    let (planes, customer) = (s.planes.clone(), plane.customer.clone());
    let provisioned_by = blocking(move || planes.get(&customer))
        .await?
        .map(|r| r.workflow);
    submit(
        &s,
        "deprovision",
        &caller,
        id,
        Payload {
            spec,
            provisioned_by,
        },
    )
    .await
}

/// Whether the caller may see workflow `w`: the operator all, a customer
/// those it started and those on its plane; vendors start none.
fn may_see(caller: &Caller, w: &WorkflowView) -> Result<bool, ApiError> {
    match caller.role {
        Role::Operator => Ok(true),
        Role::Customer => {
            Ok(w.owner == caller.account || w.subject == virtual_plane_id(&caller.account))
        }
        Role::Vendor | Role::Enrol => Err(ApiError::forbidden(
            "vendors do not provision control planes",
        )),
    }
}

pub async fn workflows(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    caller.require_role(&[Role::Operator, Role::Customer])?;
    let engine = s.engine.clone();
    let all = blocking(move || engine.list(None)).await?;
    let mut mine = Vec::new();
    for w in all {
        if may_see(&caller, &w)? {
            mine.push(w);
        }
    }
    Ok(Json(mine))
}

pub async fn workflow(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let (engine, wf) = (s.engine.clone(), id.clone());
    caller.require_role(&[Role::Operator, Role::Customer])?;
    match blocking(move || engine.get(&wf)).await? {
        Some(w) if may_see(&caller, &w)? => Ok(Json(w)),
        _ => Err(ApiError::not_found(format!("no workflow {id:?}"))),
    }
}
