//! The forwarding path for `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`:
//! authenticate, read the body within limits, plan the targets (model addressing, aliases, the
//! `models` fallback list), then try each target — retries with back-off inside a target, fallback to
//! the next on provider failures — and relay the first answer that comes back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use moat_policy::budget::Hold;
use moat_policy::pricing::Price;
use moat_policy::route::{plan, RouteError};
use moat_upstream::relay::{self, RelayOutcome};
use moat_upstream::{UpstreamError, UpstreamSettings};
use moat_wire::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest, Usage};
use serde::de::DeserializeOwned;

use super::admission::{apply_key_rules, apply_privacy, provider_prefs_for, reservation};
use super::request_kinds::Forward;
use super::translated::{self, Translation};
use crate::audit::Trail;
use crate::cache;
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::ledger::{self, Meter};
use crate::pricebook::ModelFacts;
use crate::privacy::{Redactions, StreamRestorer};
use crate::{body, GatewayError};

pub(crate) async fn chat_completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    counted::<ChatCompletionRequest>(forward(gw, req, parse::<ChatCompletionRequest>).await)
}

pub(crate) async fn completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    counted::<CompletionRequest>(forward(gw, req, parse::<CompletionRequest>).await)
}

pub(crate) async fn embeddings(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    counted::<EmbeddingRequest>(forward(gw, req, parse::<EmbeddingRequest>).await)
}

/// Turns the result into a response and counts it by endpoint and status.
fn counted<T: Forward>(result: Result<Response, GatewayError>) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    metrics::counter!("moat_requests_total", "endpoint" => T::PATH, "status" => response.status().as_str().to_string())
        .increment(1);
    response
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
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
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

/// One request end to end, with its audit record written whatever the outcome. `decode` turns the
/// body into the request (`parse`, or a translation from another wire such as Anthropic's).
pub(crate) async fn forward<T: Forward>(
    gw: Arc<Gateway>,
    req: Request,
    decode: impl FnOnce(&[u8]) -> Result<T, GatewayError> + Send,
) -> Result<Response, GatewayError> {
    let request_id = gw.next_request_id();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    // Nested routers see the path without its `/v1` prefix; the audit record wants what was called.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |u| u.0.path())
        .to_string();
    let mut trail = Trail::start(gw.audit.clone(), &request_id, &path, peer);
    let result = forward_inner::<T>(&gw, req, decode, request_id, &mut trail).await;
    let status = match &result {
        Ok(r) => r.status(),
        Err(e) => e.status(),
    };
    trail.finish(status.as_u16());
    result
}

