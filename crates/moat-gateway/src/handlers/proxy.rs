//! The forwarding path for `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`:
//! authenticate, read the body within limits, plan the targets (model addressing, aliases, the
//! `models` fallback list), then try each target — retries with back-off inside a target, fallback to
//! the next on provider failures — and relay the first answer that comes back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use moat_policy::budget::Hold;
use moat_policy::demand::Demand;
use moat_policy::route::plan;
use moat_upstream::UpstreamError;
use moat_wire::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use super::admission::{apply_key_rules, apply_privacy, is_local, provider_prefs_for, reservation};
use super::request_kinds::Forward;
use super::respond::{forwarded_headers, streamed_response, whole_response, RequestLog};
use super::translated;
use crate::audit::Trail;
use crate::cache;
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::ledger::{self, Meter};
use crate::observe::{spans, Observation};
use crate::pricebook::ModelFacts;
use crate::{body, GatewayError};

// The forwarding future is large (every local held across an await); it is boxed once here, so the
// router's layers, which box and move the handler's future, move a pointer rather than copy it.
pub(crate) async fn chat_completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    respond(Box::pin(forward(gw, req, decode::<ChatCompletionRequest>)).await)
}

pub(crate) async fn completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    respond(Box::pin(forward(gw, req, decode::<CompletionRequest>)).await)
}

pub(crate) async fn embeddings(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    respond(Box::pin(forward(gw, req, decode::<EmbeddingRequest>)).await)
}

/// Turns the result into a response (counted and timed by `crate::observe::layer`).
fn respond(result: Result<Response, GatewayError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
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

/// Parses and decodes a body in one step, for handlers that read a body before the forwarding path
/// does (to route it, or to answer it themselves).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    decode(parse_body(bytes)?)
}

