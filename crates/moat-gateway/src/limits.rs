//! The limits seam: where budgets, holds and rate windows are counted. The request path reserves,
//! settles and releases through [`Limiter`] and does not care which one it has:
//!
//! - [`crate::ledger::Ledger`], in memory, one node (no `[cluster]`): today's exact arithmetic under
//!   one lock;
//! - [`crate::cluster::ClusterLimiter`], in Valkey or Redis (`[cluster] url`), shared by every node:
//!   the same arithmetic as server-side scripts, so a reservation against a key and its team is one
//!   atomic step wherever it is made.

use futures_util::future::BoxFuture;
use moat_policy::budget::{Budget, Hold, Nanos, UnixSecs};
use moat_store::{KeyRecord, StoreError, TeamRecord};

use crate::GatewayError;

/// One request's claim on its key's (and team's) limits.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// Unique per request: the idempotency key of settlement.
    pub request_id: String,
    pub key_id: String,
    pub team_id: Option<String>,
    pub hold: Hold,
    /// When it was reserved (its rate-limit minute).
    pub at: UnixSecs,
}

/// Where a reservation was made, so it is settled in the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The in-memory ledger of a single node.
    Memory,
    /// The cluster's shared counters.
    Shared,
    /// This node's share, while the shared counters were unreachable (`on_unavailable = "local_share"`).
    Fallback,
    /// Nothing to count: neither the key nor its team has a limit.
    Unlimited,
}

/// How the limits are doing, for `/ready`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LimiterStatus {
    /// `memory` (one node) or `cluster`.
    pub mode: &'static str,
    /// False while metered requests are refused with 503 `limits_unavailable`.
    pub available: bool,
    /// True while this node enforces its own share of each limit (Valkey unreachable, opt-in).
    pub fallback: bool,
    /// Settlements waiting for the shared counters to come back.
    pub pending_settlements: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Budgets, holds and rate windows of every key and team.
pub trait Limiter: Send + Sync + std::fmt::Debug {
    /// Brings limits in line with the store's keys and teams (at start and whenever they change).
    fn sync(&self, keys: &[KeyRecord], teams: &[TeamRecord], now: UnixSecs) -> Result<(), StoreError>;
    /// True when the key or its team has a spend limit (so prices must be known).
    fn has_budget(&self, key_id: &str, team_id: Option<&str>) -> bool;
    /// (spent in window, lifetime spend, budget) for reports such as `/api/v1/key`.
    fn key_status(&self, key_id: &str, now: UnixSecs) -> Option<(Nanos, Nanos, Option<Budget>)>;
    /// Reserves the hold on the key and its team, or refuses (402/429, or 503 when it cannot tell).
    fn reserve<'a>(&'a self, r: &'a Reservation) -> BoxFuture<'a, Result<Via, GatewayError>>;
    /// Drops the hold and counts what was used. Never waits: a shared settlement finishes in the
    /// background, and is retried until it lands.
    fn settle(&self, r: &Reservation, via: Via, cost: Nanos, tokens: u64, now: UnixSecs);
    /// Drops the hold of a request that produced nothing billable.
    fn release(&self, r: &Reservation, via: Via, now: UnixSecs);
    /// Publishes a settlement's spend as metrics, and what is left of the team's budget where this
    /// node knows it.
    fn publish(&self, team_id: Option<&str>, cost: Nanos, now: UnixSecs);
    fn status(&self) -> LimiterStatus;
    /// Waits, a bounded time, for the settlements still on their way from this node; a serving
    /// runtime calls it as it stops, so a graceful stop loses none. Nothing to wait for by default.
    fn drain(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
