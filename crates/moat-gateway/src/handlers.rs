//! Request handlers. Each returns `Result<Response, GatewayError>`; `crate::error` turns failures into
//! OpenAI-shaped responses.

use axum::response::{IntoResponse, Response};
use http::{Method, Uri};

use crate::GatewayError;

pub(crate) mod admin;
pub(crate) mod key_info;
pub(crate) mod models;
pub(crate) mod proxy;

/// `GET /health`: the process is up and serving. No auth, no upstream calls: for load balancers.
pub(crate) async fn health() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
        .into_response()
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    GatewayError::NotFound(format!("no route for {}", uri.path())).into_response()
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    GatewayError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path())).into_response()
}
