//! The per-provider circuit breaker: a pure state machine fed by request outcomes and health checks,
//! deciding whether route planning may send a request to the provider.
//!
//! States (as `/ready` reports them):
//! - **healthy** (closed): requests flow. `failure_threshold` consecutive provider failures open it.
//! - **unhealthy** (open): requests skip the provider until `cool_down` has passed; then one request is
//!   let through as a probe (half-open).
//! - **half_open**: one probe request is in flight; everyone else still skips the provider. Its success
//!   closes the breaker, its failure opens it for another cool-down. A probe that never reports (the
//!   request was served by an earlier target, or the client went away) expires after `cool_down`, so
//!   the breaker cannot stick half-open.
//!
//! Health checks are direct observations, not one request among many: a failed check opens the breaker
//! at once. A successful check closes a breaker that a check opened (the server answers again); a
//! breaker opened by request failures (the server answers its health endpoint but fails real work) is
//! closed by a successful check only once its cool-down is over, so a flapping provider does not
//! bounce straight back into rotation.
//!
//! The caller passes the time in; nothing here reads a clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use moat_policy::breaker::{Breaker, BreakerPolicy, State};
//!
//! let policy = BreakerPolicy { failure_threshold: 2, cool_down: Duration::from_secs(5) };
//! let mut b = Breaker::new(policy);
//! let t0 = Instant::now();
//! b.request_failed(t0);
//! assert!(b.admit(t0));
//! b.request_failed(t0);
//! assert_eq!(b.state(), State::Unhealthy);
//! assert!(!b.admit(t0 + Duration::from_secs(1)));
//! assert!(b.admit(t0 + Duration::from_secs(5))); // the half-open probe
//! assert_eq!(b.state(), State::HalfOpen);
//! b.request_succeeded();
//! assert_eq!(b.state(), State::Healthy);
//! ```

use std::time::{Duration, Instant};

/// How quickly a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive provider failures (after the request's own retries) that open the breaker. At
    /// least 1.
    pub failure_threshold: u32,
    /// How long an open breaker keeps requests away before letting one probe through.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 3,
            cool_down: Duration::from_secs(10),
        }
    }
}

/// The breaker's state, as reported by `/ready` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Healthy,
    Unhealthy,
    HalfOpen,
}

impl State {
    /// The name used in `/ready` and in the `state` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
            State::HalfOpen => "half_open",
        }
    }

    /// Every state, for exporting one gauge per state.
    pub const ALL: [State; 3] = [State::Healthy, State::Unhealthy, State::HalfOpen];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed,
    Open {
        /// When a probe may go through.
        until: Instant,
        /// Opened by a failed health check (a later successful check closes it at once).
        by_check: bool,
    },
    HalfOpen {
        /// When the probe was let through; it expires a cool-down later.
        since: Instant,
    },
}

/// One provider's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    inner: Inner,
    /// Provider failures in a row while closed.
    consecutive_failures: u32,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy: BreakerPolicy {
                failure_threshold: policy.failure_threshold.max(1),
                ..policy
            },
            inner: Inner::Closed,
            consecutive_failures: 0,
        }
    }

    pub fn state(&self) -> State {
        match self.inner {
            Inner::Closed => State::Healthy,
            Inner::Open { .. } => State::Unhealthy,
            Inner::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// Provider failures in a row (reset by a success).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// True when [`Breaker::admit`] would let a request through at `now`; changes nothing. Route
    /// planning uses it to learn whether any target is usable before claiming probes.
    pub fn usable(&self, now: Instant) -> bool {
        match self.inner {
            Inner::Closed => true,
            Inner::Open { until, .. } => now >= until,
            Inner::HalfOpen { since } => now >= since + self.policy.cool_down,
        }
    }

    /// Whether a request may go to the provider now. When the cool-down is over this claims the one
    /// half-open probe, so call it only for a request that will really be sent.
    pub fn admit(&mut self, now: Instant) -> bool {
        if !self.usable(now) {
            return false;
        }
        if !matches!(self.inner, Inner::Closed) {
            self.inner = Inner::HalfOpen { since: now };
        }
        true
    }

    /// The provider answered (any answer that is not its own fault, a 4xx included).
    pub fn request_succeeded(&mut self) {
        self.inner = Inner::Closed;
        self.consecutive_failures = 0;
    }

    /// The provider failed a request (unreachable, timed out, 5xx/429 after retries).
    pub fn request_failed(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.inner {
            Inner::Closed if self.consecutive_failures < self.policy.failure_threshold => {}
            // A failed probe, a threshold reached, or a last-resort request to an open breaker: (re)open.
            Inner::Open { by_check, .. } => self.open(now, by_check),
            _ => self.open(now, false),
        }
    }

    /// A health check answered 2xx.
    pub fn check_succeeded(&mut self, now: Instant) {
        match self.inner {
            Inner::Closed => {}
            Inner::Open { until, by_check } if !by_check && now < until => {}
            Inner::Open { .. } | Inner::HalfOpen { .. } => self.request_succeeded(),
        }
    }

    /// A health check failed: the provider is not answering, whatever the request counter says.
    pub fn check_failed(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.max(self.policy.failure_threshold);
        self.open(now, true);
    }

    fn open(&mut self, now: Instant, by_check: bool) {
        self.inner = Inner::Open {
            until: now + self.policy.cool_down,
            by_check,
        };
    }
}

#[cfg(test)]
mod tests;
