//! The forwarding path for `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`:
//! authenticate, read the body within limits, plan the targets (model addressing, aliases, the
//! `models` fallback list), then try each target — retries with back-off inside a target, fallback to
//! the next on provider failures — and relay the first answer that comes back.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use moat_policy::route::{plan, RouteError};
use moat_upstream::relay::{self, RelayOutcome};
use moat_upstream::{UpstreamError, UpstreamSettings};
use moat_wire::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest, Usage};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::gateway::Gateway;
use crate::{body, GatewayError};

/// What the forwarding path needs to know about a request body, whatever the endpoint.
pub(crate) trait Forward: DeserializeOwned + Serialize + Send {
    /// Path below the provider's base URL.
    const PATH: &'static str;
    fn model(&self) -> Option<&str>;
    fn set_model(&mut self, model: String);
    /// Removes the OpenRouter-style `models` fallback list: moatd does the falling back itself, and
    /// the names in it are moatd's, not the provider's.
    fn take_fallbacks(&mut self) -> Vec<String>;
    fn wants_stream(&self) -> bool;
}

/// Chat and legacy completions carry the same addressing fields.
macro_rules! forward_with_models_field {
    ($ty:ty, $path:literal) => {
        impl Forward for $ty {
            const PATH: &'static str = $path;
            fn model(&self) -> Option<&str> {
                self.model.as_deref().filter(|m| !m.is_empty())
            }
            fn set_model(&mut self, model: String) {
                self.model = Some(model);
            }
            fn take_fallbacks(&mut self) -> Vec<String> {
                self.models.take().unwrap_or_default()
            }
            fn wants_stream(&self) -> bool {
                self.stream == Some(true)
            }
        }
    };
}

forward_with_models_field!(ChatCompletionRequest, "/chat/completions");
forward_with_models_field!(CompletionRequest, "/completions");

