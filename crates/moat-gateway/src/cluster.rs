//! The cluster [`Limiter`]: budgets, holds and rate windows shared by every node through Valkey (or
//! Redis), so N nodes behind a load balancer enforce exactly what one node does.
//!
//! - A reservation is one server-side script over the key's and the team's counters: checked and held
//!   on both, or on neither (`scripts::RESERVE`). One round trip on the request path.
//! - Settlement and release are one script too, idempotent by request id, sent in the background: the
//!   answer never waits for them. One that cannot be sent is queued and retried until it lands
//!   (`settle`).
//! - Each serving core talks to Valkey over its own connection, so neither step wakes another
//!   thread (`conns`).
//! - Every hold carries an expiry that this node keeps pushing forward while the request runs; a
//!   node that dies stops renewing, and its holds lapse within `hold_ttl`.
//! - An account's window spend is rebuilt from the store's usage rows the first time a node finds it
//!   missing (a new window, or a Valkey that restarted empty).
//!
//! When Valkey cannot be reached, metered requests are refused with 503 `limits_unavailable`, or, with
//! `on_unavailable = "local_share"`, counted by an in-memory [`Ledger`] holding this node's share of
//! every limit. Either way `/ready` and the log say so, and the node keeps probing; once Valkey
//! answers, the settlements made meanwhile are replayed into it before it is used again.

mod conns;
mod scripts;
mod settle;
mod upkeep;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use futures_util::future::BoxFuture;
use moat_policy::budget::{Budget, Nanos, Period, Refusal, UnixSecs};
use moat_store::{KeyRecord, Scope, Store, StoreError, TeamRecord};
use redis::aio::ConnectionManager;

use crate::config::{ClusterSettings, OnUnavailable};
use crate::ledger::Ledger;
use crate::limits::{Limiter, LimiterStatus, Reservation, Via};
use crate::GatewayError;
use conns::{Conns, RoundTrips};
use scripts::Scripts;
use settle::{InFlight, Settlement};

/// Settlements kept for replay while Valkey is away; beyond this the oldest are dropped (their usage
/// rows are in the store, so only the live counter misses them) and the loss is logged.
const MAX_PENDING: usize = 100_000;

/// Reservations in a row that may time out before Valkey counts as unreachable: one slow answer under
/// a burst refuses that request (fail closed), not every request until the next probe.
const TIMEOUTS_BEFORE_DOWN: u32 = 3;

/// One account's limits as the scripts need them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AccountLimits {
    budget: Option<Budget>,
    rpm: Option<u32>,
    tpm: Option<u64>,
}

impl AccountLimits {
    fn of(l: &moat_store::Limits) -> AccountLimits {
        AccountLimits {
            budget: l.budget_nanos.map(|limit| Budget {
                limit,
                period: l
                    .budget_period
                    .as_deref()
                    .and_then(Period::parse)
                    .unwrap_or(Period::Total),
            }),
            rpm: l.rpm,
            tpm: l.tpm,
        }
    }

    fn any(&self) -> bool {
        self.budget.is_some() || self.rpm.is_some() || self.tpm.is_some()
    }

    fn period(&self) -> Period {
        self.budget.map_or(Period::Total, |b| b.period)
    }
}

/// An account taking part in one reservation: 0 is the key, 1 its team (for error messages).
#[derive(Debug, Clone)]
struct Party {
    index: usize,
    prefix: String,
    scope: Scope,
    limits: AccountLimits,
}

#[derive(Debug, Default)]
struct Table {
    keys: HashMap<String, AccountLimits>,
    teams: HashMap<String, AccountLimits>,
    /// The records last synced, to build a fallback ledger from.
    records: (Vec<KeyRecord>, Vec<TeamRecord>),
}

/// Budgets and rate limits in Valkey, shared by every node.
pub struct ClusterLimiter {
    /// Per-core connections for the request path, one more for the upkeep task.
    conns: Conns,
    trips: RoundTrips,
    scripts: Scripts,
    store: Arc<dyn Store>,
    settings: ClusterSettings,
    table: RwLock<Table>,
    /// Holds this node is keeping alive: request id → the `holds` sets it sits in.
    live: Mutex<HashMap<String, Vec<String>>>,
    pending: Mutex<VecDeque<Settlement>>,
    /// Settlements being sent right now, so a stopping core can wait for them.
    sending: InFlight,
    available: AtomicBool,
    /// Reservations that timed out in a row.
    timeouts: std::sync::atomic::AtomicU32,
    last_error: Mutex<Option<String>>,
    /// This node's share of the limits while Valkey is away (`local_share` only).
    fallback: Mutex<Option<Arc<Ledger>>>,
    /// The incarnation of Valkey's data this node last saw (see `upkeep`).
    epoch: Mutex<Option<String>>,
    runtime: tokio::runtime::Handle,
    /// Itself, for settlements sent in the background.
    me: std::sync::Weak<ClusterLimiter>,
}

