//! The admin HTTP API (`/admin/...`): the same operations as the `moatd keys`, `teams` and `usage`
//! commands, as JSON, for an [`Operator`] — an admin key or a console session — held to its role:
//! admins do everything, team admins their own team's keys, key limits and usage, viewers only read.
//! Every change is an audit record naming the operator.
//!
//! The [`Operator`] extractor runs first, so a caller who is not one is refused before a byte of the
//! body is read; [`LimitedBody`] then reads it with the same size and time limits as the API routes, so
//! nobody can hold the server by announcing a large body and dribbling it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde::Deserialize;

use crate::admin::{self, AdminError, LimitSpec, NewKey, NewTeam};
use crate::body::LimitedBody;
use crate::gateway::Gateway;
use crate::ledger::now;
use crate::roles::Operator;
use crate::GatewayError;

pub(crate) type Answer = Result<Response, GatewayError>;

/// Admin failures through the one mapping in `crate::error` (internal detail logged, never sent).
pub(crate) fn admin_error(e: AdminError) -> GatewayError {
    GatewayError::from(e)
}

/// Records an admin action made over HTTP in the audit log, naming who made it.
pub(crate) fn record(gw: &Gateway, op: &Operator, action: &str, target: &str, details: serde_json::Value) {
    crate::audit::admin(gw.audit.as_deref(), &op.actor, action, target, details);
}

/// Parses a JSON body into `T` with the gateway's error shape (axum's own rejection is plain text).
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(bytes).map_err(|e| GatewayError::BadRequest(format!("invalid request: {e}")))
}

pub(crate) fn done<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(serde_json::json!({ "data": value }))).into_response()
}

/// A team admin acts on their own team's keys only.
fn may_touch_key(gw: &Gateway, op: &Operator, which: &str) -> Result<(), GatewayError> {
    if op.team_scope().is_some() {
        let team = admin::key_team(gw.store.as_ref(), gw.identities.secret(), which).map_err(admin_error)?;
        op.may_touch_team(team.as_deref())?;
    }
    Ok(())
}

pub(crate) async fn create_key(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    LimitedBody(bytes): LimitedBody,
) -> Answer {
    op.may_write()?;
    let mut new: NewKey = body(&bytes)?;
    if let Some(own) = op.team_scope() {
        // A team admin's keys are their team's, whether or not the request says so.
        new.team.get_or_insert_with(|| own.to_string());
        op.may_touch_team(new.team.as_deref())?;
    }
    let issued =
        admin::create_key(gw.store.as_ref(), gw.identities.secret(), &new, now()).map_err(admin_error)?;
    record(&gw, &op, "key.create", &issued.id, admin::describe_new_key(&new));
    Ok(done(StatusCode::CREATED, &issued))
}

pub(crate) async fn list_keys(State(gw): State<Arc<Gateway>>, op: Operator) -> Answer {
    let mut keys = admin::list_keys(gw.store.as_ref(), now()).map_err(admin_error)?;
    if let Some(own) = op.team_scope() {
        keys.retain(|k| k.team.as_deref() == Some(own));
    }
    Ok(done(StatusCode::OK, &keys))
}

pub(crate) async fn key_action(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    Path((id, action)): Path<(String, String)>,
    LimitedBody(bytes): LimitedBody,
) -> Answer {
    op.may_write()?;
    may_touch_key(&gw, &op, &id)?;
    let store = gw.store.as_ref();
    match action.as_str() {
        "revoke" => {
            let id = admin::revoke_key(store, gw.identities.secret(), &id, now()).map_err(admin_error)?;
            record(&gw, &op, "key.revoke", &id, serde_json::json!({}));
            Ok(done(
                StatusCode::OK,
                &serde_json::json!({"id": id, "revoked": true}),
            ))
        }
        "rotate" => {
            let issued = admin::rotate_key(store, gw.identities.secret(), &id).map_err(admin_error)?;
            record(
                &gw,
                &op,
                "key.rotate",
                &issued.id,
                serde_json::json!({"prefix": issued.prefix}),
            );
            Ok(done(StatusCode::OK, &issued))
        }
        "limits" => {
            let spec: LimitSpec = body(&bytes)?;
            let id = admin::set_key_limits(store, gw.identities.secret(), &id, &spec).map_err(admin_error)?;
            record(
                &gw,
                &op,
                "key.limits",
                &id,
                serde_json::to_value(&spec).unwrap_or_default(),
            );
            Ok(done(StatusCode::OK, &spec))
        }
        other => Err(GatewayError::NotFound(format!(
            "no key action {other:?}: use revoke, rotate or limits"
        ))),
    }
}