impl Forward for EmbeddingRequest {
    const PATH: &'static str = "/embeddings";
    fn model(&self) -> Option<&str> {
        Some(self.model.as_str()).filter(|m| !m.is_empty())
    }
    fn set_model(&mut self, model: String) {
        self.model = model;
    }
    fn take_fallbacks(&mut self) -> Vec<String> {
        match self.extra.remove("models") {
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn wants_stream(&self) -> bool {
        false
    }
}

pub(crate) async fn chat_completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    forward::<ChatCompletionRequest>(gw, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    forward::<CompletionRequest>(gw, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn embeddings(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    forward::<EmbeddingRequest>(gw, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn route_error(err: RouteError) -> GatewayError {
    match err {
        RouteError::UnknownModel { .. } => GatewayError::NotFound(err.to_string()),
        RouteError::NoModel | RouteError::EmptyModel(_) | RouteError::TooManyTargets => {
            GatewayError::BadRequest(err.to_string())
        }
    }
}

/// Parses the body, telling malformed JSON (400 `invalid_json`) from well-formed JSON of the wrong
/// shape (400 `invalid_request`).
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::BadRequest(
            "request body is empty: send a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => GatewayError::BadRequest(format!("invalid request: {e}")),
        _ => GatewayError::InvalidJson(format!("request body is not valid JSON: {e}")),
    })
}

/// True when the failure is the provider's, so another provider might do better. A 4xx (other than
/// 408/429) says the request itself is wrong; trying it elsewhere would only repeat the answer.
fn provider_fault(err: &UpstreamError) -> bool {
    match err {
        UpstreamError::Status { .. } => err.is_retryable(),
        UpstreamError::Config(_) => false,
        _ => true,
    }
}

async fn forward<T: Forward>(gw: Arc<Gateway>, req: Request) -> Result<Response, GatewayError> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    if !gw.auth.check(&parts.headers) {
        return Err(GatewayError::Unauthorized);
    }
    let bytes = body::read_limited(
        &parts.headers,
        body,
        gw.server.max_body_bytes,
        gw.server.body_read_timeout,
    )
    .await?;
    let mut request: T = parse(&bytes)?;
    let fallbacks = request.take_fallbacks();
    let targets = plan(&gw.catalog, request.model(), &fallbacks).map_err(route_error)?;
    let stream = request.wants_stream();
    let forwarded = forwarded_headers(&parts.headers);
    let request_id = gw.next_request_id();

    let mut last_err = None;
    for (attempt, target) in targets.iter().enumerate() {
        let provider = gw.provider(target.provider)?;
        let settings = provider.upstream.settings();
        request.set_model(target.model.clone());
        let body =
            Bytes::from(serde_json::to_vec(&request).map_err(|e| GatewayError::Internal(e.to_string()))?);
        let log = RequestLog {
            request_id: request_id.clone(),
            provider: settings.name.clone(),
            model: target.model.clone(),
            started,
        };
        let result = match provider
            .upstream
            .send_with_retries(T::PATH, Some(body), stream, &forwarded)
            .await
        {
            Ok(resp) if stream => Ok(streamed_response(resp, settings, log)),
            Ok(resp) => whole_response(resp, settings, log).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(mut response) => {
                let h = response.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    h.insert("x-request-id", v);
                }
                if let Ok(v) = HeaderValue::from_str(&settings.name) {
                    h.insert("x-moat-provider", v);
                }
                return Ok(response);
            }
            Err(err) if provider_fault(&err) && attempt + 1 < targets.len() => {
                tracing::warn!(request_id = %request_id, error = %err, "falling back to the next target");
                last_err = Some(err);
            }
            Err(err) => {
                tracing::warn!(request_id = %request_id, error = %err, "upstream failed");
                return Err(err.into());
            }
        }
    }
    Err(last_err.map_or_else(
        || GatewayError::Internal("no target was tried".into()),
        GatewayError::from,
    ))
}

/// A streamed answer: relayed as it arrives; logged when it ends.
fn streamed_response(
    resp: moat_upstream::UpstreamResponse,
    settings: &UpstreamSettings,
    log: RequestLog,
) -> Response {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = relay::relay_stream(resp, settings, move |outcome| log.stream_finished(outcome));
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("text/event-stream")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells a reverse proxy in front of moatd (nginx) not to buffer the stream either.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A whole answer: read within limits (a failure here can still fall back: nothing went to the
/// client yet), then passed on byte for byte.
async fn whole_response(
    resp: moat_upstream::UpstreamResponse,
    settings: &UpstreamSettings,
    log: RequestLog,
) -> Result<Response, UpstreamError> {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = relay::read_body(resp, settings).await?;
    log.answered(relay::usage_of(&body).as_ref());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/json")),
    );
    Ok(response)
}

/// Copies the few client headers providers act on (see `moat_upstream::client::FORWARDED_HEADERS`).
fn forwarded_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in &moat_upstream::FORWARDED_HEADERS {
        if let Some(v) = incoming.get(name) {
            out.insert(name.clone(), v.clone());
        }
    }
    out
}

/// The per-request log line's fields. Names, ids, sizes and usage only: never keys or text.
struct RequestLog {
    request_id: String,
    provider: String,
    model: String,
    started: Instant,
}

impl RequestLog {
    fn answered(&self, usage: Option<&Usage>) {
        tracing::debug!(
            request_id = %self.request_id,
            provider = %self.provider,
            model = %self.model,
            elapsed_us = self.started.elapsed().as_micros() as u64,
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            cost = usage.and_then(|u| u.cost),
            "answered"
        );
    }

    fn stream_finished(self, outcome: RelayOutcome) {
        let usage = outcome.usage.as_ref();
        tracing::debug!(
            request_id = %self.request_id,
            provider = %self.provider,
            model = %self.model,
            elapsed_us = self.started.elapsed().as_micros() as u64,
            bytes = outcome.bytes,
            completed = outcome.completed,
            cancelled = outcome.cancelled,
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            cost = usage.and_then(|u| u.cost),
            "stream finished"
        );
        if let Some(error) = outcome.error {
            tracing::warn!(request_id = %self.request_id, %error, "stream ended early");
        }
    }
}