impl std::fmt::Debug for ClusterLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLimiter")
            .field("node", &self.settings.node_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn window(limits: &AccountLimits, now: UnixSecs) -> (i64, i64) {
    let (start, next) = limits.period().window(now);
    // Spend keys outlive their window by a day, then expire by themselves.
    let ttl = next.map_or(-1, |n| (n - now).max(1) + 86_400);
    (start, ttl)
}

impl ClusterLimiter {
    /// Connects (lazily: a node starts, fail-closed, even while Valkey is down), loads the scripts and
    /// starts the upkeep task. Must be called inside a Tokio runtime.
    pub fn start(
        settings: &ClusterSettings,
        store: Arc<dyn Store>,
    ) -> Result<Arc<ClusterLimiter>, GatewayError> {
        let bad = |e: redis::RedisError| GatewayError::Internal(format!("[cluster] url: {e}"));
        // Nagle's algorithm (redis-rs leaves it on) holds a small write back while an earlier one is
        // unacknowledged: a reservation written just after a settlement on the same connection
        // waited for the settlement's answer, on the request path.
        let info = redis::IntoConnectionInfo::into_connection_info(settings.url.as_str()).map_err(bad)?;
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        let client = redis::Client::open(info.set_tcp_settings(tcp)).map_err(bad)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_min_delay(std::time::Duration::from_millis(50))
            .set_max_delay(std::time::Duration::from_millis(200));
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| GatewayError::Internal("the cluster limiter needs a Tokio runtime".into()))?;
        let conns = Conns::new(client, config).map_err(bad)?;
        let limiter = Arc::new_cyclic(|me| ClusterLimiter {
            conns,
            trips: RoundTrips::new(),
            scripts: Scripts::new(),
            store,
            settings: settings.clone(),
            table: RwLock::new(Table::default()),
            live: Mutex::new(HashMap::new()),
            pending: Mutex::new(VecDeque::new()),
            sending: InFlight::default(),
            available: AtomicBool::new(false),
            timeouts: std::sync::atomic::AtomicU32::new(0),
            last_error: Mutex::new(Some("not connected yet".into())),
            fallback: Mutex::new(None),
            epoch: Mutex::new(None),
            runtime: runtime.clone(),
            me: me.clone(),
        });
        runtime.spawn(upkeep::run(Arc::downgrade(&limiter)));
        Ok(limiter)
    }

    fn parties(&self, key_id: &str, team_id: Option<&str>) -> Result<Vec<Party>, GatewayError> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let key = *table.keys.get(key_id).ok_or(GatewayError::Unauthorized)?;
        let mut parties = Vec::with_capacity(2);
        if key.any() {
            parties.push(Party {
                index: 0,
                prefix: scripts::account('k', key_id),
                scope: Scope::Key(key_id.to_string()),
                limits: key,
            });
        }
        if let Some((id, team)) = team_id.and_then(|t| table.teams.get(t).map(|l| (t, *l))) {
            if team.any() {
                parties.push(Party {
                    index: 1,
                    prefix: scripts::account('t', id),
                    scope: Scope::Team(id.to_string()),
                    limits: team,
                });
            }
        }
        Ok(parties)
    }

    fn is_available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    /// Marks Valkey unreachable (logged once per outage); the upkeep task probes until it is back.
    fn mark_down(&self, error: &str) {
        if self.available.swap(false, Ordering::AcqRel) {
            let mode = match self.settings.on_unavailable {
                OnUnavailable::Refuse => "metered requests are refused (503 limits_unavailable)",
                OnUnavailable::LocalShare { .. } => "this node enforces its own share of each limit",
            };
            tracing::error!(node = %self.settings.node_id, error, "cluster limits store unreachable: {mode}");
        }
        *lock(&self.last_error) = Some(error.to_string());
    }

    async fn reserve_shared(&self, r: &Reservation) -> Result<Via, GatewayError> {
        let parties = self.parties(&r.key_id, r.team_id.as_deref())?;
        if parties.is_empty() {
            return Ok(Via::Unlimited);
        }
        if !self.is_available() {
            return self.reserve_unavailable(r).await;
        }
        let minute = r.at.div_euclid(60);
        let mut invocation = self.scripts.reserve.prepare_invoke();
        invocation
            .arg(&r.request_id)
            .arg(r.hold.cost)
            .arg(r.hold.tokens)
            .arg(u64::try_from(self.settings.hold_ttl.as_millis()).unwrap_or(u64::MAX));
        for p in &parties {
            let (start, _) = window(&p.limits, r.at);
            for k in scripts::reserve_keys(&p.prefix, start, minute) {
                invocation.key(k);
            }
            let l = &p.limits;
            invocation
                .arg(
                    l.budget
                        .map_or(-1, |b| i64::try_from(b.limit).unwrap_or(i64::MAX)),
                )
                .arg(l.rpm.map_or(-1, i64::from))
                .arg(l.tpm.map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX)));
        }
        let mut conn = self.conns.here();
        // Loading an account is rare (a new window, or Valkey restarted empty); then try again (a
        // reservation loads at most its key and its team, and may redial once).
        let mut redialled = false;
        for _ in 0..4 {
            let answer =
                tokio::time::timeout(self.settings.timeout, invocation.invoke_async(&mut conn)).await;
            self.trips.reserve.increment(1);
            let v: Vec<i64> = match answer {
                Ok(Ok(v)) => {
                    self.timeouts.store(0, Ordering::Relaxed);
                    v
                }
                // This core's connection broke since its last use (Valkey restarted, say) and is
                // being replaced: once more on the new one. Safe: a hold already made under this
                // request id answers "reserved" without holding twice.
                Ok(Err(e)) if e.is_unrecoverable_error() && !redialled => {
                    redialled = true;
                    continue;
                }
                Ok(Err(e)) => {
                    self.mark_down(&e.to_string());
                    return self.reserve_unavailable(r).await;
                }
                Err(_) => {
                    let n = self.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(node = %self.settings.node_id, in_a_row = n, "a reservation timed out");
                    if n >= TIMEOUTS_BEFORE_DOWN {
                        self.mark_down(&format!(
                            "no answer within {} ms",
                            self.settings.timeout.as_millis()
                        ));
                        return self.reserve_unavailable(r).await;
                    }
                    // The script may still run; its hold then lapses, unrenewed, within hold_ttl.
                    return Err(GatewayError::LimitsUnavailable);
                }
            };
            let party = v
                .get(1)
                .and_then(|i| usize::try_from(*i).ok())
                .and_then(|i| parties.get(i));
            let to_next_minute = (60 - r.at.rem_euclid(60)) as u64;
            match (v.first(), party) {
                (Some(0), _) => {
                    let holds = parties.iter().map(|p| format!("{}:holds", p.prefix)).collect();
                    lock(&self.live).insert(r.request_id.clone(), holds);
                    return Ok(Via::Shared);
                }
                (Some(1), Some(p)) => self.load(&mut conn, p, r.at).await?,
                (Some(2), Some(p)) => {
                    return Err(Refusal::Rpm {
                        account: p.index,
                        retry_after: to_next_minute,
                    }
                    .into())
                }
                (Some(3), Some(p)) => {
                    return Err(Refusal::Tpm {
                        account: p.index,
                        retry_after: to_next_minute,
                    }
                    .into())
                }
                (Some(4), Some(p)) => {
                    let next = p.limits.period().window(r.at).1;
                    return Err(Refusal::Budget {
                        account: p.index,
                        retry_after: next.map(|n| (n - r.at).max(1) as u64),
                    }
                    .into());
                }
                _ => {
                    return Err(GatewayError::Internal(
                        "unexpected answer from the limits script".into(),
                    ))
                }
            }
        }
        Err(GatewayError::LimitsUnavailable)
    }

    /// Rebuilds an account's window spend from the store's usage rows and loads it (unless another
    /// node just did).
    async fn load(
        &self,
        conn: &mut ConnectionManager,
        party: &Party,
        now: UnixSecs,
    ) -> Result<(), GatewayError> {
        let (start, ttl) = window(&party.limits, now);
        let (store, scope) = (self.store.clone(), party.scope.clone());
        let spent = tokio::task::spawn_blocking(move || store.spend_since(&scope, start))
            .await
            .map_err(|e| GatewayError::Internal(e.to_string()))?
            .map_err(|e| {
                tracing::error!(error = %e, "cannot rebuild spend from the store");
                GatewayError::LimitsUnavailable
            })?;
        let loaded: Result<i64, _> = self
            .scripts
            .load
            .key(format!("{}:spent:{start}", party.prefix))
            .key(format!("{}:early:{start}", party.prefix))
            .arg(spent)
            .arg(ttl)
            .invoke_async(conn)
            .await;
        self.trips.load.increment(1);
        match loaded {
            Ok(1) => tracing::info!(account = %party.prefix, spent, "spend rebuilt from the store"),
            Ok(_) => {}
            Err(e) => {
                self.mark_down(&e.to_string());
                return Err(GatewayError::LimitsUnavailable);
            }
        }
        Ok(())
    }

    /// Valkey is away: refuse, or count against this node's share.
    async fn reserve_unavailable(&self, r: &Reservation) -> Result<Via, GatewayError> {
        let OnUnavailable::LocalShare { nodes } = self.settings.on_unavailable else {
            return Err(GatewayError::LimitsUnavailable);
        };
        let existing = lock(&self.fallback).clone();
        let ledger = match existing {
            Some(l) => l,
            None => {
                // Restoring reads the store's usage rows: off the async threads.
                let ledger = Arc::new(Ledger::with_share(self.store.clone(), nodes));
                let (keys, teams) = self
                    .table
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .records
                    .clone();
                let l = ledger.clone();
                let at = r.at;
                let synced = tokio::task::spawn_blocking(move || l.sync(&keys, &teams, at)).await;
                if !matches!(synced, Ok(Ok(()))) {
                    tracing::error!("fallback limits need the store, which is unreachable too");
                    return Err(GatewayError::LimitsUnavailable);
                }
                lock(&self.fallback).get_or_insert(ledger).clone()
            }
        };
        Limiter::reserve(ledger.as_ref(), r).await.map(|_| Via::Fallback)
    }

    /// An owning handle for background work that must outlive the call.
    fn clone_handle(&self) -> Option<Arc<ClusterLimiter>> {
        self.me.upgrade()
    }
}

