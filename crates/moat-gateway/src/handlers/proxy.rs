//! `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`: OpenAI's own requests, each
//! decoded as it is and forwarded through the one request path (`super::pipeline`), their bytes kept
//! to be edited in place for providers that take them as they are; and the body parsing every
//! endpoint shares.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use moat_wire::edit::Unique;
use moat_wire::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::caller::Audited;
use super::pipeline::forward_as_sent;
use crate::gateway::Gateway;
use crate::GatewayError;

pub(crate) async fn chat_completions(
    State(gw): State<Arc<Gateway>>,
    caller: Audited,
    req: Request,
) -> Result<Response, GatewayError> {
    forward_as_sent::<ChatCompletionRequest>(gw, caller, req).await
}

pub(crate) async fn completions(
    State(gw): State<Arc<Gateway>>,
    caller: Audited,
    req: Request,
) -> Result<Response, GatewayError> {
    forward_as_sent::<CompletionRequest>(gw, caller, req).await
}

pub(crate) async fn embeddings(
    State(gw): State<Arc<Gateway>>,
    caller: Audited,
    req: Request,
) -> Result<Response, GatewayError> {
    forward_as_sent::<EmbeddingRequest>(gw, caller, req).await
}

/// Parses the body as JSON, telling an empty body and malformed JSON (400 `invalid_json`) apart.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Value, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::BadRequest(
            "request body is empty: send a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| GatewayError::InvalidJson(format!("request body is not valid JSON: {e}")))
}

/// [`parse_body`] for the admit stage: the bytes come back too when no object in them repeats a
/// key, so that an attempt may forward them edited in place (`moat_wire::edit`).
pub(crate) fn parse_body_kept<B: AsRef<[u8]>>(bytes: B) -> Result<(Value, Option<Unique<B>>), GatewayError> {
    if bytes.as_ref().iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::BadRequest(
            "request body is empty: send a JSON object".into(),
        ));
    }
    moat_wire::edit::parse(bytes)
        .map_err(|e| GatewayError::InvalidJson(format!("request body is not valid JSON: {e}")))
}

/// Parses and decodes a body in one step, for handlers that read a body before the forwarding path
/// does (to route it, or to answer it themselves).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    decode(parse_body(bytes)?)
}

/// Decodes a parsed body into an endpoint's request (400 `invalid_request` when its shape is wrong).
pub(crate) fn decode<T: DeserializeOwned>(body: Value) -> Result<T, GatewayError> {
    serde_json::from_value(body).map_err(|e| GatewayError::BadRequest(format!("invalid request: {e}")))
}
