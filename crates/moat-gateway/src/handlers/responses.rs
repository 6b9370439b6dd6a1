//! `POST /v1/responses`: OpenAI's Responses API in front of any provider. The conversation a request
//! continues is replayed from moatd's own store into the request itself; for chat-only providers the
//! result is translated to a chat request that takes exactly the path `/v1/chat/completions` takes —
//! keys, budgets (the replayed turns included), privacy over all of it, partition, routing, audit —
//! and the answer, whole or streamed, comes back as a Response object or the Responses event
//! sequence. The finished turn is
//! stored (sealed, per tenant) before its last byte reaches the client, so `previous_response_id`
//! works the moment the client has the answer.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use moat_translate::responses::{
    inline_history, to_chat_request, to_response, ChatToResponses, Envelope, ItemIds, ResponsesRequest,
};
use moat_wire::openai::{ChatCompletionRequest, ChatCompletionResponse};
use serde_json::Value;

use super::caller::Audited;
use super::pipeline::forward;
use super::proxy::{decode, parse};
use super::wire::translated_body;
use crate::gateway::Gateway;
use crate::GatewayError;

mod native;
pub(crate) mod state;

use state::Turn;

/// Whole answers are already in memory when they get here; this only bounds the copy.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// What the decoder learned that the answer's translation needs.
#[derive(Debug)]
struct Pending {
    envelope: Envelope,
    input: Vec<Value>,
    /// Whose conversation this is, when the turn is to be kept (`store` not false).
    keep_for: Option<String>,
}

pub(crate) async fn create(
    State(gw): State<Arc<Gateway>>,
    caller: Audited,
    req: Request,
) -> Result<Response, GatewayError> {
    let id = match crate::secret::new_response_id() {
        Ok(id) => id,
        Err(e) => return Err(caller.refuse(GatewayError::Internal(e.to_string()))),
    };
    // Whose conversation this is.
    let tenant = crate::cache::partition::tenant(&caller.principal);
    let (mut parts, body) = req.into_parts();
    let prepared = prepare(&gw, &parts.headers, body, &tenant, &id).await;
    parts.headers.remove(header::CONTENT_LENGTH);
    let (request, body) = match prepared {
        Ok(p) => p,
        // Refused before anything could leave; recorded like any request.
        Err(e) => return Err(caller.refuse(e)),
    };
    let req = Request::from_parts(parts, Body::from(body));
    if native::serves(&gw, &request) {
        return native::relay(&gw, caller, req, &id, tenant).await;
    }
    let pending: Arc<Mutex<Option<Pending>>> = Arc::default();
    let decode = bridged(pending.clone(), id, tenant);
    let response = forward(gw.clone(), caller, req, decode).await?;
    let pending = pending.lock().unwrap_or_else(PoisonError::into_inner).take();
    match pending {
        Some(p) => translate_back(gw, response, p).await,
        None => Ok(response),
    }
}

/// The endpoint's decoder: a Responses request bridged onto chat. The first decode is the request as
/// sent, which the Response object echoes and the conversation keeps; a second one (the redacted copy
/// for non-local providers) leaves `pending` alone.
fn bridged(
    pending: Arc<Mutex<Option<Pending>>>,
    id: String,
    tenant: String,
) -> impl Fn(Value) -> Result<ChatCompletionRequest, GatewayError> + Send + Sync {
    move |body: Value| {
        let request: ResponsesRequest = decode(body)?;
        let mut ids = ItemIds::new(&format!("{id}_in"));
        let bridged =
            to_chat_request(&request, &[], &mut ids).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        let created_at = crate::ledger::now().max(0) as u64;
        pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| Pending {
                envelope: Envelope::new(&request, &id, created_at),
                input: bridged.input_items,
                keep_for: request.stores().then(|| tenant.clone()),
            });
        Ok(bridged.chat)
    }
}

/// The request as moatd admits it: its body read within the limits, and the conversation it
/// continues (`previous_response_id`, the caller's own) inlined into its input. The body then holds
/// everything the model will read, so the privacy scan and the budget reservation cover the replayed
/// turns like any other part of the request.
async fn prepare(
    gw: &Gateway,
    headers: &http::HeaderMap,
    body: Body,
    tenant: &str,
    id: &str,
) -> Result<(ResponsesRequest, Vec<u8>), GatewayError> {
    let bytes = crate::body::read_limited(
        headers,
        body,
        gw.server.max_body_bytes,
        gw.server.body_read_timeout,
    )
    .await?;
    let mut request: ResponsesRequest = parse(&bytes)?;
    let Some(previous) = request.previous_response_id.clone() else {
        return Ok((request, bytes.to_vec()));
    };
    let history = state::load(gw, tenant, &previous)?.conversation();
    inline_history(&mut request, history, &mut ItemIds::new(&format!("{id}_in")))
        .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    let body = serde_json::to_vec(&request).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let limit = gw.responses.max_conversation_bytes.min(gw.server.max_body_bytes);
    if body.len() > limit {
        return Err(GatewayError::BadRequest(format!(
            "the conversation continued by previous_response_id is {} bytes, more than moatd continues ({limit}: responses.max_conversation_bytes, server.max_body_bytes); start a new one",
            body.len()
        )));
    }
    Ok((request, body))
}

/// The chat-shaped answer of the forwarding path as a Response object or Responses events.
async fn translate_back(
    gw: Arc<Gateway>,
    response: Response,
    pending: Pending,
) -> Result<Response, GatewayError> {
    let max_event = gw.server.max_event_bytes;
    let (mut parts, body) = response.into_parts();
    let streamed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut saver = Saver {
        gw,
        keep_for: pending.keep_for,
        input: Some(pending.input),
    };
    if streamed {
        let translator = ChatToResponses::new(pending.envelope).with_max_event(max_event);
        // The turn is stored before the bytes carrying its terminal event are passed on, so a
        // client that has seen `response.completed` can continue at once.
        let body = translated_body(body, translator, move |t: &ChatToResponses| {
            if let Some(done) = t.final_response() {
                if let Err(e) = saver.save(done) {
                    tracing::error!(error = %e, "a streamed response could not be stored");
                }
            }
        });
        return Ok(Response::from_parts(parts, body));
    }
    let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| GatewayError::BadGateway(e.to_string()))?;
    let answer: ChatCompletionResponse = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadGateway(format!("the provider's answer could not be read: {e}")))?;
    let object = to_response(&answer, &pending.envelope);
    saver.save(&object)?;
    let body = serde_json::to_vec(&object).map_err(|e| GatewayError::Internal(e.to_string()))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = Response::from_parts(parts, Body::from(body));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Keeps a finished turn, once.
struct Saver {
    gw: Arc<Gateway>,
    keep_for: Option<String>,
    input: Option<Vec<Value>>,
}

impl Saver {
    /// Stores the turn when it finished (completed or incomplete) and the client wants it kept. A
    /// failed turn is not kept: there is nothing to continue.
    fn save(&mut self, response: &Value) -> Result<(), GatewayError> {
        let status = response.get("status").and_then(Value::as_str);
        if !matches!(status, Some("completed" | "incomplete")) {
            return Ok(());
        }
        let (Some(tenant), Some(input)) = (self.keep_for.as_deref(), self.input.take()) else {
            return Ok(());
        };
        let turn = Turn {
            response: response.clone(),
            input,
        };
        state::save(&self.gw, tenant, &turn)
    }
}