async fn forward_inner<T: Forward>(
    gw: &Arc<Gateway>,
    req: Request,
    decode: impl FnOnce(&[u8]) -> Result<T, GatewayError> + Send,
    request_id: String,
    trail: &mut Trail,
) -> Result<Response, GatewayError> {
    let gw = gw.clone();
    let started = Instant::now();
    let now = ledger::now();
    let (parts, body) = req.into_parts();
    let principal = gw.identities.authenticate(&parts.headers, now)?;
    trail.principal(&principal);
    let bytes = body::read_limited(
        &parts.headers,
        body,
        gw.server.max_body_bytes,
        gw.server.body_read_timeout,
    )
    .await?;
    let mut request: T = decode(&bytes)?;
    let fallbacks = request.take_fallbacks();
    let tenant = cache::partition::tenant(&principal);
    let cached = gw.response_cache.decide(
        &tenant,
        T::PATH,
        request.model(),
        request.wants_stream(),
        &parts.headers,
        || cache::response::request_value(&request, &fallbacks),
    );
    let client_partition = cache::partition::take_client_values(&mut request)?;
    trail.model_requested(request.model(), &fallbacks);
    let mut targets = plan(&gw.catalog, request.model(), &fallbacks).map_err(route_error)?;
    if let Principal::Virtual(key) = &principal {
        apply_key_rules(&gw, key, request.model(), &fallbacks, &mut targets)?;
    }
    let inspection = gw.privacy.inspect(request.texts_mut());
    trail.policy(&inspection.decisions);
    apply_privacy(&gw, &inspection, &mut targets)?;
    gw.health.filter(&mut targets, Instant::now());
    let route_policy = gw.routes.policy(request.model()).cloned();
    let estimate = (
        moat_policy::pricing::estimate_prompt_tokens(bytes.len(), 0),
        request
            .max_output_tokens()
            .unwrap_or(gw.server.default_max_output_tokens),
    );
    let ask = crate::routing::Ask {
        model: request.model(),
        prompt_tokens: estimate.0,
        output_tokens: estimate.1,
        now,
        random: crate::routing::random(),
    };
    if !gw.routes.arrange(&gw.catalog, &gw.prices, &ask, &mut targets) {
        return Err(GatewayError::RateLimited {
            scope: "model route",
            what: "per-target rpm/tpm",
            retry_after: (60 - now.rem_euclid(60)) as u64,
        });
    }
    let redactions = (!inspection.redactions.is_empty()).then_some(inspection.redactions);
    let stream = request.wants_stream();
    let forwarded = forwarded_headers(&parts.headers);
    let payer = principal.payer();
    let (hold, facts) = if T::FREE {
        (Hold::default(), vec![ModelFacts::default(); targets.len()])
    } else {
        reservation(&gw, &payer, &targets, bytes.len(), request.max_output_tokens()).await?
    };
    let mut meter = Some(
        Meter::reserve(
            &gw.limits,
            &gw.store,
            payer.clone(),
            request_id.clone(),
            hold,
            now,
        )
        .await?,
    );
    if stream && payer.metered {
        request.ask_stream_usage();
    }
    if let cache::response::Decision::Use(key) = &cached {
        if let Some(hit) = gw.response_cache.get(key, Instant::now()) {
            let mut response = cache::hit(hit, meter.take(), trail);
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-request-id", v);
            }
            return Ok(response);
        }
    }

    let client_prefs = request.provider_prefs().clone();
    let mut last_err = None;
    // Targets a refusal ruled out (a context-window refusal skips windows no larger).
    let mut skip = vec![false; targets.len()];
    for (attempt, (target, facts)) in targets.iter().zip(&facts).enumerate() {
        if skip[attempt] {
            continue;
        }
        let provider = gw.provider(target.provider)?;
        let settings = provider.upstream.settings();
        request.set_model(target.model.clone());
        *request.provider_prefs() = provider_prefs_for(&gw, provider.adapter.as_ref(), &client_prefs);
        let secret = gw.identities.secret();
        cache::partition::apply(&mut request, secret, &tenant, provider.cache, &client_partition);
        let team_headers = gw.team_keys.headers(
            gw.store.as_ref(),
            secret,
            &principal,
            gw.identities.keys_version(),
            &provider.upstream,
            &forwarded,
        )?;
        let (path, body, translation) =
            translated::outbound(&provider.adapter, &settings.name, &request, &request_id)?;
        let request_text = trail
            .wants_bodies()
            .then(|| String::from_utf8_lossy(&body).into_owned());
        let log = RequestLog {
            request_id: request_id.clone(),
            provider: settings.name.clone(),
            model: target.model.clone(),
            started,
            price: facts.price,
            translation: translation.clone(),
            in_flight: gw.routes.start(target, estimate.0 + estimate.1, ledger::now()),
        };
        let result = match provider
            .upstream
            .send_with_retries(
                &path,
                Some(body),
                stream,
                team_headers.as_ref().unwrap_or(&forwarded),
            )
            .await
            .map_err(|e| translation.error(e))
            .inspect(|_| log.in_flight.first_byte())
        {
            Ok(resp) if stream => {
                trail.answered_by(&settings.name, &target.model);
                trail.bodies(request_text, None);
                let stream_trail = trail.detach();
                Ok(streamed_response(
                    resp,
                    settings,
                    log,
                    meter.take(),
                    redactions.clone(),
                    stream_trail,
                    (gw.health.clone(), target.provider),
                ))
            }
            Ok(resp) => {
                trail.answered_by(&settings.name, &target.model);
                whole_response(
                    resp,
                    settings,
                    log,
                    &mut meter,
                    redactions.as_ref(),
                    trail,
                    request_text,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let failure = result.as_ref().err().filter(|e| provider_fault(e));
        // A stream that started is judged when it ends (see `streamed_response`).
        if !(stream && result.is_ok()) {
            gw.health
                .request_outcome(target.provider, failure, Instant::now());
        }
        match result {
            Ok(mut response) => {
                let h = response.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    h.insert("x-request-id", v);
                }
                if let Ok(v) = HeaderValue::from_str(&settings.name) {
                    h.insert("x-moat-provider", v);
                }
                if let Some(v) = cached.miss_header() {
                    h.insert(cache::response::HEADER, v);
                }
                if let cache::response::Decision::Use(key) = cached {
                    response =
                        cache::keep(&gw.response_cache, key, response, &settings.name, &target.model).await;
                }
                return Ok(response);
            }
            Err(err) if provider_fault(&err) && skip[attempt + 1..].contains(&false) => {
                tracing::warn!(request_id = %request_id, error = %err, "falling back to the next target");
                last_err = Some(err);
            }
            Err(err) if refusal_fallback(&gw, route_policy.as_ref(), &targets, attempt, &err, &mut skip) => {
                tracing::warn!(request_id = %request_id, error = %err, "refused; falling back to a target that may accept it");
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

/// After a refusal another target may not give (a prompt over the context window; with the route's
/// `content_policy_fallback`, a content-policy refusal), marks the later targets not worth trying in
/// `skip` and says whether any is left to try.
fn refusal_fallback(
    gw: &Gateway,
    policy: Option<&crate::config::RoutePolicy>,
    targets: &[moat_policy::route::Target],
    attempt: usize,
    err: &UpstreamError,
    skip: &mut [bool],
) -> bool {
    use moat_policy::fallback::{classify, larger_context, Refusal};
    let UpstreamError::Status { status, body, .. } = err else {
        return false;
    };
    let Some(error) = moat_wire::error::ErrorBody::from_slice(body) else {
        return false;
    };
    let code = error.error.code_text();
    match classify(*status, code.as_deref(), &error.error.message) {
        Some(Refusal::ContextWindow) => {
            let failed = gw.routes.context_window(&targets[attempt]);
            let rest: Vec<Option<u64>> = targets[attempt + 1..]
                .iter()
                .map(|t| gw.routes.context_window(t))
                .collect();
            for (i, keep) in larger_context(failed, &rest).into_iter().enumerate() {
                if !keep {
                    skip[attempt + 1 + i] = true;
                }
            }
        }
        Some(Refusal::ContentPolicy) if policy.is_some_and(|p| p.content_policy_fallback) => {}
        _ => return false,
    }
    skip[attempt + 1..].contains(&false)
}

/// A streamed answer: relayed as it arrives; settled and logged when it ends.
fn streamed_response(
    resp: moat_upstream::UpstreamResponse,
    settings: &UpstreamSettings,
    log: RequestLog,
    meter: Option<Meter>,
    redactions: Option<Redactions>,
    mut trail: Trail,
    (health, provider): (Arc<crate::health::Health>, moat_policy::route::ProviderId),
) -> Response {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let transform = redactions.map(|r| {
        let mut restorer = StreamRestorer::new(r);
        Box::new(move |bytes: &[u8]| restorer.transform(bytes)) as relay::Transform
    });
    let translator = log.translation.stream();
    // A translated stream is OpenAI's SSE whatever the provider labelled its own (NDJSON, say).
    let content_type = content_type.filter(|_| translator.is_none());
    let on_done = move |outcome: RelayOutcome| {
        // A stream counts for its provider's breaker once it ends: finished is a success, broken by
        // the provider a failure; one the client left says nothing about the provider.
        if outcome.completed {
            health.stream_ended(provider, None, Instant::now());
        } else if !outcome.cancelled {
            let error = outcome
                .error
                .clone()
                .unwrap_or_else(|| "the stream ended early".to_owned());
            health.stream_ended(provider, Some(error), Instant::now());
        }
        if let Some(meter) = meter {
            let state = if outcome.completed {
                "ok"
            } else if outcome.cancelled {
                "cancelled"
            } else {
                "error"
            };
            let settled = meter.settle(
                outcome.usage.as_ref(),
                log.price,
                &log.provider,
                &log.model,
                state,
            );
            trail.usage(
                settled.prompt_tokens,
                settled.completion_tokens,
                settled.cost_nanos,
            );
        } else if let Some(u) = &outcome.usage {
            trail.usage(u.prompt_tokens, u.completion_tokens, 0);
        }
        // The client got this status and a stream; a client that left mid-stream is recorded as 499.
        trail.finish(if outcome.cancelled { 499 } else { status.as_u16() });
        log.stream_finished(outcome);
    };
    let body: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>> =
        match translator {
            Some(t) => Box::pin(relay::relay_stream_translated(
                resp, settings, t, transform, on_done,
            )),
            None => Box::pin(relay::relay_stream_with(resp, settings, transform, on_done)),
        };
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
    meter: &mut Option<Meter>,
    redactions: Option<&Redactions>,
    trail: &mut Trail,
    request_text: Option<String>,
) -> Result<Response, UpstreamError> {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = log.translation.whole(relay::read_body(resp, settings).await?)?;
    let usage = relay::usage_of(&body);
    let body = match redactions {
        Some(r) => Bytes::from(r.restore_json(&body)),
        None => body,
    };
    if let Some(meter) = meter.take() {
        let settled = meter.settle(usage.as_ref(), log.price, &log.provider, &log.model, "ok");
        trail.usage(
            settled.prompt_tokens,
            settled.completion_tokens,
            settled.cost_nanos,
        );
    }
    if trail.wants_bodies() {
        trail.bodies(request_text, Some(String::from_utf8_lossy(&body).into_owned()));
    }
    log.answered(usage.as_ref());
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
    /// The answering model's price, for settling when the provider reports no cost.
    price: Option<Price>,
    /// How this provider's answer is read back into OpenAI's shape.
    translation: Translation,
    /// The request counted against its target's in-flight count and cap until this log is dropped.
    in_flight: crate::routing::InFlight,
}

impl RequestLog {
    fn answered(&self, usage: Option<&Usage>) {
        if let Some(u) = usage {
            self.in_flight.settle(u.prompt_tokens + u.completion_tokens);
        }
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

    fn stream_finished(&self, outcome: RelayOutcome) {
        let usage = outcome.usage.as_ref();
        if let Some(u) = usage {
            self.in_flight.settle(u.prompt_tokens + u.completion_tokens);
        }
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
