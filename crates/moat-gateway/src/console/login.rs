//! Logging in with an admin key (typed into the console's password field, exchanged here for a
//! session so the key never stays in the browser), logging out, and what the page asks about its
//! session. Logins and logouts are audit records naming the operator.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::operator::by_key;
use super::session::{csrf_ok, same_origin, Session};
use crate::gateway::Gateway;
use crate::roles::Operator;
use crate::GatewayError;

/// `GET /ui/config`: which ways to log in the page should offer. No secrets, no auth.
pub(crate) async fn config(State(gw): State<Arc<Gateway>>) -> Response {
    Json(json!({"sso": gw.console.sso.is_some()})).into_response()
}

fn describe(session: &Session) -> serde_json::Value {
    let left = session
        .expires
        .saturating_duration_since(Instant::now())
        .as_secs();
    json!({"data": {
        "actor": session.operator.actor,
        "role": session.operator.role.name(),
        "team": session.operator.team_scope(),
        "csrf": session.csrf,
        "expires_in": left,
    }})
}

/// `GET /ui/session`: who is logged in, and the CSRF token the page sends back on changes.
pub(crate) async fn session(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match gw.console.sessions.find(&headers, Instant::now()) {
        Some(s) => Json(describe(&s)).into_response(),
        None => GatewayError::Unauthorized.into_response(),
    }
}

/// Starts a session for `operator` and answers with its cookie; records the login.
pub(crate) fn start_session(
    gw: &Gateway,
    operator: Operator,
    how: &str,
) -> Result<(String, Session), GatewayError> {
    let actor = operator.actor.clone();
    let role = operator.role.name();
    let (cookie, session) = gw
        .console
        .sessions
        .create(operator, Instant::now())
        .map_err(|e| GatewayError::Internal(format!("no randomness for a session: {e}")))?;
    crate::audit::admin(
        gw.audit.as_deref(),
        &actor,
        "console.login",
        &actor,
        json!({"via": how, "role": role}),
    );
    Ok((cookie, session))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyLogin {
    key: String,
}

/// `POST /ui/login` `{"key": "..."}`.
pub(crate) async fn with_key(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    crate::body::LimitedBody(body): crate::body::LimitedBody,
) -> Response {
    let run = || -> Result<Response, GatewayError> {
        // A login forced on someone from another site would act under the attacker's key.
        if !same_origin(&headers) {
            return Err(GatewayError::Forbidden {
                message: "cross-origin login refused".into(),
                code: crate::error::Refused::CsrfFailed,
            });
        }
        let login: KeyLogin = serde_json::from_slice(&body)
            .map_err(|e| GatewayError::BadRequest(format!("invalid request: {e}")))?;
        let operator = by_key(&gw, login.key.trim()).ok_or(GatewayError::Unauthorized)?;
        let (cookie, session) = start_session(&gw, operator, "admin key")?;
        let mut resp = Json(describe(&session)).into_response();
        if let Ok(v) = cookie.parse() {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        Ok(resp)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /ui/logout`: ends the session (with its CSRF token) and clears the cookie.
pub(crate) async fn logout(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let Some(session) = gw.console.sessions.find(&headers, Instant::now()) else {
        return GatewayError::Unauthorized.into_response();
    };
    if !csrf_ok(&headers, &session) || !same_origin(&headers) {
        return GatewayError::Forbidden {
            message: "missing or wrong CSRF token: reload the console".into(),
            code: crate::error::Refused::CsrfFailed,
        }
        .into_response();
    }
    let cookie = gw.console.sessions.end(&headers);
    let actor = &session.operator.actor;
    crate::audit::admin(gw.audit.as_deref(), actor, "console.logout", actor, json!({}));
    let mut resp = (StatusCode::OK, Json(json!({"data": {"logged_out": true}}))).into_response();
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
