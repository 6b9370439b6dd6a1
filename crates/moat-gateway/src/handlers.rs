//! Request handlers. API handlers take their caller from an extractor ([`caller`]: authenticated, and
//! audited where the request is) before any body is read, and return `Result<Response, _>`: a
//! [`GatewayError`] becomes OpenAI's error shape in `crate::error`, a [`wire::WireError`] the shape of
//! the caller's wire. Everything forwarded goes through [`pipeline`].

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{Method, Uri};

use crate::gateway::Gateway;
use crate::GatewayError;

pub(crate) mod admin;
pub(crate) mod admin_views;
mod admission;
pub(crate) mod caller;
pub(crate) mod count_tokens;
pub(crate) mod key_info;
pub(crate) mod messages;
pub(crate) mod models;
pub(crate) mod pipeline;
pub(crate) mod proxy;
pub(crate) mod request_kinds;
pub(crate) mod responses;
pub(crate) mod translated;
pub(crate) mod wire;

/// `GET /health`: the process is up and serving. No auth, no upstream calls: for load balancers.
pub(crate) async fn health() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
        .into_response()
}

/// `GET /ready`: whether requests can be served, with each provider's health (see `crate::health`).
/// 200 while at least one provider is usable, 503 otherwise. No auth, like `/health`: it names
/// providers and their last error, never a key or a URL.
///
/// It also reports the store and the limits: an unreachable store leaves the node serving (known
/// keys, usage spooled locally) and makes it `degraded`; limits that cannot be checked (the cluster's
/// Valkey unreachable, no fallback) make it `unavailable`, since every metered request gets 503.
pub(crate) async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let mut report = gw.health.report(std::time::Instant::now());
    let store = gw.store.status();
    let limits = gw.limits.status();
    if store.unreachable && report.status == "ready" {
        report.status = "degraded";
    }
    if !limits.available {
        report.status = if limits.fallback {
            "degraded"
        } else {
            "unavailable"
        };
    }
    // A single node on SQLite has nothing to add; a cluster node always reports both.
    let cluster = limits.mode == "cluster";
    if cluster || store != moat_store::StoreStatus::default() {
        report.store = Some(crate::health::StoreReport {
            state: if store.unreachable { "unreachable" } else { "ok" },
            spooled_rows: store.spooled,
            spool_dropped_rows: store.spool_dropped,
            error: store.error,
        });
    }
    if cluster {
        report.limits = Some(limits);
    }
    let status = match report.status {
        "unavailable" => http::StatusCode::SERVICE_UNAVAILABLE,
        _ => http::StatusCode::OK,
    };
    (status, axum::Json(report)).into_response()
}

pub(crate) fn install_metrics() {
    let _ = crate::observe::metrics::prometheus();
}

/// `GET /metrics`: Prometheus text format. Needs an operator (any role: an admin key or a console
/// session) once anyone can be one, and always when moatd listens beyond loopback: request counts by
/// team, model and status are not for whoever can reach the port. Beyond loopback with no operators
/// at all it refuses, saying how to turn it on, rather than being open.
pub(crate) async fn metrics(State(gw): State<Arc<Gateway>>, req: axum::extract::Request) -> Response {
    if gw.console.has_operators(&gw) {
        let (parts, _) = req.into_parts();
        if let Err(e) = crate::console::operator::authenticate(&gw, &parts) {
            return e.into_response();
        }
    } else if !gw.server.listen_loopback {
        return GatewayError::Forbidden {
            message: "/metrics needs an admin key when moatd listens beyond loopback; set server.admin_keys and send one as `Authorization: Bearer <admin key>`".into(),
            code: crate::error::Refused::AdminKeyRequired,
        }
        .into_response();
    }
    let body = crate::observe::metrics::render();
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    GatewayError::NotFound(format!("no route for {}", uri.path())).into_response()
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    GatewayError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path())).into_response()
}