/// Decodes a parsed body into an endpoint's request (400 `invalid_request` when its shape is wrong).
pub(crate) fn decode<T: DeserializeOwned>(body: Value) -> Result<T, GatewayError> {
    serde_json::from_value(body).map_err(|e| GatewayError::BadRequest(format!("invalid request: {e}")))
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
/// body, as parsed JSON, into the request (`decode`, or a translation from another wire such as
/// Anthropic's); it may be called twice, the second time on the copy for non-local providers.
pub(crate) async fn forward<T: Forward>(
    gw: Arc<Gateway>,
    req: Request,
    decode: impl Fn(Value) -> Result<T, GatewayError> + Send,
) -> Result<Response, GatewayError> {
    let observed = req.extensions().get::<Arc<Observation>>().cloned();
    let request_id = observed
        .as_ref()
        .map_or_else(|| gw.next_request_id(), |o| o.request_id.clone());
    if let Some(o) = &observed {
        o.operation(crate::observe::operation_of(T::PATH));
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    // Nested routers see the path without its `/v1` prefix; the audit record wants what was called.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |u| u.0.path())
        .to_string();
    let mut trail = Trail::start(gw.audit.clone(), &request_id, &path, peer, observed);
    let result = forward_inner::<T>(&gw, req, &decode, request_id, &mut trail).await;
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
    decode: &(impl Fn(Value) -> Result<T, GatewayError> + Send),
    request_id: String,
    trail: &mut Trail,
) -> Result<Response, GatewayError> {
    let gw = gw.clone();
    let started = Instant::now();
    let now = ledger::now();
    let (parts, body) = req.into_parts();
    let server_span = trail
        .observation()
        .map_or_else(tracing::Span::none, |o| o.span.clone());
    let admission = spans::admission(&server_span);
    let principal = gw.identities.authenticate(&parts.headers, now)?;
    trail.principal(&principal);
    let bytes = body::read_limited(
        &parts.headers,
        body,
        gw.server.max_body_bytes,
        gw.server.body_read_timeout,
    )
    .await?;
    // Privacy and budgets read the body as the client sent it, before the endpoint decodes it: what
    // an endpoint keeps, translates or passes on as unknown members is all inspected and counted.
    let raw = parse_body(&bytes)?;
    let inspection = gw.privacy.inspect(&raw);
    trail.policy(&inspection.decisions);
    let demand = Demand::of_body(&raw, bytes.len());
    let redacted = inspection.redacted(&raw);
    let mut request: T = decode(raw)?;
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
    let mut targets = plan(&gw.catalog, request.model(), &fallbacks)?;
    if let Principal::Virtual(key) = &principal {
        apply_key_rules(&gw, key, request.model(), &fallbacks, &mut targets)?;
    }
    apply_privacy(&gw, &inspection, &mut targets)?;
    gw.health.filter(&mut targets, Instant::now());
    let route_policy = gw.routes.policy(request.model()).cloned();
    let estimate = (
        demand.prompt_tokens,
        if T::GENERATES {
            demand.output_tokens(None, gw.server.default_max_output_tokens)
        } else {
            0
        },
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
    let stream = request.wants_stream();
    let forwarded = forwarded_headers(&parts.headers);
    let payer = principal.payer();
    let (hold, facts) = if T::FREE {
        (Hold::default(), vec![ModelFacts::default(); targets.len()])
    } else {
        reservation(&gw, &payer, &targets, &demand, T::GENERATES).await?
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
    admission.ok();
    let metered_stream = stream && payer.metered;
    let strip_usage = metered_stream && request.ask_stream_usage();
    // The copy for non-local providers, with what `redact` rules found replaced, prepared as the
    // request was; only made when a non-local target is left to try.
    let mut redacted = match redacted.filter(|_| targets.iter().any(|t| !is_local(&gw, t.provider))) {
        Some((value, redactions)) => {
            let mut copy = decode(value)?;
            copy.take_fallbacks();
            let _ = cache::partition::take_client_values(&mut copy);
            if metered_stream {
                copy.ask_stream_usage();
            }
            Some((copy, redactions))
        }
        None => None,
    };
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
        let (request, redactions) = match &mut redacted {
            Some((copy, redactions)) if !provider.local => (&mut *copy, Some(&*redactions)),
            _ => (&mut request, None),
        };
        request.set_model(target.model.clone());
        *request.provider_prefs() = provider_prefs_for(&gw, provider.adapter.as_ref(), &client_prefs);
        let secret = gw.identities.secret();
        cache::partition::apply(request, secret, &tenant, provider.cache, &client_partition);
        let team_headers = gw.team_keys.headers(
            gw.store.as_ref(),
            secret,
            &principal,
            gw.identities.keys_version(),
            &provider.upstream,
            &forwarded,
        )?;
        let (path, body, translation) = translated::outbound(
            &provider.adapter,
            &settings.name,
            &*request,
            &request_id,
            settings.max_event_bytes,
        )?;
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
            stream_span: None,
        };
        let step = spans::attempt(
            &server_span,
            crate::observe::operation_of(T::PATH),
            &settings.name,
            &target.model,
            attempt,
        );
        let result = match provider
            .upstream
            .send_with_retries(
                &path,
                Some(body),
                stream,
                team_headers.as_ref().unwrap_or(&forwarded),
            )
            .instrument(step.span.clone())
            .await
            .map_err(|e| translation.error(e))
            .inspect(|_| log.in_flight.first_byte())
        {
            Ok(resp) if stream => {
                let mut log = log;
                log.stream_span = Some(spans::stream(&server_span, &settings.name, &target.model));
                trail.answered_by(&settings.name, &target.model);
                trail.bodies(request_text, None);
                let stream_trail = trail.detach();
                Ok(streamed_response(
                    resp,
                    settings,
                    log,
                    meter.take(),
                    (redactions.cloned(), strip_usage),
                    stream_trail,
                    (gw.health.clone(), target.provider),
                ))
            }
            Ok(resp) => {
                trail.answered_by(&settings.name, &target.model);
                whole_response(resp, settings, log, &mut meter, redactions, trail, request_text).await
            }
            Err(e) => Err(e),
        };
        let failure = result.as_ref().err().filter(|e| provider_fault(e));
        // A stream that started is judged when it ends (see `streamed_response`).
        if !(stream && result.is_ok()) {
            gw.health
                .request_outcome(target.provider, failure, Instant::now());
        }
        match &result {
            Ok(r) => {
                step.span.record("http.response.status_code", r.status().as_u16());
                step.ok();
            }
            Err(e) => step.fail(&e.error_type()),
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
                crate::observe::metrics::fallback(&settings.name);
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
