//! The attempt stage: the admitted request tried on each target in turn through its provider's
//! adapter — retries with back-off inside a target, fallback to the next on provider failures and on
//! refusals another target may not give — until one answers. The answer settles the [`Outcome`]:
//! a whole one at once, a stream when it ends.

use std::borrow::Cow;
use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use moat_upstream::{UpstreamError, UpstreamResponse, UpstreamSettings};
use moat_wire::edit::Unique;
use tracing::{Instrument, Span};

use super::admit::Admitted;
use super::outcome::{provider_fault, Attempt, Outcome, Whole};
use super::respond::{read_whole, streamed_response, RequestLog};
use crate::cache::{self, partition, response::Decision};
use crate::gateway::{Gateway, Provider};
use crate::handlers::admission::provider_prefs_for;
use crate::handlers::request_kinds::Forward;
use crate::handlers::translated::{self, Translation};
use crate::identity::Principal;
use crate::ledger;
use crate::observe::operation_of;
use crate::observe::spans::{self, Step};
use crate::privacy::Redactions;
use crate::GatewayError;

/// Tries each target until one answers; the error of the last one tried when none does.
pub(super) async fn each_target<T: Forward>(
    gw: &Arc<Gateway>,
    principal: &Principal,
    admitted: &mut Admitted<T>,
    outcome: &mut Outcome,
    span: &Span,
) -> Result<Response, GatewayError> {
    let mut last_err = None;
    // Targets a refusal ruled out (a context-window refusal skips windows no larger).
    let mut skip = vec![false; admitted.targets.len()];
    for i in 0..admitted.targets.len() {
        if skip[i] {
            continue;
        }
        let outbound = prepare(gw, principal, admitted, i)?;
        let provider = outbound.provider;
        match attempt(gw, admitted, i, outbound, outcome, span).await {
            Ok(response) => return Ok(delivered(gw, admitted, i, provider, response).await),
            Err(err) if another_target(gw, admitted, i, provider, &err, &mut skip) => last_err = Some(err),
            Err(err) => return Err(err.into()),
        }
    }
    Err(last_err.map_or_else(
        || GatewayError::Internal("no target was tried".into()),
        GatewayError::from,
    ))
}

/// One target's request, written for its provider.
struct Outbound<'g> {
    provider: &'g Provider,
    path: Cow<'static, str>,
    body: Bytes,
    translation: Translation,
    /// The team's own credential for this provider, when it has one.
    team_headers: Option<HeaderMap>,
}

/// Writes the request for target `i`: the redacted copy for a non-local provider, with the target's
/// model, the provider preferences its kind acts on, the tenant's cache partition, and the team's
/// own credential.
fn prepare<'g, T: Forward>(
    gw: &'g Gateway,
    principal: &Principal,
    a: &mut Admitted<T>,
    i: usize,
) -> Result<Outbound<'g>, GatewayError> {
    let target = &a.targets[i];
    let provider = gw.provider(target.provider)?;
    let settings = provider.upstream.settings();
    // The client's own bytes go (edited) only with the client's own request, never the copy.
    let (request, sent) = match &mut a.redacted {
        Some((copy, _)) if !provider.local => (copy, None),
        _ => (&mut a.request, a.sent.as_ref().map(Unique::borrowed)),
    };
    request.set_model(target.model.clone());
    *request.provider_prefs() = provider_prefs_for(gw, provider.adapter.as_ref(), &a.client_prefs);
    let secret = gw.identities.secret();
    partition::apply(request, secret, &a.tenant, provider.cache, &a.client_partition);
    let team_headers = gw.team_keys.headers(
        gw.store.as_ref(),
        secret,
        principal,
        gw.identities.keys_version(),
        &provider.upstream,
        &a.forwarded,
    )?;
    let (path, body, translation) = translated::outbound(
        &provider.adapter,
        &settings.name,
        (&*request, sent),
        &a.request_id,
        settings.max_event_bytes,
    )?;
    Ok(Outbound {
        provider,
        path,
        body,
        translation,
        team_headers,
    })
}

