//! The response cache on the request path: answering a hit (still admitted, audited and metered,
//! at zero cost, by the request's `Outcome`) and keeping a fresh answer.

use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};

use super::response::{Cached, Decision, ResponseCache, HEADER};

impl Decision {
    /// The `x-moat-cache` value for an answer that came from a provider.
    pub(crate) fn miss_header(&self) -> Option<HeaderValue> {
        match self {
            Decision::Off => None,
            Decision::Bypass => Some(HeaderValue::from_static("bypass")),
            Decision::Use(_) => Some(HeaderValue::from_static("miss")),
        }
    }
}

/// The answer for a hit (settled by the request's `Outcome`: zero cost, a `cache_hit` usage row).
pub(crate) fn hit(cached: Cached, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(cached.body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        cached
            .content_type
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    h.insert(HEADER, HeaderValue::from_static("hit"));
    if let Ok(v) = HeaderValue::from_str(&cached.provider) {
        h.insert("x-moat-provider", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    response
}

/// Keeps a successful whole answer under `key` and hands the response back unchanged (its body is
/// already in memory: non-streamed answers are read whole before they are passed on).
pub(crate) async fn keep(
    cache: &ResponseCache,
    key: [u8; 32],
    response: Response,
    provider: &str,
    model: &str,
) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    cache.put(
        key,
        Cached {
            body: bytes.clone(),
            content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
            provider: provider.to_string(),
            model: model.to_string(),
        },
        Instant::now(),
    );
    Response::from_parts(parts, Body::from(bytes))
}
