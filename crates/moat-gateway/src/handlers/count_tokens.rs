//! `POST /v1/messages/count_tokens` (Claude Code asks it before every turn). When the model's first
//! target is a `kind = "anthropic"` provider the count is exact: the request is relayed to the
//! provider's own `count_tokens` through the forwarding path (keys, privacy over every string, audit;
//! settled at zero, since counting is free). For any other provider nothing leaves moatd: the answer is
//! the local estimate budgets reserve with — ⌈UTF-8 bytes of text / 3⌉ + 4 per message + 3 — which
//! leans high, as a reservation should.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use moat_policy::pricing::estimate_prompt_tokens;
use moat_policy::route::plan;
use moat_upstream::adapter::WireRequest;
use moat_wire::openai::ProviderPreferences;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::caller::Audited;
use super::pipeline::forward;
use super::proxy::{decode, parse};
use super::request_kinds::{json_strings_mut, Forward};
use super::wire::WireError;
use crate::gateway::Gateway;
use crate::GatewayError;

/// Anthropic's token counting, in its own wire.
const COUNT_TOKENS: &str = "/messages/count_tokens";

/// Errors (moatd's or the provider's) go back in Anthropic's shape.
pub(crate) async fn count_tokens(
    State(gw): State<Arc<Gateway>>,
    caller: Audited,
    req: Request,
) -> Result<Response, WireError> {
    counted(gw, caller, req).await.map_err(WireError::Anthropic)
}

async fn counted(gw: Arc<Gateway>, caller: Audited, req: Request) -> Result<Response, GatewayError> {
    let (parts, body) = req.into_parts();
    let limits = (gw.server.max_body_bytes, gw.server.body_read_timeout);
    let read = crate::body::read_limited(&parts.headers, body, limits.0, limits.1).await;
    let (request, bytes) = match read.and_then(|bytes| Ok((parse::<CountTokensBody>(&bytes)?, bytes))) {
        Ok(read) => read,
        Err(e) => return Err(caller.refuse(e)),
    };
    if exact(&gw, request.model()) {
        let req = Request::from_parts(parts, Body::from(bytes));
        return relayed(forward(gw, caller, req, decode::<CountTokensBody>).await?).await;
    }
    caller.answer(|_| {
        if request.model().is_none() {
            return Err(GatewayError::BadRequest("model: Field required".into()));
        }
        Ok(axum::Json(json!({"input_tokens": request.estimate()})).into_response())
    })
}

/// Whether the model's first target counts tokens itself (a `kind = "anthropic"` provider).
fn exact(gw: &Gateway, model: Option<&str>) -> bool {
    plan(&gw.catalog, model, &[])
        .ok()
        .and_then(|t| t.first().map(|t| t.provider))
        .and_then(|p| gw.providers.get(p))
        .is_some_and(|p| p.adapter.native(COUNT_TOKENS))
}

/// The provider's count, as Anthropic answers it.
async fn relayed(response: Response) -> Result<Response, GatewayError> {
    let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
        .await
        .map_err(|e| GatewayError::BadGateway(e.to_string()))?;
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadGateway(format!("the provider's count could not be read: {e}")))?;
    match answer.get("input_tokens").and_then(Value::as_u64) {
        Some(n) => Ok(axum::Json(json!({"input_tokens": n})).into_response()),
        None => Err(GatewayError::BadGateway(
            "the provider's count had no input_tokens".into(),
        )),
    }
}

/// A `count_tokens` body: Anthropic's Messages request without `max_tokens`, relayed as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CountTokensBody {
    #[serde(flatten)]
    rest: Map<String, Value>,
    /// Anthropic takes no OpenRouter preferences; this slot stays empty and is never sent.
    #[serde(skip)]
    provider: Option<ProviderPreferences>,
}

impl CountTokensBody {
    /// The local estimate: every text of the system prompt, messages and tools.
    pub(crate) fn estimate(&self) -> u64 {
        let mut copy = self.rest.clone();
        let mut bytes = 0;
        for member in ["system", "messages", "tools"] {
            if let Some(v) = copy.get_mut(member) {
                let mut texts = Vec::new();
                json_strings_mut(v, &mut texts);
                bytes += texts.iter().map(|t| t.len()).sum::<usize>();
            }
        }
        let messages = self
            .rest
            .get("messages")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        estimate_prompt_tokens(bytes, messages)
    }
}

impl Forward for CountTokensBody {
    const PATH: &'static str = COUNT_TOKENS;
    const FREE: bool = true;
    fn wire(&self) -> WireRequest<'_> {
        WireRequest::Native {
            path: COUNT_TOKENS,
            body: Cow::Borrowed(&self.rest),
        }
    }
    const PROMPT_CACHE: bool = false;
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
        Vec::new()
    }
    fn wants_stream(&self) -> bool {
        false
    }
    /// Counting generates nothing.
    const GENERATES: bool = false;
    fn ask_stream_usage(&mut self) -> bool {
        false
    }
    fn provider_prefs(&mut self) -> &mut Option<ProviderPreferences> {
        &mut self.provider
    }
    fn take_partition_field(&mut self, _field: &'static str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn set_partition_field(&mut self, _field: &'static str, _value: String) {}
    fn set_cache_prompt(&mut self, _on: bool) {}
}
