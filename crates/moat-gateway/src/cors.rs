//! CORS for browser apps calling moatd directly: `[server] cors_origins` lists the origins allowed
//! (`*` for any). Preflights from an allowed origin are answered here (204); answers to its requests
//! carry `Access-Control-Allow-Origin`. With the list empty (the default) this layer is not installed,
//! and browsers refuse cross-origin calls as they should. Authentication is unchanged: a browser still
//! needs a key, and CORS never lets a page read anything its key could not.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::GatewayError;

/// Headers a browser app may send when it does not say (the SDKs' own).
const DEFAULT_HEADERS: &str =
    "authorization, content-type, x-api-key, anthropic-version, openai-organization, openai-project";

/// The allowed origin of a request, echoed back (never `*`, so an `Authorization` header is allowed).
fn allowed(origins: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    let text = origin.to_str().ok()?.to_ascii_lowercase();
    origins
        .iter()
        .any(|o| o == "*" || *o == text)
        .then(|| origin.clone())
}

pub(crate) async fn layer(State(origins): State<Arc<Vec<String>>>, req: Request, next: Next) -> Response {
    let origin = allowed(&origins, req.headers());
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(origin) = origin else {
            return GatewayError::Forbidden {
                message: "this origin is not in server.cors_origins".into(),
                code: crate::error::Refused::CorsOriginNotAllowed,
            }
            .into_response();
        };
        let requested = req
            .headers()
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static(DEFAULT_HEADERS));
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
        );
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested);
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        h.insert(VARY, HeaderValue::from_static("Origin"));
        return resp;
    }
    let mut resp = next.run(req).await;
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, x-moat-provider, retry-after"),
        );
        h.append(VARY, HeaderValue::from_static("Origin"));
    }
    resp
}
