//! Providers marked `responses = "native"` serve `/responses` themselves: the request is relayed
//! through the same forwarding path (keys, budgets, privacy over every string of the body, which
//! holds the replayed conversation, partition, audit) instead of being bridged. Conversation state
//! stays moatd's: the provider is asked to keep nothing (`store: false`), `previous_response_id` has
//! already been replayed from moatd's store into the input, and the answer is stored under moatd's own
//! id, per tenant.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{header, HeaderValue};
use moat_policy::route::plan;
use moat_translate::responses::ResponsesRequest;
use moat_translate::StreamTranslator;
use moat_upstream::adapter::WireRequest;
use moat_wire::openai::ProviderPreferences;
use moat_wire::sse::{encode_event, SseFrame, SseParser};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{Saver, MAX_ANSWER_BYTES};
use crate::gateway::Gateway;
use crate::handlers::caller::Audited;
use crate::handlers::pipeline::forward;
use crate::handlers::proxy::decode;
use crate::handlers::request_kinds::Forward;
use crate::handlers::wire::translated_body;
use crate::GatewayError;

/// Whether the request's model goes first to a provider marked `responses = "native"`.
pub(super) fn serves(gw: &Gateway, request: &ResponsesRequest) -> bool {
    let fallbacks = request.models.clone().unwrap_or_default();
    plan(&gw.catalog, request.model.as_deref(), &fallbacks)
        .ok()
        .and_then(|targets| targets.first().map(|t| t.provider))
        .and_then(|p| gw.providers.get(p))
        .is_some_and(|p| p.responses_native)
}

/// What the decoder keeps for the answer.
struct Pending {
    input: Vec<Value>,
    keep_for: Option<String>,
    /// The members moatd answers for itself, put back into the provider's Response object.
    store: bool,
    previous: Option<String>,
}

/// Relays `req` (its body already holding the conversation it continues) to the native provider.
pub(super) async fn relay(
    gw: &Arc<Gateway>,
    caller: Audited,
    req: Request,
    id: &str,
    tenant: String,
) -> Result<Response, GatewayError> {
    let pending: Arc<Mutex<Option<Pending>>> = Arc::default();
    let response = forward(gw.clone(), caller, req, decoder(pending.clone(), tenant)).await?;
    let pending = pending.lock().unwrap_or_else(PoisonError::into_inner).take();
    match pending {
        Some(pending) => answered(gw, response, pending, id).await,
        None => Ok(response),
    }
}

/// The endpoint's decoder: the request relayed as it is, but for the members moatd owns. The first
/// decode is the request as sent, which is what the conversation keeps; a second one (the redacted
/// copy for non-local providers) leaves `pending` alone.
fn decoder(
    pending: Arc<Mutex<Option<Pending>>>,
    tenant: String,
) -> impl Fn(Value) -> Result<NativeResponses, GatewayError> + Send + Sync {
    move |body: Value| {
        let mut request: NativeResponses = decode(body)?;
        let (input, store, previous) = request.take_conversation();
        pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(Pending {
                input,
                keep_for: store.then(|| tenant.clone()),
                store,
                previous,
            });
        Ok(request)
    }
}

