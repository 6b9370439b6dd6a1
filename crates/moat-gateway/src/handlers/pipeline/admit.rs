//! The admit stage: a request becomes an [`Admitted`] context, or is refused. Its body is read within
//! the limits and inspected whole (privacy, the budget's demand) before the endpoint's decoder sees it;
//! then the targets are planned and narrowed (the key's rules, the privacy scan's effects, provider
//! health, route caps), the budget hold is taken, and the redacted copy for non-local providers made.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use bytes::Bytes;
use http::HeaderMap;
use moat_policy::budget::Hold;
use moat_policy::demand::Demand;
use moat_policy::route::{plan, Target};
use moat_wire::edit::Unique;
use moat_wire::openai::ProviderPreferences;
use serde_json::Value;

use super::outcome::Outcome;
use super::respond::forwarded_headers;
use super::{Decoder, Sent};
use crate::cache::partition::{self, ClientValues};
use crate::cache::response::Decision;
use crate::config::RoutePolicy;
use crate::gateway::Gateway;
use crate::handlers::admission::{apply_key_rules, apply_privacy, is_local, reservation};
use crate::handlers::proxy::parse_body_kept;
use crate::handlers::request_kinds::Forward;
use crate::identity::Principal;
use crate::ledger::{self, Meter};
use crate::pricebook::ModelFacts;
use crate::privacy::{Inspection, Redactions};
use crate::{body, GatewayError};

/// A request that may leave: everything the attempts need, decided once.
pub(super) struct Admitted<T> {
    pub(super) request_id: String,
    pub(super) started: Instant,
    /// The request as the client sent it, decoded (what local providers get).
    pub(super) request: T,
    /// The client's bytes, when `request` was decoded from them as they are ([`Sent::Kept`]) and no
    /// object in them repeats a key: what an attempt sending `request` to a kind that passes it
    /// through edits in place.
    pub(super) sent: Option<Unique<Bytes>>,
    /// The copy for non-local providers, with what `redact` rules found replaced, and how to restore
    /// the answer; only made when a non-local target is left to try.
    pub(super) redacted: Option<(T, Redactions)>,
    /// Whose prompt cache this request may use.
    pub(super) tenant: String,
    /// The cache-partition members the client sent, taken out of the request.
    pub(super) client_partition: ClientValues,
    pub(super) client_prefs: Option<ProviderPreferences>,
    /// The targets in the order to try them, with each one's price and limits.
    pub(super) targets: Vec<Target>,
    pub(super) facts: Vec<ModelFacts>,
    /// Tokens the request is estimated to use, counted against its target's rate caps.
    pub(super) tokens: u64,
    pub(super) cached: Decision,
    pub(super) route_policy: Option<RoutePolicy>,
    pub(super) stream: bool,
    /// Usage the client did not ask for, asked for so a metered stream settles: taken out again.
    pub(super) strip_usage: bool,
    /// The client headers providers act on.
    pub(super) forwarded: HeaderMap,
}

/// The body as the client sent it, inspected whole.
struct Inspected {
    raw: Value,
    /// The body's bytes, unless an object in them repeats a key.
    unique: Option<Unique<Bytes>>,
    inspection: Inspection,
    demand: Demand,
    redacted: Option<(Value, Redactions)>,
}

/// Admits `req` from `principal`, or refuses it. The hold goes into `outcome`, which settles it.
pub(super) async fn admit<T: Forward>(
    gw: &Arc<Gateway>,
    principal: &Principal,
    (request_id, req): (String, Request),
    (decode, sent): (&impl Decoder<T>, Sent),
    outcome: &mut Outcome,
) -> Result<Admitted<T>, GatewayError> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let limits = (gw.server.max_body_bytes, gw.server.body_read_timeout);
    let bytes = body::read_limited(&parts.headers, body, limits.0, limits.1).await?;
    let Inspected {
        raw,
        unique,
        inspection,
        demand,
        redacted,
    } = inspect(gw, bytes, outcome)?;
    let mut request: T = decode(raw)?;
    let fallbacks = request.take_fallbacks();
    let tenant = partition::tenant(principal);
    let cached = gw.response_cache.decide(
        &tenant,
        T::PATH,
        request.model(),
        request.wants_stream(),
        &parts.headers,
        || crate::cache::response::request_value(&request, &fallbacks),
    );
    let client_partition = partition::take_client_values(&mut request)?;
    outcome.trail.model_requested(request.model(), &fallbacks);
    let routed = route(gw, principal, &request, &fallbacks, (&inspection, &demand))?;
    let stream = request.wants_stream();
    let forwarded = forwarded_headers(&parts.headers);
    let facts = reserve::<T>(gw, principal, &routed.targets, &demand, &request_id, outcome).await?;
    let metered_stream = stream && principal.payer().metered;
    let strip_usage = metered_stream && request.ask_stream_usage();
    let redacted = redacted_copy(gw, decode, redacted, &routed.targets, metered_stream)?;
    let client_prefs = request.provider_prefs().clone();
    Ok(Admitted {
        request_id,
        started,
        request,
        sent: unique.filter(|_| sent == Sent::Kept),
        redacted,
        tenant,
        client_partition,
        client_prefs,
        targets: routed.targets,
        facts,
        tokens: routed.tokens,
        cached,
        route_policy: routed.policy,
        stream,
        strip_usage,
        forwarded,
    })
}

