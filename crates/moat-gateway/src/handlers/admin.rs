//! The admin HTTP API (`/admin/...`, admin keys only): the same operations as the `moatd keys`,
//! `teams` and `usage` commands, as JSON.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::admin::{self, LimitSpec, NewKey, NewTeam};
use crate::gateway::Gateway;
use crate::ledger::now;
use crate::GatewayError;

/// Records an admin action made over HTTP in the audit log.
fn record(gw: &Gateway, action: &str, target: &str, details: serde_json::Value) {
    crate::audit::admin(gw.audit.as_deref(), "admin-api", action, target, details);
}

fn guard(gw: &Gateway, headers: &HeaderMap) -> Result<(), GatewayError> {
    if gw.identities.is_admin(headers) {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized)
    }
}

/// Parses a JSON body into `T` with the gateway's error shape (axum's own rejection is plain text).
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(bytes).map_err(|e| GatewayError::BadRequest(format!("invalid request: {e}")))
}

fn done<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(serde_json::json!({ "data": value }))).into_response()
}

pub(crate) async fn create_key(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        let new: NewKey = body(&bytes)?;
        let issued = admin::create_key(gw.store.as_ref(), gw.identities.secret(), &new, now())?;
        record(&gw, "key.create", &issued.id, admin::describe_new_key(&new));
        Ok(done(StatusCode::CREATED, &issued))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn list_keys(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        Ok(done(StatusCode::OK, &admin::list_keys(gw.store.as_ref(), now())?))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn key_action(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        let store = gw.store.as_ref();
        match action.as_str() {
            "revoke" => {
                let id = admin::revoke_key(store, &id, now())?;
                record(&gw, "key.revoke", &id, serde_json::json!({}));
                Ok(done(
                    StatusCode::OK,
                    &serde_json::json!({"id": id, "revoked": true}),
                ))
            }
            "rotate" => {
                let issued = admin::rotate_key(store, gw.identities.secret(), &id)?;
                record(
                    &gw,
                    "key.rotate",
                    &issued.id,
                    serde_json::json!({"prefix": issued.prefix}),
                );
                Ok(done(StatusCode::OK, &issued))
            }
            "limits" => {
                let spec: LimitSpec = body(&bytes)?;
                admin::set_key_limits(store, &id, &spec)?;
                record(
                    &gw,
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
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn create_team(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        let new: NewTeam = body(&bytes)?;
        let team = admin::create_team(gw.store.as_ref(), &new, now())?;
        record(
            &gw,
            "team.create",
            &team.id,
            serde_json::json!({"name": team.name, "limits": new.limits}),
        );
        Ok(done(
            StatusCode::CREATED,
            &serde_json::json!({"id": team.id, "name": team.name}),
        ))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn list_teams(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        Ok(done(
            StatusCode::OK,
            &admin::list_teams(gw.store.as_ref(), now())?,
        ))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    by: Option<String>,
    since: Option<String>,
}

pub(crate) async fn usage(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        let by = admin::group_by(q.by.as_deref().unwrap_or("key"))?;
        let since = match &q.since {
            Some(d) => admin::parse_date(d)?,
            None => 0,
        };
        Ok(done(StatusCode::OK, &admin::usage(gw.store.as_ref(), by, since)?))
    };
    run().unwrap_or_else(IntoResponse::into_response)
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
    headers: HeaderMap,
    Path((team, provider)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        let new: TeamKeyBody = body(&bytes)?;
        let team_id = admin::set_team_provider_key(
            gw.store.as_ref(),
            gw.identities.secret(),
            &team,
            &provider,
            &new.key,
            now(),
        )?;
        record(
            &gw,
            "team.set_provider_key",
            &team_id,
            serde_json::json!({"provider": provider}),
        );
        Ok(done(
            StatusCode::OK,
            &serde_json::json!({"team": team_id, "provider": provider, "stored": true}),
        ))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// Removes a team's own key for a provider.
pub(crate) async fn remove_team_provider_key(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((team, provider)): Path<(String, String)>,
) -> Response {
    let run = || -> Result<Response, GatewayError> {
        guard(&gw, &headers)?;
        let team_id = admin::remove_team_provider_key(gw.store.as_ref(), &team, &provider)?;
        record(
            &gw,
            "team.remove_provider_key",
            &team_id,
            serde_json::json!({"provider": provider}),
        );
        Ok(done(
            StatusCode::OK,
            &serde_json::json!({"team": team_id, "provider": provider, "removed": true}),
        ))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}