/// The provider's answer with moatd's members in it, the finished turn stored (a stream's before
/// the bytes carrying its terminal event are passed on).
async fn answered(
    gw: &Arc<Gateway>,
    response: Response,
    pending: Pending,
    id: &str,
) -> Result<Response, GatewayError> {
    let (mut parts, body) = response.into_parts();
    let rewrite = Rewrite {
        id: id.to_owned(),
        store: pending.store,
        previous: pending.previous.clone(),
    };
    let mut saver = Saver {
        gw: gw.clone(),
        keep_for: pending.keep_for,
        input: Some(pending.input),
    };
    let streamed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streamed {
        let body = translated_body(body, NativeEvents::new(rewrite), move |t: &NativeEvents| {
            if let Some(done) = &t.done {
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
    let mut object: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadGateway(format!("the provider's answer could not be read: {e}")))?;
    rewrite.apply(&mut object);
    saver.save(&object)?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&object).map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// The members of the provider's Response object that are moatd's: the id (one per turn, moatd's,
/// so it is stored and looked up per tenant), `store` and `previous_response_id` as the client sent them.
#[derive(Debug, Clone)]
struct Rewrite {
    id: String,
    store: bool,
    previous: Option<String>,
}

impl Rewrite {
    fn apply(&self, object: &mut Value) {
        if let Value::Object(map) = object {
            map.insert("id".into(), json!(self.id));
            map.insert("store".into(), json!(self.store));
            map.insert("previous_response_id".into(), json!(self.previous));
        }
    }
}

/// The provider's Responses stream with moatd's members in every Response object it carries, and the
/// terminal one kept for the store.
struct NativeEvents {
    parser: SseParser,
    frames: Vec<SseFrame>,
    rewrite: Rewrite,
    done: Option<Value>,
}

impl NativeEvents {
    fn new(rewrite: Rewrite) -> Self {
        NativeEvents {
            parser: SseParser::new(),
            frames: Vec::new(),
            rewrite,
            done: None,
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        for frame in std::mem::take(&mut self.frames) {
            let SseFrame::Event(mut event) = frame else {
                continue;
            };
            if let Ok(mut data) = serde_json::from_str::<Value>(&event.data) {
                if let Some(response) = data.get_mut("response") {
                    self.rewrite.apply(response);
                    let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
                    if matches!(
                        kind,
                        "response.completed" | "response.incomplete" | "response.failed"
                    ) {
                        self.done = data.get("response").cloned();
                    }
                    event.data = data.to_string();
                }
            }
            out.extend_from_slice(encode_event(&event).as_bytes());
        }
    }
}

impl StreamTranslator for NativeEvents {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.parser.feed(chunk, &mut self.frames).is_err() {
            self.parser = SseParser::new();
        }
        let mut out = Vec::new();
        self.drain(&mut out);
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let _ = self.parser.finish(&mut self.frames);
        let mut out = Vec::new();
        self.drain(&mut out);
        out
    }

    /// Never stops early: it rewrites whole events the relay has already bounded
    /// (`server.max_event_bytes`), and passes the provider's own end through.
    fn stopped(&self) -> Option<Result<(), String>> {
        None
    }
}

/// A Responses request relayed as it is, but for the members moatd owns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct NativeResponses {
    /// OpenRouter's preferences, which privacy settings add to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<ProviderPreferences>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl NativeResponses {
    /// Takes out the conversation (`input`, `store`, `previous_response_id`) and puts back what the
    /// provider gets: the input, already holding the conversation it continues, and `store: false`.
    /// The provider keeps nothing and is asked to continue nothing: moatd holds the conversation,
    /// per tenant.
    fn take_conversation(&mut self) -> (Vec<Value>, bool, Option<String>) {
        let previous = match self.rest.remove("previous_response_id") {
            Some(Value::String(p)) => Some(p),
            _ => None,
        };
        let store = self.rest.remove("store").and_then(|v| v.as_bool()) != Some(false);
        let mut input = match self.rest.remove("input") {
            Some(Value::String(text)) => {
                vec![json!({"type": "message", "role": "user", "content": text})]
            }
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        // Without the provider's own store, reasoning replays only as encrypted content.
        input.retain(|i| i.get("type") != Some(&json!("reasoning")) || i.get("encrypted_content").is_some());
        self.rest.insert("input".into(), Value::Array(input.clone()));
        self.rest.insert("store".into(), Value::Bool(false));
        (input, store, previous)
    }
}

impl Forward for NativeResponses {
    const PATH: &'static str = "/responses";
    fn wire(&self) -> WireRequest<'_> {
        let body = match &self.provider {
            None => Cow::Borrowed(&self.rest),
            Some(prefs) => {
                let mut body = self.rest.clone();
                if let Ok(v) = serde_json::to_value(prefs) {
                    body.insert("provider".into(), v);
                }
                Cow::Owned(body)
            }
        };
        WireRequest::Native {
            path: Self::PATH,
            body,
        }
    }
    fn model(&self) -> Option<&str> {
        self.rest
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
    }
    fn set_model(&mut self, model: String) {
        self.rest.insert("model".into(), Value::String(model));
    }
    fn take_fallbacks(&mut self) -> Vec<String> {
        match self.rest.remove("models") {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn wants_stream(&self) -> bool {
        self.rest.get("stream").and_then(Value::as_bool) == Some(true)
    }
    // A Responses stream always ends with its usage, in the terminal event.
    fn ask_stream_usage(&mut self) -> bool {
        false
    }
    fn provider_prefs(&mut self) -> &mut Option<ProviderPreferences> {
        &mut self.provider
    }
    fn take_partition_field(&mut self, field: &'static str) -> Result<Option<String>, String> {
        match self.rest.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{field}` must be a string")),
        }
    }
    fn set_partition_field(&mut self, field: &'static str, value: String) {
        self.rest.insert(field.into(), Value::String(value));
    }
    fn set_cache_prompt(&mut self, on: bool) {
        self.rest.insert("cache_prompt".into(), Value::Bool(on));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_events_carry_moatds_id_and_keep_the_terminal_response() {
        let mut t = NativeEvents::new(Rewrite {
            id: "resp_moat".into(),
            store: true,
            previous: None,
        });
        let stream = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_up\",\"store\":false}}\n\n\
                      event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n\
                      event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_up\",\"status\":\"completed\"}}\n\n";
        let mut out = t.feed(&stream.as_bytes()[..40]);
        out.extend(t.feed(&stream.as_bytes()[40..]));
        out.extend(t.finish());
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("resp_up"), "{text}");
        assert_eq!(text.matches("resp_moat").count(), 2);
        assert!(text.contains("\"delta\":\"hi\""));
        let done = t.done.unwrap();
        assert_eq!(done["id"], "resp_moat");
        assert_eq!(done["store"], true);
    }
}