impl Limiter for ClusterLimiter {
    fn sync(&self, keys: &[KeyRecord], teams: &[TeamRecord], now: UnixSecs) -> Result<(), StoreError> {
        let mut table = Table {
            keys: keys
                .iter()
                .map(|k| (k.id.clone(), AccountLimits::of(&k.limits)))
                .collect(),
            teams: teams
                .iter()
                .map(|t| (t.id.clone(), AccountLimits::of(&t.limits)))
                .collect(),
            records: (keys.to_vec(), teams.to_vec()),
        };
        std::mem::swap(
            &mut *self.table.write().unwrap_or_else(PoisonError::into_inner),
            &mut table,
        );
        if let Some(ledger) = lock(&self.fallback).clone() {
            ledger.sync(keys, teams, now)?;
        }
        Ok(())
    }

    fn has_budget(&self, key_id: &str, team_id: Option<&str>) -> bool {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.keys.get(key_id).is_some_and(|k| k.budget.is_some())
            || team_id
                .and_then(|t| table.teams.get(t))
                .is_some_and(|t| t.budget.is_some())
    }

    fn key_status(&self, key_id: &str, now: UnixSecs) -> Option<(Nanos, Nanos, Option<Budget>)> {
        let limits = *self
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .get(key_id)?;
        let scope = Scope::Key(key_id.to_string());
        let (start, _) = limits.period().window(now);
        let spent = self.store.spend_since(&scope, start).ok()?;
        let total = if start == 0 {
            spent
        } else {
            self.store.spend_since(&scope, 0).ok()?
        };
        Some((spent, total, limits.budget))
    }