pub(crate) async fn create_team(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    LimitedBody(bytes): LimitedBody,
) -> Answer {
    op.must_be_admin()?;
    let new: NewTeam = body(&bytes)?;
    let team = admin::create_team(gw.store.as_ref(), &new, now()).map_err(admin_error)?;
    record(
        &gw,
        &op,
        "team.create",
        &team.id,
        serde_json::json!({"name": team.name, "limits": new.limits}),
    );
    Ok(done(
        StatusCode::CREATED,
        &serde_json::json!({"id": team.id, "name": team.name}),
    ))
}

/// `POST /admin/teams/{team}/limits`: a team's budget and rates (admins only: a team admin could
/// otherwise lift their own team's budget).
pub(crate) async fn team_limits(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    Path(team): Path<String>,
    LimitedBody(bytes): LimitedBody,
) -> Answer {
    op.must_be_admin()?;
    let spec: LimitSpec = body(&bytes)?;
    admin::set_team_limits(gw.store.as_ref(), &team, &spec).map_err(admin_error)?;
    let id = admin::team_id(gw.store.as_ref(), &team).map_err(admin_error)?;
    record(
        &gw,
        &op,
        "team.limits",
        &id,
        serde_json::to_value(&spec).unwrap_or_default(),
    );
    Ok(done(StatusCode::OK, &spec))
}

pub(crate) async fn list_teams(State(gw): State<Arc<Gateway>>, op: Operator) -> Answer {
    let mut teams = admin::list_teams(gw.store.as_ref(), now()).map_err(admin_error)?;
    if let Some(own) = op.team_scope() {
        teams.retain(|t| t.name == own);
    }
    Ok(done(StatusCode::OK, &teams))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    by: Option<String>,
    since: Option<String>,
}

pub(crate) async fn usage(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    Query(q): Query<UsageQuery>,
) -> Answer {
    let by = admin::group_by(q.by.as_deref().unwrap_or("key")).map_err(admin_error)?;
    let since = match &q.since {
        Some(d) => admin::parse_date(d).map_err(admin_error)?,
        None => 0,
    };
    let lines = match op.team_scope() {
        Some(team) => admin::views::team_usage(gw.store.as_ref(), by, since, team),
        None => admin::usage(gw.store.as_ref(), by, since),
    }
    .map_err(admin_error)?;
    Ok(done(StatusCode::OK, &lines))
}

/// `{"key": "..."}` for `PUT /admin/teams/{team}/provider-keys/{provider}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamKeyBody {
    key: String,
}

/// Stores a team's own key for a provider (bring your own key). The key is never echoed.
pub(crate) async fn set_team_provider_key(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    Path((team, provider)): Path<(String, String)>,
    LimitedBody(bytes): LimitedBody,
) -> Answer {
    op.must_be_admin()?;
    let new: TeamKeyBody = body(&bytes)?;
    let team_id = admin::set_team_provider_key(
        gw.store.as_ref(),
        gw.identities.secret(),
        &team,
        &provider,
        &new.key,
        now(),
    )
    .map_err(admin_error)?;
    record(
        &gw,
        &op,
        "team.set_provider_key",
        &team_id,
        serde_json::json!({"provider": provider}),
    );
    Ok(done(
        StatusCode::OK,
        &serde_json::json!({"team": team_id, "provider": provider, "stored": true}),
    ))
}

/// Removes a team's own key for a provider.
pub(crate) async fn remove_team_provider_key(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    Path((team, provider)): Path<(String, String)>,
) -> Answer {
    op.must_be_admin()?;
    let team_id =
        admin::remove_team_provider_key(gw.store.as_ref(), &team, &provider).map_err(admin_error)?;
    record(
        &gw,
        &op,
        "team.remove_provider_key",
        &team_id,
        serde_json::json!({"provider": provider}),
    );
    Ok(done(
        StatusCode::OK,
        &serde_json::json!({"team": team_id, "provider": provider, "removed": true}),
    ))
}
