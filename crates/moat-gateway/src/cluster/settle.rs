//! Settling and releasing on the shared counters: one script per request, sent in the background by
//! the core that served the request (over that core's connection, see `conns`), queued for replay
//! when Valkey cannot take it, and waited for when a serving core stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use moat_policy::budget::{Nanos, UnixSecs};
use redis::aio::ConnectionManager;

use super::{lock, scripts, window, ClusterLimiter, Party, MAX_PENDING};
use crate::limits::{Limiter, Reservation, Via};

/// A settlement (or release) to send, with everything needed to send it later.
#[derive(Debug, Clone)]
pub(super) struct Settlement {
    request_id: String,
    parties: Vec<Party>,
    cost: Nanos,
    tokens: u64,
    held_tokens: u64,
    /// The reservation's minute and the settlement's time.
    reserved_at: UnixSecs,
    now: UnixSecs,
}

/// Counts the settlements on their way to Valkey. A serving core's runtime drops its unfinished
/// tasks when it stops, so a graceful stop (a rolling upgrade) waits for this to reach zero first:
/// otherwise the last requests' spend would miss the shared counters.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One settlement on its way; dropped when it was sent, failed, or its task was dropped.
pub(super) struct Sending(Arc<ClusterLimiter>);

impl InFlight {
    pub(super) fn start(&self, limiter: &Arc<ClusterLimiter>) -> Sending {
        self.count.fetch_add(1, Ordering::AcqRel);
        Sending(limiter.clone())
    }

    /// Until none is on its way, or `limit` passed.
    pub(super) async fn wait(&self, limit: std::time::Duration) {
        let none_left = async {
            loop {
                // Registered before looking, so a wake-up between the two is not missed.
                let idle = self.idle.notified();
                if self.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(limit, none_left).await;
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        if self.0.sending.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.sending.idle.notify_waiters();
        }
    }
}

impl ClusterLimiter {
    pub(super) fn settlement(
        &self,
        r: &Reservation,
        cost: Nanos,
        tokens: u64,
        now: UnixSecs,
    ) -> Option<Settlement> {
        let parties = self.parties(&r.key_id, r.team_id.as_deref()).ok()?;
        Some(Settlement {
            request_id: r.request_id.clone(),
            parties,
            cost,
            tokens,
            held_tokens: r.hold.tokens,
            reserved_at: r.at,
            now,
        })
    }

    pub(super) fn finish(&self, r: &Reservation, via: Via, cost: Nanos, tokens: u64, now: UnixSecs) {
        match via {
            Via::Unlimited | Via::Memory => {}
            Via::Fallback => {
                if let Some(ledger) = lock(&self.fallback).clone() {
                    Limiter::settle(ledger.as_ref(), r, Via::Memory, cost, tokens, now);
                }
                // Counted in Valkey too once it is back, so the shared spend stays whole.
                if cost > 0 {
                    if let Some(s) = self.settlement(r, cost, tokens, now) {
                        self.queue(s);
                    }
                }
            }
            Via::Shared => {
                lock(&self.live).remove(&r.request_id);
                let Some(s) = self.settlement(r, cost, tokens, now) else {
                    return;
                };
                if !self.is_available() {
                    self.queue(s);
                    return;
                }
                let Some(this) = self.clone_handle() else {
                    return;
                };
                // On a serving core, sent by that core over its own connection: no thread is woken.
                let (runtime, mut conn) = match tokio::runtime::Handle::try_current() {
                    Ok(here) => (here, self.conns.here()),
                    Err(_) => (self.runtime.clone(), self.conns.background()),
                };
                let sending = this.sending.start(&this);
                runtime.spawn(async move {
                    if let Err(e) = this.send(&mut conn, &s).await {
                        this.mark_down(&e);
                        this.queue(s);
                    }
                    drop(sending);
                });
            }
        }
    }

    pub(super) fn queue(&self, s: Settlement) {
        let mut pending = lock(&self.pending);
        if pending.len() >= MAX_PENDING {
            pending.pop_front();
            tracing::error!(
                "settlement queue full: the oldest settlement was dropped from the live counters"
            );
        }
        pending.push_back(s);
    }

    /// Sends one settlement.
    pub(super) async fn send(&self, conn: &mut ConnectionManager, s: &Settlement) -> Result<(), String> {
        let minute_then = s.reserved_at.div_euclid(60);
        let minute_now = s.now.div_euclid(60);
        let mut invocation = self.scripts.settle.prepare_invoke();
        invocation.key(scripts::done_key(&s.request_id));
        invocation
            .arg(&s.request_id)
            .arg(s.cost)
            .arg(s.tokens)
            .arg(s.held_tokens);
        for p in &s.parties {
            let (start, ttl) = window(&p.limits, s.now);
            for k in scripts::settle_keys(&p.prefix, start, minute_then, minute_now) {
                invocation.key(k);
            }
            invocation
                .arg(ttl)
                .arg(if p.limits.tpm.is_some() { "1" } else { "0" });
        }
        let result: Result<i64, String> =
            match tokio::time::timeout(self.settings.timeout * 4, invocation.invoke_async(conn)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("settlement timed out".to_string()),
            };
        self.trips.settle.increment(1);
        result.map(|_| ())
    }
}
