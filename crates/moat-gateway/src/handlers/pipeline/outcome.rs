//! How a request ended, settled exactly once: the meter (charge the usage or release the hold), the
//! audit trail (usage, bodies, the status the client got), the answering provider's health, and the
//! log line. Every ending has one method here — a whole answer, a stream's end, a cache hit, a
//! failure — and each consumes the [`Outcome`]; a client that leaves first drops it, which releases
//! the hold and records 499 (the meter's and the trail's own `Drop`), so no ending is left unsettled.
//! Each [`Attempt`] on the way tells its provider's breaker how it went, once, the same way.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use moat_policy::route::ProviderId;
use moat_upstream::relay::RelayOutcome;
use moat_upstream::UpstreamError;
use moat_wire::openai::Usage;

use super::respond::RequestLog;
use crate::audit::Trail;
use crate::cache::response::Cached;
use crate::health::Health;
use crate::ledger::Meter;
use crate::observe::Observation;

/// A request's open accounts: its audit record and, once admitted, its budget hold.
pub(super) struct Outcome {
    pub(super) trail: Trail,
    meter: Option<Meter>,
}

/// One target being tried: its log line, and whose breaker hears how it went, once — from
/// [`Attempt::failed`], or from the outcome its answer settles. An attempt the client abandons is
/// dropped unheard: it says nothing about the provider.
pub(super) struct Attempt {
    pub(super) log: RequestLog,
    pub(super) health: Arc<Health>,
    pub(super) provider: ProviderId,
}

impl Attempt {
    /// The target failed; the request may still end with another's answer. A failure that is the
    /// request's own (a 4xx other than 408/429) counts for the provider, not against it.
    pub(super) fn failed(self, err: UpstreamError) -> UpstreamError {
        let failure = Some(&err).filter(|e| provider_fault(e));
        self.health
            .request_outcome(self.provider, failure, Instant::now());
        err
    }
}

/// True when the failure is the provider's, so another provider might do better. A 4xx (other than
/// 408/429) says the request itself is wrong; trying it elsewhere would only repeat the answer.
pub(super) fn provider_fault(err: &UpstreamError) -> bool {
    match err {
        UpstreamError::Status { .. } => err.is_retryable(),
        UpstreamError::Config(_) => false,
        _ => true,
    }
}

/// A whole answer as read: what it cost and what the audit log may keep of it.
pub(super) struct Whole<'a> {
    pub(super) status: StatusCode,
    pub(super) usage: Option<&'a Usage>,
    /// The request and answer text, when the audit log keeps bodies.
    pub(super) bodies: Option<(Option<String>, String)>,
}

impl Outcome {
    pub(super) fn open(trail: Trail) -> Outcome {
        Outcome { trail, meter: None }
    }

    /// The budget hold admission made, settled by whichever ending comes.
    pub(super) fn hold(&mut self, meter: Meter) {
        self.meter = Some(meter);
    }

    pub(super) fn observation(&self) -> Option<&Arc<Observation>> {
        self.trail.observation()
    }

    /// Moves the accounts into an outcome that settles later (when a stream ends), leaving this one
    /// with nothing to settle.
    pub(super) fn take(&mut self) -> Outcome {
        Outcome {
            trail: self.trail.detach(),
            meter: self.meter.take(),
        }
    }

    /// Charges `usage` at the answering model's price (the whole hold without usage), and records
    /// what was charged.
    fn charge(&mut self, usage: Option<&Usage>, by: &RequestLog, state: &str) {
        match self.meter.take() {
            Some(meter) => {
                let settled = meter.settle(usage, by.price, &by.provider, &by.model, state);
                self.trail.usage(
                    settled.prompt_tokens,
                    settled.completion_tokens,
                    settled.cost_nanos,
                );
            }
            None => {
                if let Some(u) = usage {
                    self.trail.usage(u.prompt_tokens, u.completion_tokens, 0);
                }
            }
        }
    }

    /// A whole answer, read and about to go to the client.
    pub(super) fn whole(mut self, by: Attempt, answer: Whole<'_>) {
        self.charge(answer.usage, &by.log, "ok");
        if let Some((request, response)) = answer.bodies {
            self.trail.bodies(request, Some(response));
        }
        by.log.answered(answer.usage);
        by.health.request_outcome(by.provider, None, Instant::now());
        self.trail.finish(answer.status.as_u16());
    }

    /// A streamed answer that has ended, however it ended: `status` is what the client got with the
    /// stream; one the client left is recorded as 499.
    pub(super) fn streamed(mut self, by: Attempt, relay: RelayOutcome, status: StatusCode) {
        let Attempt {
            mut log,
            health,
            provider,
        } = by;
        // A stream counts for its provider's breaker once it ends: finished is a success, broken by
        // the provider a failure; one the client left says nothing about the provider.
        if relay.completed {
            health.stream_ended(provider, None, Instant::now());
        } else if !relay.cancelled {
            let error = relay
                .error
                .clone()
                .unwrap_or_else(|| "the stream ended early".to_owned());
            health.stream_ended(provider, Some(error), Instant::now());
        }
        let state = if relay.completed {
            "ok"
        } else if relay.cancelled {
            "cancelled"
        } else {
            "error"
        };
        self.charge(relay.usage.as_ref(), &log, state);
        self.trail
            .finish(if relay.cancelled { 499 } else { status.as_u16() });
        log.stream_ended(&relay);
        log.stream_finished(relay);
    }

    /// An answer from the response cache: no provider was paid, so the hold settles at zero cost and
    /// zero tokens, and the usage row says `cache_hit`, so reports show what the cache saved.
    pub(super) fn cached(mut self, hit: &Cached) {
        self.trail.answered_by(&hit.provider, &hit.model);
        if let Some(meter) = self.meter.take() {
            let zero = Usage {
                cost: Some(0.0),
                ..Usage::default()
            };
            meter.settle(Some(&zero), None, &hit.provider, &hit.model, "cache_hit");
        }
        self.trail.usage(0, 0, 0);
        self.trail.finish(StatusCode::OK.as_u16());
    }

    /// A request refused or failed before any answer went out: the hold is released (nothing was
    /// charged for it) and the record carries the error's status.
    pub(super) fn failed(mut self, status: StatusCode) {
        drop(self.meter.take());
        self.trail.finish(status.as_u16());
    }
}
