//! `GET /api/v1/key`: the calling key's limit and usage in OpenRouter's shape, so OpenRouter clients
//! (and `moat doctor`) can check a moatd key exactly as they check an OpenRouter one.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use moat_policy::budget::{Nanos, Period, NANOS_PER_USD};
use moat_store::Scope;
use serde_json::{json, Value};

use crate::gateway::Gateway;
use crate::handlers::caller::Caller;
use crate::identity::Principal;
use crate::ledger::now;
use crate::GatewayError;

fn usd(n: Nanos) -> f64 {
    n as f64 / NANOS_PER_USD as f64
}

fn rfc3339(secs: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

pub(crate) async fn key_info(
    State(gw): State<Arc<Gateway>>,
    Caller(principal): Caller,
) -> Result<Response, GatewayError> {
    let now = now();
    let Principal::Virtual(key) = principal else {
        return Ok(Json(json!({"data": {
            "label": "moatd static key (no limit)", "limit": null, "usage": 0.0, "limit_remaining": null,
            "limit_reset": null, "usage_daily": 0.0, "usage_weekly": 0.0, "usage_monthly": 0.0,
            "expires_at": null, "is_free_tier": false, "is_provisioning_key": false
        }}))
        .into_response());
    };
    let store = gw.store.as_ref();
    store.flush()?;
    let scope = Scope::Key(key.id.clone());
    let since = |t: i64| store.spend_since(&scope, t).map_err(GatewayError::from);
    let day = Period::Day.window(now).0;
    let days_since_monday = (now.div_euclid(86_400) + 3).rem_euclid(7);
    let week = day - days_since_monday * 86_400;
    let month = Period::Month.window(now).0;
    let (window_spent, total, budget) = gw.limits.key_status(&key.id, now).unwrap_or((0, since(0)?, None));
    let limit = budget.map(|b| usd(b.limit));
    let remaining = budget.map(|b| usd(b.limit.saturating_sub(window_spent)));
    let reset = budget.and_then(|b| match b.period {
        Period::Day => Some("daily"),
        Period::Month => Some("monthly"),
        Period::Total => None,
    });
    Ok(Json(json!({"data": {
        "label": format!("{} ({}…)", key.name, key.prefix),
        "limit": limit,
        "usage": usd(total),
        "limit_remaining": remaining,
        "limit_reset": reset,
        "usage_daily": usd(since(day)?),
        "usage_weekly": usd(since(week)?),
        "usage_monthly": usd(since(month)?),
        "expires_at": key.expires_at.map_or(Value::Null, rfc3339),
        "is_free_tier": false,
        "is_provisioning_key": false,
    }}))
    .into_response())
}