/// Privacy and budgets read the body as the client sent it, before the endpoint decodes it: what an
/// endpoint keeps, translates or passes on as unknown members is all inspected and counted.
fn inspect(gw: &Gateway, bytes: Bytes, outcome: &mut Outcome) -> Result<Inspected, GatewayError> {
    let len = bytes.len();
    let (raw, unique) = parse_body_kept(bytes)?;
    let inspection = gw.privacy.inspect(&raw);
    outcome.trail.policy(&inspection.decisions);
    let demand = Demand::of_body(&raw, len);
    let redacted = inspection.redacted(&raw);
    Ok(Inspected {
        raw,
        unique,
        inspection,
        demand,
        redacted,
    })
}

/// The targets a request may go to, in order.
struct Routed {
    targets: Vec<Target>,
    policy: Option<RoutePolicy>,
    /// Prompt and output tokens as estimated from the body.
    tokens: u64,
}

/// Plans the targets (model addressing, aliases, the `models` list) and keeps those this request may
/// use: the key's rules, the privacy scan's effects, provider health, then the route's order and its
/// per-target rate caps (429 when every target is at its cap).
fn route<T: Forward>(
    gw: &Gateway,
    principal: &Principal,
    request: &T,
    fallbacks: &[String],
    (inspection, demand): (&Inspection, &Demand),
) -> Result<Routed, GatewayError> {
    let now = ledger::now();
    let mut targets = plan(&gw.catalog, request.model(), fallbacks)?;
    if let Principal::Virtual(key) = principal {
        apply_key_rules(gw, key, request.model(), fallbacks, &mut targets)?;
    }
    apply_privacy(gw, inspection, &mut targets)?;
    gw.health.filter(&mut targets, Instant::now());
    let policy = gw.routes.policy(request.model()).cloned();
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
    Ok(Routed {
        targets,
        policy,
        tokens: estimate.0 + estimate.1,
    })
}

/// Takes the budget hold (the most any target could cost) into `outcome`, and returns each target's
/// facts for settling. Requests that cost nothing at the provider hold nothing.
async fn reserve<T: Forward>(
    gw: &Arc<Gateway>,
    principal: &Principal,
    targets: &[Target],
    demand: &Demand,
    request_id: &str,
    outcome: &mut Outcome,
) -> Result<Vec<ModelFacts>, GatewayError> {
    let payer = principal.payer();
    let (hold, facts) = if T::FREE {
        (Hold::default(), vec![ModelFacts::default(); targets.len()])
    } else {
        reservation(gw, &payer, targets, demand, T::GENERATES).await?
    };
    let meter = Meter::reserve(
        &gw.limits,
        &gw.store,
        payer,
        request_id.to_owned(),
        hold,
        ledger::now(),
    )
    .await?;
    outcome.hold(meter);
    Ok(facts)
}

/// The copy for non-local providers, decoded and prepared as the request was.
fn redacted_copy<T: Forward>(
    gw: &Gateway,
    decode: &impl Decoder<T>,
    redacted: Option<(Value, Redactions)>,
    targets: &[Target],
    metered_stream: bool,
) -> Result<Option<(T, Redactions)>, GatewayError> {
    let Some((value, redactions)) = redacted.filter(|_| targets.iter().any(|t| !is_local(gw, t.provider)))
    else {
        return Ok(None);
    };
    let mut copy = decode(value)?;
    copy.take_fallbacks();
    let _ = partition::take_client_values(&mut copy);
    if metered_stream {
        copy.ask_stream_usage();
    }
    Ok(Some((copy, redactions)))
}

impl<T> Admitted<T> {
    /// How to restore a redacted answer: only for the copy non-local providers get.
    pub(super) fn redactions(&self, local: bool) -> Option<&Redactions> {
        match &self.redacted {
            Some((_, redactions)) if !local => Some(redactions),
            _ => None,
        }
    }
}
