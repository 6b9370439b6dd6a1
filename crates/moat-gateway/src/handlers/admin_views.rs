//! Read-mostly admin endpoints the console draws from (any role, team admins held to their team):
//! who am I, usage over time, recent requests from the audit log (metadata only), the audit log's
//! verification status with a "verify now", and providers with their health and which teams brought
//! their own key (never the key).

use std::sync::Arc;

use axum::extract::{Query, State};
use http::StatusCode;
use moat_audit::AuditRecord;
use serde::Deserialize;
use serde_json::json;

use super::admin::{admin_error, done, record, Answer};
use crate::admin;
use crate::gateway::Gateway;
use crate::ledger::now;
use crate::roles::Operator;
use crate::GatewayError;

/// Most requests `/admin/requests` returns at once.
pub const MAX_RECENT: usize = 500;
/// Longest usage series, in days.
pub const MAX_SERIES_DAYS: i64 = 366;

/// `GET /admin/me`.
pub(crate) async fn me(op: Operator) -> Answer {
    Ok(done(
        StatusCode::OK,
        &json!({"actor": op.actor, "role": op.role.name(), "team": op.team_scope()}),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SeriesQuery {
    by: Option<String>,
    days: Option<i64>,
    bucket: Option<String>,
}

/// `GET /admin/usage/series?by=team|model|key&days=N&bucket=hour|day`.
pub(crate) async fn series(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    Query(q): Query<SeriesQuery>,
) -> Answer {
    let by = admin::group_by(q.by.as_deref().unwrap_or("team")).map_err(admin_error)?;
    let days = q.days.unwrap_or(7);
    if !(1..=MAX_SERIES_DAYS).contains(&days) {
        return Err(GatewayError::BadRequest(format!(
            "days must be 1-{MAX_SERIES_DAYS}"
        )));
    }
    let bucket = match q.bucket.as_deref().unwrap_or("day") {
        "day" => 86_400,
        "hour" if days <= 31 => 3_600,
        "hour" => {
            return Err(GatewayError::BadRequest(
                "hourly buckets cover 31 days at most".into(),
            ))
        }
        other => {
            return Err(GatewayError::BadRequest(format!(
                "bucket {other:?}: use hour or day"
            )))
        }
    };
    let since = (now() / bucket - (days * 86_400 / bucket) + 1) * bucket;
    let points =
        admin::views::series(gw.store.as_ref(), by, since, bucket, op.team_scope()).map_err(admin_error)?;
    Ok(done(
        StatusCode::OK,
        &json!({"since": since, "bucket": bucket, "points": points}),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RecentQuery {
    limit: Option<usize>,
}

fn audit_log(gw: &Gateway) -> Result<Arc<moat_audit::AuditLog>, GatewayError> {
    gw.audit
        .clone()
        .ok_or_else(|| GatewayError::NotFound("the audit log is off ([audit] enabled = false)".into()))
}

fn audit_failure(e: impl std::fmt::Display) -> GatewayError {
    tracing::error!(error = %e, "reading the audit log");
    GatewayError::Internal("the audit log could not be read".into())
}

/// `GET /admin/requests?limit=N`: the latest requests, as the audit log has them (no bodies).
pub(crate) async fn requests(
    State(gw): State<Arc<Gateway>>,
    op: Operator,
    Query(q): Query<RecentQuery>,
) -> Answer {
    let log = audit_log(&gw)?;
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_RECENT);
    let team_id = match op.team_scope() {
        Some(t) => Some(admin::team_id(gw.store.as_ref(), t).map_err(admin_error)?),
        None => None,
    };
    // Team admins see their team's requests among the latest ones; read more to fill the page.
    let scan = if team_id.is_some() { MAX_RECENT * 4 } else { limit };
    let recent = tokio::task::spawn_blocking(move || log.recent(scan))
        .await
        .map_err(audit_failure)?
        .map_err(audit_failure)?;
    let rows: Vec<serde_json::Value> = recent
        .into_iter()
        .filter_map(|r| match r.record {
            AuditRecord::Request(req) if team_id.is_none() || req.team == team_id => {
                Some(json!({"seq": r.seq, "request": req}))
            }
            _ => None,
        })
        .take(limit)
        .collect();
    Ok(done(StatusCode::OK, &rows))
}

fn report_json(report: &moat_audit::VerifyReport) -> serde_json::Value {
    json!({
        "ok": report.is_ok(),
        "summary": report.summary(),
        "records": report.records,
        "checkpoints": report.checkpoints,
        "last_checkpoint": report.last_checkpoint,
        "public_key": report.public_key,
        "problem": report.problem.as_ref().map(ToString::to_string),
    })
}

/// `GET /admin/audit`: the last verification (or none yet), the writer's counters, and the latest
/// admin actions (admins and viewers; a team admin sees no other team's changes).
pub(crate) async fn audit_status(State(gw): State<Arc<Gateway>>, op: Operator) -> Answer {
    let log = audit_log(&gw)?;
    let stats = log.stats();
    let last = gw.console.last_verification();
    let actions: Vec<serde_json::Value> = if op.team_scope().is_none() {
        let reader = log.clone();
        tokio::task::spawn_blocking(move || reader.recent(MAX_RECENT))
            .await
            .map_err(audit_failure)?
            .map_err(audit_failure)?
            .into_iter()
            .filter_map(|r| match r.record {
                AuditRecord::Admin(a) => Some(json!({"seq": r.seq, "action": a})),
                AuditRecord::Request(_) => None,
            })
            .take(20)
            .collect()
    } else {
        Vec::new()
    };
    Ok(done(
        StatusCode::OK,
        &json!({
            "public_key": log.public_key_hex(),
            "committed": stats.committed,
            "dropped": stats.dropped,
            "checkpoints": stats.checkpoints,
            "last_verification": last,
            "admin_actions": actions,
        }),
    ))
}

/// `POST /admin/audit/verify`: verifies the whole chain and every checkpoint now.
pub(crate) async fn audit_verify(State(gw): State<Arc<Gateway>>, op: Operator) -> Answer {
    let log = audit_log(&gw)?;
    let report = tokio::task::spawn_blocking(move || log.verify_now())
        .await
        .map_err(audit_failure)?
        .map_err(audit_failure)?;
    let mut view = report_json(&report);
    view["at"] = json!(now());
    view["by"] = json!(op.actor);
    gw.console.remember_verification(view.clone());
    record(&gw, &op, "audit.verify", "audit", json!({"ok": report.is_ok()}));
    Ok(done(StatusCode::OK, &view))
}

/// `GET /admin/providers`: each provider's health (as `/ready`), and which teams have their own key
/// for which provider — never the key.
pub(crate) async fn providers(State(gw): State<Arc<Gateway>>, op: Operator) -> Answer {
    let health = gw.health.report(std::time::Instant::now());
    let teams = gw.store.teams().map_err(|e| admin_error(e.into()))?;
    let keys: Vec<serde_json::Value> = gw
        .store
        .team_provider_secrets()
        .map_err(|e| admin_error(e.into()))?
        .into_iter()
        .filter_map(|s| {
            let name = teams.iter().find(|t| t.id == s.team_id).map(|t| t.name.clone())?;
            op.may_touch_team(Some(&name))
                .is_ok()
                .then(|| json!({"team": name, "provider": s.provider}))
        })
        .collect();
    Ok(done(
        StatusCode::OK,
        &json!({"health": health, "team_keys": keys}),
    ))
}
