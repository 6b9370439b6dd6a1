//! `POST /v1/messages`: Anthropic's Messages API in front of any provider. The request is translated
//! to an OpenAI chat request and takes exactly the path `/v1/chat/completions` takes (auth, including
//! an `x-api-key` header; privacy; budgets; routing; audit); the answer — whole, streamed or an error —
//! is translated back into Anthropic's shapes.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderValue};
use moat_translate::anthropic::{
    models_from_openai, to_chat_request, to_messages_response, MessagesRequest, OpenAiToAnthropic,
};
use moat_wire::openai::{ChatCompletionRequest, ChatCompletionResponse, ModelList};
use serde_json::Value;

use super::caller::Audited;
use super::pipeline::forward;
use super::proxy::decode;
use super::wire::{translated_body, WireError};
use crate::gateway::Gateway;
use crate::GatewayError;

/// Whole answers are already in memory when they get here; this only bounds the copy.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

pub(crate) async fn messages(
    State(gw): State<Arc<Gateway>>,
    caller: Audited,
    req: Request,
) -> Result<Response, WireError> {
    let max_event = gw.server.max_event_bytes;
    // The model the client named, which Anthropic's answers echo.
    let model = Arc::new(Mutex::new(String::new()));
    let decode = {
        let model = model.clone();
        move |body: Value| -> Result<ChatCompletionRequest, GatewayError> {
            let request: MessagesRequest = decode(body)?;
            // The first decode is the request as sent; a second one (the redacted copy for
            // non-local providers) must not replace the name the answer echoes.
            let mut named = model.lock().unwrap_or_else(PoisonError::into_inner);
            if named.is_empty() {
                named.clone_from(&request.model);
            }
            to_chat_request(&request).map_err(|e| GatewayError::BadRequest(e.to_string()))
        }
    };
    let response = forward(gw, caller, req, decode)
        .await
        .map_err(WireError::Anthropic)?;
    let model = model.lock().unwrap_or_else(PoisonError::into_inner).clone();
    translate_back(response, &model, max_event)
        .await
        .map_err(WireError::Anthropic)
}

/// The forwarding path's answer (OpenAI's shape, whole or streamed) in Anthropic's shape.
async fn translate_back(response: Response, model: &str, max_event: usize) -> Result<Response, GatewayError> {
    let (mut parts, body) = response.into_parts();
    let streamed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streamed {
        let translator = OpenAiToAnthropic::new(model).with_max_event(max_event);
        return Ok(Response::from_parts(
            parts,
            translated_body(body, translator, |_| {}),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| GatewayError::BadGateway(e.to_string()))?;
    let answer: ChatCompletionResponse = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadGateway(format!("the provider's answer could not be read: {e}")))?;
    let body = serde_json::to_vec(&to_messages_response(&answer, model))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// moatd's merged model list in Anthropic's shape (unchanged if it cannot be read, which cannot happen
/// for a list moatd made itself).
pub(crate) fn anthropic_model_list(body: &Bytes) -> Bytes {
    serde_json::from_slice::<ModelList>(body)
        .ok()
        .and_then(|list| serde_json::to_vec(&models_from_openai(&list)).ok())
        .map_or_else(|| body.clone(), Bytes::from)
}