    fn reserve<'a>(&'a self, r: &'a Reservation) -> BoxFuture<'a, Result<Via, GatewayError>> {
        Box::pin(self.reserve_shared(r))
    }

    fn settle(&self, r: &Reservation, via: Via, cost: Nanos, tokens: u64, now: UnixSecs) {
        self.finish(r, via, cost, tokens, now);
    }

    /// Spend by team name; what is left of a budget lives in Valkey, shared by every node, so no
    /// node publishes it as its own gauge.
    fn publish(&self, team_id: Option<&str>, cost: Nanos, _now: UnixSecs) {
        let name = team_id.and_then(|id| {
            let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
            table
                .records
                .1
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.name.clone())
        });
        crate::observe::metrics::spend(name.as_deref().or(team_id), cost);
    }

    fn release(&self, r: &Reservation, via: Via, now: UnixSecs) {
        if via == Via::Fallback {
            if let Some(ledger) = lock(&self.fallback).clone() {
                Limiter::release(ledger.as_ref(), r, Via::Memory, now);
            }
            return;
        }
        self.finish(r, via, 0, 0, now);
    }

    fn drain(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.sending.wait(self.settings.timeout * 4))
    }

    fn status(&self) -> LimiterStatus {
        LimiterStatus {
            mode: "cluster",
            available: self.is_available(),
            fallback: !self.is_available() && lock(&self.fallback).is_some(),
            pending_settlements: lock(&self.pending).len(),
            error: if self.is_available() {
                None
            } else {
                lock(&self.last_error).clone()
            },
        }
    }
}
