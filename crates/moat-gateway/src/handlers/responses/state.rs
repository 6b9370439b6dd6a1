//! Responses conversation state: each stored turn is the Response object plus the input items it was
//! made from (the replayed conversation included), sealed with the server secret under its tenant and
//! id, kept in the store until `[responses] ttl_secs`. `GET`, `DELETE` and `…/input_items` read it,
//! always scoped to the caller's tenant: another tenant's id is a 404, exactly like an unknown one.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use moat_store::StoredResponse;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cache;
use crate::gateway::Gateway;
use crate::handlers::caller::Audited;
use crate::GatewayError;

/// One stored turn, as sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Turn {
    /// The Response object as the client received it.
    pub(crate) response: Value,
    /// Every input item of the turn, replayed conversation first.
    pub(crate) input: Vec<Value>,
}

impl Turn {
    /// What the next turn replays: this turn's input, then its output.
    pub(crate) fn conversation(self) -> Vec<Value> {
        let mut items = self.input;
        if let Some(Value::Array(output)) = self.response.get("output") {
            items.extend(output.iter().cloned());
        }
        items
    }
}

/// What a sealed turn is bound to: its tenant and its id.
fn bound(tenant: &str, id: &str) -> String {
    format!("{tenant}\0{id}")
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("No response with id '{id}' found."))
}

fn store_error(e: moat_store::StoreError) -> GatewayError {
    tracing::error!(error = %e, "response store unavailable");
    GatewayError::Internal("the response store is unavailable".into())
}

/// Seals and stores a finished turn; committed when this returns, so the next request can continue it.
pub(crate) fn save(gw: &Gateway, tenant: &str, turn: &Turn) -> Result<(), GatewayError> {
    let id = turn
        .response
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let plain = serde_json::to_vec(turn).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let (nonce, ciphertext) = gw
        .identities
        .secret()
        .seal_state(&bound(tenant, id), &plain)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let now = crate::ledger::now();
    let ttl = i64::try_from(gw.responses.ttl.as_secs()).unwrap_or(i64::MAX);
    gw.store
        .put_response(
            &StoredResponse {
                id: id.to_owned(),
                tenant: tenant.to_owned(),
                nonce,
                ciphertext,
                created_at: now,
                expires_at: now.saturating_add(ttl),
            },
            now,
        )
        .map_err(store_error)
}

/// The tenant's stored turn `id`, or 404.
pub(crate) fn load(gw: &Gateway, tenant: &str, id: &str) -> Result<Turn, GatewayError> {
    let stored = gw
        .store
        .get_response(id, tenant, crate::ledger::now())
        .map_err(store_error)?
        .ok_or_else(|| not_found(id))?;
    let plain = gw
        .identities
        .secret()
        .open_state(&bound(tenant, id), &stored.nonce, &stored.ciphertext)
        .map_err(|_| {
            tracing::error!(
                id,
                "a stored response could not be opened (wrong MOAT_SECRET, or tampered data)"
            );
            not_found(id)
        })?;
    serde_json::from_slice(&plain).map_err(|e| GatewayError::Internal(format!("stored response: {e}")))
}

/// Runs `f` with the caller's tenant, recording the request like any other.
fn scoped(
    caller: Audited,
    f: impl FnOnce(&str) -> Result<Response, GatewayError>,
) -> Result<Response, GatewayError> {
    caller.answer(|principal| f(&cache::partition::tenant(principal)))
}

/// `GET /v1/responses/{id}`.
pub(crate) async fn retrieve(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Query(query): Query<RetrieveQuery>,
    caller: Audited,
) -> Result<Response, GatewayError> {
    scoped(caller, |tenant| {
        if query.stream == Some(true) {
            return Err(GatewayError::BadRequest(
                "stream: replaying a stored response as a stream is not supported; retrieve it whole".into(),
            ));
        }
        Ok(axum::Json(load(&gw, tenant, &id)?.response).into_response())
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct RetrieveQuery {
    stream: Option<bool>,
}

/// `DELETE /v1/responses/{id}`.
pub(crate) async fn delete(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    caller: Audited,
) -> Result<Response, GatewayError> {
    scoped(caller, |tenant| {
        if !gw.store.delete_response(&id, tenant).map_err(store_error)? {
            return Err(not_found(&id));
        }
        Ok(axum::Json(json!({"id": id, "object": "response", "deleted": true})).into_response())
    })
}

/// The query of `…/input_items`, as OpenAI documents it.
#[derive(Debug, Deserialize)]
pub(crate) struct ItemsQuery {
    limit: Option<usize>,
    order: Option<String>,
    after: Option<String>,
}

/// `GET /v1/responses/{id}/input_items`: the turn's input items, newest first unless `order=asc`,
/// `limit` (1–100, default 20) per page, continuing `after` an item id.
pub(crate) async fn input_items(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Query(query): Query<ItemsQuery>,
    caller: Audited,
) -> Result<Response, GatewayError> {
    scoped(caller, |tenant| {
        let limit = query.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(GatewayError::BadRequest(
                "limit: must be between 1 and 100".into(),
            ));
        }
        let mut items = load(&gw, tenant, &id)?.input;
        match query.order.as_deref() {
            None | Some("desc") => items.reverse(),
            Some("asc") => {}
            Some(_) => return Err(GatewayError::BadRequest("order: use \"asc\" or \"desc\"".into())),
        }
        let start = match &query.after {
            Some(after) => items
                .iter()
                .position(|i| i.get("id").and_then(Value::as_str) == Some(after.as_str()))
                .map(|p| p + 1)
                .ok_or_else(|| GatewayError::BadRequest(format!("after: no input item '{after}'")))?,
            None => 0,
        };
        let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
        let has_more = start + page.len() < items.len();
        let edge = |i: Option<&Value>| i.and_then(|v| v.get("id")).cloned().unwrap_or(Value::Null);
        Ok(axum::Json(json!({
            "object": "list",
            "data": page,
            "first_id": edge(page.first()),
            "last_id": edge(page.last()),
            "has_more": has_more,
        }))
        .into_response())
    })
}
