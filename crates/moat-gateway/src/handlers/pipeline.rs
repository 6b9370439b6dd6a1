//! The one request path every API endpoint takes; an endpoint brings only its decoder (the body as
//! parsed JSON into the request it forwards: chat, completions, embeddings, Anthropic's Messages and
//! token counting, the Responses API bridged or native). Admission therefore applies to each of them
//! by construction — keys, budgets, privacy over the whole request, partition, audit.
//!
//! Three stages, each a function over a typed context:
//! - [`admit`](admit::admit) turns the request into an `Admitted` context (body, inspection, targets,
//!   the budget hold, the redacted copy) or refuses it;
//! - [`attempt`](attempt::each_target) tries one target at a time through its provider's adapter;
//! - [`Outcome`] settles the meter, the audit record, the provider's health and the log exactly once,
//!   however the request ends: whole, streamed, cached, failed, or a client that left.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use serde_json::Value;
use tracing::Span;

use super::caller::Audited;
use super::request_kinds::Forward;
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::observe::{operation_of, spans};
use crate::{cache, GatewayError};

mod admit;
mod attempt;
mod outcome;
mod respond;

use outcome::Outcome;

/// An endpoint's decoder: the body, as parsed JSON, into the request to forward. It may be called
/// twice, the second time on the redacted copy for non-local providers.
pub(crate) trait Decoder<T>: Fn(Value) -> Result<T, GatewayError> + Send {}

impl<T, F: Fn(Value) -> Result<T, GatewayError> + Send> Decoder<T> for F {}

/// One request end to end, from an authenticated caller whose audit record is open.
pub(crate) async fn forward<T: Forward>(
    gw: Arc<Gateway>,
    caller: Audited,
    req: Request,
    decode: impl Decoder<T>,
) -> Result<Response, GatewayError> {
    forward_with(gw, caller, req, (decode, Sent::Dropped)).await
}

/// [`forward`] for an endpoint whose request is the body decoded as it is (OpenAI's own): the
/// client's bytes are kept, so an attempt that passes the request through edits them in place
/// rather than encoding the request again.
pub(crate) async fn forward_as_sent<T: Forward>(
    gw: Arc<Gateway>,
    caller: Audited,
    req: Request,
) -> Result<Response, GatewayError> {
    forward_with(gw, caller, req, (super::proxy::decode::<T>, Sent::Kept)).await
}

/// Whether the client's bytes are kept to be edited in place: only when the request is decoded from
/// them as they are (not translated from another wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    Kept,
    Dropped,
}

async fn forward_with<T: Forward>(
    gw: Arc<Gateway>,
    caller: Audited,
    req: Request,
    (decode, sent): (impl Decoder<T>, Sent),
) -> Result<Response, GatewayError> {
    let Audited {
        principal,
        request_id,
        trail,
    } = caller;
    let mut outcome = Outcome::open(trail);
    if let Some(o) = outcome.observation() {
        o.operation(operation_of(T::PATH));
    }
    // The request's future is large (every stage's locals held across awaits); boxed once here, the
    // router's layers, which box and move each handler's future, move a pointer instead of copying it.
    let result = Box::pin(serve(
        &gw,
        &principal,
        (request_id, req),
        (&decode, sent),
        &mut outcome,
    ))
    .await;
    if let Err(e) = &result {
        outcome.take().failed(e.status());
    }
    result
}

async fn serve<T: Forward>(
    gw: &Arc<Gateway>,
    principal: &Principal,
    req: (String, Request),
    decode: (&impl Decoder<T>, Sent),
    outcome: &mut Outcome,
) -> Result<Response, GatewayError> {
    let span = outcome.observation().map_or_else(Span::none, |o| o.span.clone());
    let admission = spans::admission(&span);
    let mut admitted = admit::admit(gw, principal, req, decode, outcome).await?;
    admission.ok();
    if let cache::response::Decision::Use(key) = &admitted.cached {
        if let Some(hit) = gw.response_cache.get(key, std::time::Instant::now()) {
            outcome.take().cached(&hit);
            return Ok(cache::hit(hit, &admitted.request_id));
        }
    }
    attempt::each_target(gw, principal, &mut admitted, outcome, &span).await
}