/// Sends target `i` its request and takes its answer: a stream is handed to the client with the
/// outcome to settle when it ends; a whole answer is read and settled here. A failure reports to the
/// provider's breaker and leaves the outcome open for the next target.
async fn attempt<T: Forward>(
    gw: &Arc<Gateway>,
    a: &Admitted<T>,
    i: usize,
    out: Outbound<'_>,
    outcome: &mut Outcome,
    span: &Span,
) -> Result<Response, UpstreamError> {
    let target = &a.targets[i];
    let settings = out.provider.upstream.settings();
    let request_text = outcome
        .trail
        .wants_bodies()
        .then(|| String::from_utf8_lossy(&out.body).into_owned());
    let log = RequestLog {
        request_id: a.request_id.clone(),
        provider: settings.name.clone(),
        model: target.model.clone(),
        started: a.started,
        price: a.facts[i].price,
        translation: out.translation.clone(),
        in_flight: gw.routes.start(target, a.tokens, ledger::now()),
        stream_span: None,
    };
    let step = spans::attempt(span, operation_of(T::PATH), &settings.name, &target.model, i);
    let headers = out.team_headers.as_ref().unwrap_or(&a.forwarded);
    let sent = out
        .provider
        .upstream
        .send_with_retries(&out.path, Some(out.body), a.stream, headers)
        .instrument(step.span.clone())
        .await
        .map_err(|e| out.translation.error(e))
        .inspect(|_| log.in_flight.first_byte());
    let by = Attempt {
        log,
        health: gw.health.clone(),
        provider: target.provider,
    };
    let redactions = a.redactions(out.provider.local);
    let result = match sent {
        Ok(resp) if a.stream => Ok(stream(
            resp,
            settings,
            by,
            (redactions, a.strip_usage),
            outcome,
            span,
            request_text,
        )),
        Ok(resp) => whole(resp, settings, by, redactions, outcome, request_text).await,
        Err(e) => Err(by.failed(e)),
    };
    judged(step, &result);
    result
}

/// How an attempt went, told to its span (its breaker has heard from the [`Attempt`]).
fn judged(step: Step, result: &Result<Response, UpstreamError>) {
    match result {
        Ok(r) => {
            step.span.record("http.response.status_code", r.status().as_u16());
            step.ok();
        }
        Err(e) => step.fail(&e.error_type()),
    }
}

/// A stream that has started: relayed to the client, the outcome moving with it.
fn stream(
    resp: UpstreamResponse,
    settings: &UpstreamSettings,
    mut by: Attempt,
    (redactions, strip_usage): (Option<&Redactions>, bool),
    outcome: &mut Outcome,
    span: &Span,
    request_text: Option<String>,
) -> Response {
    by.log.stream_span = Some(spans::stream(span, &settings.name, &by.log.model));
    outcome.trail.answered_by(&settings.name, &by.log.model);
    outcome.trail.bodies(request_text, None);
    streamed_response(
        resp,
        settings,
        by,
        (redactions.cloned(), strip_usage),
        outcome.take(),
    )
}

/// A whole answer: read (a failure can still fall back), then settled.
async fn whole(
    resp: UpstreamResponse,
    settings: &UpstreamSettings,
    by: Attempt,
    redactions: Option<&Redactions>,
    outcome: &mut Outcome,
    request_text: Option<String>,
) -> Result<Response, UpstreamError> {
    outcome.trail.answered_by(&settings.name, &by.log.model);
    let answer = match read_whole(resp, settings, &by.log.translation, redactions).await {
        Ok(answer) => answer,
        Err(e) => return Err(by.failed(e)),
    };
    let bodies = outcome
        .trail
        .wants_bodies()
        .then(|| (request_text, String::from_utf8_lossy(&answer.body).into_owned()));
    outcome.take().whole(
        by,
        Whole {
            status: answer.status,
            usage: answer.usage.as_ref(),
            bodies,
        },
    );
    Ok(answer.into_response())
}

/// The answer as it leaves: moatd's headers on it, and kept in the response cache when the request
/// may be.
async fn delivered<T: Forward>(
    gw: &Gateway,
    a: &Admitted<T>,
    i: usize,
    provider: &Provider,
    mut response: Response,
) -> Response {
    let name = &provider.upstream.settings().name;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&a.request_id) {
        h.insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(name) {
        h.insert("x-moat-provider", v);
    }
    if let Some(v) = a.cached.miss_header() {
        h.insert(cache::response::HEADER, v);
    }
    if let Decision::Use(key) = &a.cached {
        response = cache::keep(&gw.response_cache, *key, response, name, &a.targets[i].model).await;
    }
    response
}

/// Whether a failed attempt leaves another target worth trying (and marks those it rules out).
fn another_target<T>(
    gw: &Gateway,
    a: &Admitted<T>,
    i: usize,
    provider: &Provider,
    err: &UpstreamError,
    skip: &mut [bool],
) -> bool {
    if provider_fault(err) && skip[i + 1..].contains(&false) {
        crate::observe::metrics::fallback(&provider.upstream.settings().name);
        tracing::warn!(request_id = %a.request_id, error = %err, "falling back to the next target");
        return true;
    }
    if refusal_fallback(gw, a.route_policy.as_ref(), &a.targets, i, err, skip) {
        tracing::warn!(request_id = %a.request_id, error = %err, "refused; falling back to a target that may accept it");
        return true;
    }
    tracing::warn!(request_id = %a.request_id, error = %err, "upstream failed");
    false
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
