//! `POST /v1/messages`: Anthropic's Messages API in front of any provider. The request is translated
//! to an OpenAI chat request and takes exactly the path `/v1/chat/completions` takes (auth, including
//! an `x-api-key` header; privacy; budgets; routing; audit); the answer — whole, streamed or an error —
//! is translated back into Anthropic's shapes.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderValue, StatusCode};
use moat_translate::anthropic::{
    error_body, error_type_for_status, models_from_openai, to_chat_request, to_messages_response,
    MessagesRequest, OpenAiToAnthropic,
};
use moat_translate::StreamTranslator;
use moat_wire::error::ErrorBody;
use moat_wire::openai::{ChatCompletionRequest, ChatCompletionResponse, ModelList};
use serde_json::Value;

use super::proxy::{decode, forward};
use crate::gateway::Gateway;
use crate::GatewayError;

/// Whole answers are already in memory when they get here; this only bounds the copy.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

pub(crate) async fn messages(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let gw_max_event = gw.server.max_event_bytes;
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
    let response = forward(gw, req, decode)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    let model = model.lock().unwrap_or_else(PoisonError::into_inner).clone();
    translate_back(response, &model, gw_max_event).await
}

/// The OpenAI-shaped response of the forwarding path, in Anthropic's shape.
pub(super) async fn translate_back(response: Response, model: &str, max_event: usize) -> Response {
    let (mut parts, body) = response.into_parts();
    let streamed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if parts.status.is_success() && streamed {
        let translator = OpenAiToAnthropic::new(model).with_max_event(max_event);
        let body = Body::from_stream(translated(body.into_data_stream(), translator));
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(b) => b,
        Err(e) => return anthropic_error(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    if !parts.status.is_success() {
        let message = ErrorBody::from_slice(&bytes)
            .map(|b| b.error.message)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        let mut resp = anthropic_error(parts.status, &message);
        for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(v) = parts.headers.remove(&name) {
                resp.headers_mut().insert(name, v);
            }
        }
        for (name, v) in parts.headers.iter().filter(|(n, _)| n.as_str().starts_with("x-")) {
            resp.headers_mut().insert(name.clone(), v.clone());
        }
        return resp;
    }
    let answer: ChatCompletionResponse = match serde_json::from_slice(&bytes) {
        Ok(a) => a,
        Err(e) => {
            return anthropic_error(
                StatusCode::BAD_GATEWAY,
                &format!("the provider's answer could not be read: {e}"),
            )
        }
    };
    let body = match serde_json::to_vec(&to_messages_response(&answer, model)) {
        Ok(b) => b,
        Err(e) => return anthropic_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

/// moatd's merged model list in Anthropic's shape (unchanged if it cannot be read, which cannot happen
/// for a list moatd made itself).
pub(crate) fn anthropic_model_list(body: &Bytes) -> Bytes {
    serde_json::from_slice::<ModelList>(body)
        .ok()
        .and_then(|list| serde_json::to_vec(&models_from_openai(&list)).ok())
        .map_or_else(|| body.clone(), Bytes::from)
}

pub(super) fn anthropic_error(status: StatusCode, message: &str) -> Response {
    let body = error_body(error_type_for_status(status.as_u16()), message);
    let mut resp = (status, Bytes::from(body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The relayed OpenAI stream through the translator, ending with what it still owes. Dropping this
/// (the client left, or the translator stopped on an error of its own) drops the relay under it,
/// which cancels the provider's work and settles.
fn translated<S, E>(body: S, translator: OpenAiToAnthropic) -> impl Stream<Item = Result<Bytes, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    futures_util::stream::unfold(Some((body, translator)), |state| async move {
        let (mut body, mut t) = state?;
        match body.next().await {
            Some(Ok(chunk)) => {
                let out = Ok(Bytes::from(t.feed(&chunk)));
                // After an error event of its own nothing more can go out: stop reading.
                let failed = matches!(t.stopped(), Some(Err(_)));
                Some((out, (!failed).then_some((body, t))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None => Some((Ok(Bytes::from(t.finish())), None)),
        }
    })
}
