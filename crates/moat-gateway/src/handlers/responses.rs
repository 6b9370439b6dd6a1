//! `POST /v1/responses`: OpenAI's Responses API in front of any provider. For chat-only providers the
//! request (with the conversation it continues, replayed from moatd's own store) is translated to a
//! chat request that takes exactly the path `/v1/chat/completions` takes — keys, budgets (the replayed
//! turns included), privacy over all of it, partition, routing, audit — and the answer, whole or
//! streamed, comes back as a Response object or the Responses event sequence. The finished turn is
//! stored (sealed, per tenant) before its last byte reaches the client, so `previous_response_id`
//! works the moment the client has the answer.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderValue, StatusCode};
use moat_translate::responses::{
    to_chat_request, to_response, ChatToResponses, Envelope, ItemIds, ResponsesRequest,
};
use moat_translate::StreamTranslator;
use moat_wire::openai::ChatCompletionResponse;
use serde_json::Value;

use super::proxy::{forward, parse};
use crate::gateway::Gateway;
use crate::GatewayError;

mod bridged;
mod native;
pub(crate) mod state;

use bridged::BridgedChat;
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

pub(crate) async fn create(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let response = match create_inner(gw, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    metrics::counter!("moat_requests_total", "endpoint" => "/responses", "status" => response.status().as_str().to_string())
        .increment(1);
    response
}

async fn create_inner(gw: Arc<Gateway>, req: Request) -> Result<Response, GatewayError> {
    let id = crate::secret::new_response_id().map_err(|e| GatewayError::Internal(e.to_string()))?;
    // Whose conversation this is. The forwarding path authenticates again (and audits a refusal);
    // this only scopes the stored turns the decoder may replay.
    let tenant = gw
        .identities
        .authenticate(req.headers(), crate::ledger::now())
        .ok()
        .map(|p| crate::cache::partition::tenant(&p));
    let req = match native::route(&gw, req, &id, tenant.clone()).await? {
        native::Route::Native(response) => return Ok(response),
        native::Route::Bridge(req) => req,
    };
    let pending: Arc<Mutex<Option<Pending>>> = Arc::default();
    let decode = {
        let (gw, pending, id) = (gw.clone(), pending.clone(), id.clone());
        move |bytes: &[u8]| -> Result<BridgedChat, GatewayError> {
            let request: ResponsesRequest = parse(bytes)?;
            let (history, replayed) = replay(&gw, tenant.as_deref(), &request)?;
            let mut ids = ItemIds::new(&format!("{id}_in"));
            let bridged = to_chat_request(&request, &history, &mut ids)
                .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
            let created_at = crate::ledger::now().max(0) as u64;
            *pending.lock().unwrap_or_else(PoisonError::into_inner) = Some(Pending {
                envelope: Envelope::new(&request, &id, created_at),
                input: bridged.input_items,
                keep_for: tenant.filter(|_| request.stores()),
            });
            Ok(BridgedChat {
                chat: bridged.chat,
                replayed,
            })
        }
    };
    let response = forward(gw.clone(), req, decode).await?;
    let pending = pending.lock().unwrap_or_else(PoisonError::into_inner).take();
    match pending {
        Some(p) => Ok(translate_back(gw, response, p).await),
        None => Ok(response),
    }
}

/// The conversation `previous_response_id` continues (empty for a first turn), and its size.
fn replay(
    gw: &Gateway,
    tenant: Option<&str>,
    request: &ResponsesRequest,
) -> Result<(Vec<Value>, usize), GatewayError> {
    let Some(previous) = request.previous_response_id.as_deref() else {
        return Ok((Vec::new(), 0));
    };
    let tenant = tenant.ok_or(GatewayError::Unauthorized)?;
    let history = state::load(gw, tenant, previous)?.conversation();
    let size = serde_json::to_vec(&history).map_or(0, |v| v.len());
    Ok((history, size))
}

/// The chat-shaped answer of the forwarding path as a Response object or Responses events.
async fn translate_back(gw: Arc<Gateway>, response: Response, pending: Pending) -> Response {
    let (mut parts, body) = response.into_parts();
    if !parts.status.is_success() {
        // Errors are already in OpenAI's shape, which the Responses API shares.
        return Response::from_parts(parts, body);
    }
    let streamed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let saver = Saver {
        gw,
        keep_for: pending.keep_for,
        input: Some(pending.input),
    };
    if streamed {
        let translator = ChatToResponses::new(pending.envelope);
        let body = Body::from_stream(translated(body.into_data_stream(), translator, saver));
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(b) => b,
        Err(e) => return GatewayError::BadGateway(e.to_string()).into_response(),
    };
    let answer: ChatCompletionResponse = match serde_json::from_slice(&bytes) {
        Ok(a) => a,
        Err(e) => {
            return GatewayError::BadGateway(format!("the provider's answer could not be read: {e}"))
                .into_response()
        }
    };
    let object = to_response(&answer, &pending.envelope);
    let mut saver = saver;
    if let Err(e) = saver.save(&object) {
        return e.into_response();
    }
    let body = match serde_json::to_vec(&object) {
        Ok(b) => b,
        Err(e) => return GatewayError::Internal(e.to_string()).into_response(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = Response::from_parts(parts, Body::from(body));
    *response.status_mut() = StatusCode::OK;
    response
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

/// The relayed chat stream through the translator. The turn is stored before the bytes carrying its
/// terminal event are passed on, so a client that has seen `response.completed` can continue at once.
/// Dropping this (the client left) drops the relay under it, which cancels the provider's work.
fn translated<S, E>(
    body: S,
    translator: ChatToResponses,
    saver: Saver,
) -> impl Stream<Item = Result<Bytes, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    futures_util::stream::unfold(Some((body, translator, saver)), |state| async move {
        let (mut body, mut t, mut saver) = state?;
        let (out, more) = match body.next().await {
            Some(Ok(chunk)) => (t.feed(&chunk), true),
            Some(Err(e)) => return Some((Err(e), None)),
            None => (t.finish(), false),
        };
        if let Some(done) = t.final_response() {
            if let Err(e) = saver.save(done) {
                tracing::error!(error = %e, "a streamed response could not be stored");
            }
        }
        Some((Ok(Bytes::from(out)), more.then_some((body, t, saver))))
    })
}
