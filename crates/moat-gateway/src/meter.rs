//! A [`Meter`] follows each request: it holds the reservation and, when the answer's usage is known,
//! settles it and writes the usage row. Dropped without settling (the request failed, or the client
//! left before an answer), it releases the hold. Which [`Limiter`] counts (memory or cluster) is the
//! gateway's business, not the request path's.

use std::sync::Arc;

use moat_policy::budget::{Hold, Nanos, UnixSecs};
use moat_policy::pricing::{actual_cost, Price};
use moat_store::{Store, UsageRow};
use moat_wire::openai::Usage;

use crate::ledger::now;
use crate::limits::{Limiter, Reservation, Via};
use crate::GatewayError;

/// Who is paying for a request, for the usage row and the reservation.
#[derive(Debug, Clone)]
pub struct Payer {
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    /// Whether limits apply (virtual keys) or the request is only recorded (static keys).
    pub metered: bool,
}

/// Follows one request from reservation to settlement.
pub struct Meter {
    limits: Arc<dyn Limiter>,
    store: Arc<dyn Store>,
    payer: Payer,
    request_id: String,
    hold: Hold,
    /// The reservation and where it was made; None for unmetered payers.
    reserved: Option<(Reservation, Via)>,
    done: bool,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("request_id", &self.request_id)
            .field("hold", &self.hold)
            .finish()
    }
}

impl Meter {
    /// Reserves `hold` for a metered payer (refusing with 402/429, or 503 when the limits cannot be
    /// checked), or just prepares to record usage for an unmetered one.
    pub async fn reserve(
        limits: &Arc<dyn Limiter>,
        store: &Arc<dyn Store>,
        payer: Payer,
        request_id: String,
        hold: Hold,
        now: UnixSecs,
    ) -> Result<Meter, GatewayError> {
        let mut meter = Meter {
            limits: limits.clone(),
            store: store.clone(),
            payer,
            request_id,
            hold,
            reserved: None,
            done: false,
        };
        if meter.payer.metered {
            if let Some(key_id) = meter.payer.key_id.clone() {
                let reservation = Reservation {
                    request_id: meter.request_id.clone(),
                    key_id,
                    team_id: meter.payer.team_id.clone(),
                    hold,
                    at: now,
                };
                match limits.reserve(&reservation).await {
                    Ok(via) => {
                        meter.reserved = Some((reservation, via));
                        holds_open(1.0);
                    }
                    Err(e) => {
                        meter.done = true;
                        return Err(e);
                    }
                }
            }
        }
        Ok(meter)
    }

    /// Settles with the answer's usage. Without usage (the provider sent none, or the client left
    /// mid-stream) the whole hold is charged: the provider may have billed for it, and charging less
    /// could let spend pass the limit.
    pub fn settle(
        mut self,
        usage: Option<&Usage>,
        price: Option<Price>,
        provider: &str,
        model: &str,
        status: &str,
    ) -> Settled {
        let now = now();
        let (prompt, completion, cost) = match usage {
            Some(u) => (
                u.prompt_tokens,
                u.completion_tokens,
                actual_cost(u.cost, price, u.prompt_tokens, u.completion_tokens),
            ),
            None => (0, 0, self.hold.cost),
        };
        let tokens = if usage.is_some() {
            prompt.saturating_add(completion)
        } else {
            self.hold.tokens
        };
        if let Some((r, via)) = &self.reserved {
            holds_open(-1.0);
            self.limits.settle(r, *via, cost, tokens, now);
        }
        self.done = true;
        self.limits.publish(self.payer.team_id.as_deref(), cost, now);
        let row = UsageRow {
            request_id: self.request_id.clone(),
            ts: now,
            key_id: self.payer.key_id.clone(),
            team_id: self.payer.team_id.clone(),
            provider: provider.to_string(),
            model: model.to_string(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_nanos: cost,
            status: status.to_string(),
        };
        if let Err(e) = self.store.record_usage(row) {
            tracing::error!(request_id = %self.request_id, error = %e, "usage not recorded");
        }
        Settled {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_nanos: cost,
        }
    }
}

/// What a settlement charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_nanos: Nanos,
}

/// `moat_budget_holds_open`: requests holding a budget reservation right now. It returns to zero when
/// traffic stops, however requests ended (a hold that outlives its request would block spend).
fn holds_open(delta: f64) {
    metrics::gauge!("moat_budget_holds_open").increment(delta);
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some((r, via)) = &self.reserved {
            holds_open(-1.0);
            self.limits.release(r, *via, now());
        }
    }
}
