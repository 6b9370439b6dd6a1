//! The ledger: every key's and team's budget and rate counters, in memory, guarded by one lock, so a
//! reservation against several accounts is a single atomic step (see `moat_policy::budget`). The
//! store is the durable record: settled usage is written there (batched, idempotent by request id),
//! and an account's counters are restored from it when the gateway starts or first sees the account.
//!
//! This is the single-node [`Limiter`]. A cluster node uses one too, as its fallback while the shared
//! counters are unreachable: then every limit is divided by the number of nodes (`share`), so the
//! nodes together stay within it without talking to each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;
use moat_policy::budget::{self, Account, Budget, Nanos, Period, UnixSecs};
use moat_store::{KeyRecord, Limits, Scope, Store, StoreError, TeamRecord};

use crate::limits::{Limiter, LimiterStatus, Reservation, Via};
pub use crate::meter::{Meter, Payer, Settled};
use crate::GatewayError;

/// Seconds since the epoch.
pub fn now() -> UnixSecs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn limits_to_account(l: &Limits) -> (Option<Budget>, Option<u32>, Option<u64>) {
    let budget = l.budget_nanos.map(|limit| Budget {
        limit,
        period: l
            .budget_period
            .as_deref()
            .and_then(Period::parse)
            .unwrap_or(Period::Total),
    });
    (budget, l.rpm, l.tpm)
}

#[derive(Default)]
struct Accounts {
    keys: HashMap<String, Account>,
    teams: HashMap<String, Account>,
    /// Team names by id, for the `team` label of the spend metrics.
    team_names: HashMap<String, String>,
}

/// All accounts.
pub struct Ledger {
    store: Arc<dyn Store>,
    accounts: Mutex<Accounts>,
    /// This node's share of every limit: 1 alone, N as one of N cluster nodes in fallback.
    share: u32,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

/// One node's part of a limit: what is left of the budget (after `spent`) divided among `share` nodes;
/// rates divided likewise, rounded down so the nodes together never exceed the limit.
fn shared(
    (budget, rpm, tpm): (Option<Budget>, Option<u32>, Option<u64>),
    spent: Nanos,
    share: u32,
) -> (Option<Budget>, Option<u32>, Option<u64>) {
    if share <= 1 {
        return (budget, rpm, tpm);
    }
    let budget = budget.map(|b| Budget {
        limit: spent.saturating_add(b.limit.saturating_sub(spent) / u64::from(share)),
        period: b.period,
    });
    (budget, rpm.map(|r| r / share), tpm.map(|t| t / u64::from(share)))
}

/// Restores an account's counters from the store's usage rows.
fn restored(
    store: &dyn Store,
    scope: &Scope,
    limits: &Limits,
    now: UnixSecs,
    share: u32,
) -> Result<Account, StoreError> {
    let (budget, rpm, tpm) = limits_to_account(limits);
    let mut account = Account::new(budget, rpm, tpm);
    let (window_start, _) = budget.map_or(Period::Total, |b| b.period).window(now);
    let window = store.spend_since(scope, window_start)?;
    let total = if window_start == 0 {
        window
    } else {
        store.spend_since(scope, 0)?
    };
    let (requests, tokens) = store.activity_since(scope, now - now.rem_euclid(60))?;
    account.restore(now, window, total, requests, tokens);
    let (b, r, t) = shared((budget, rpm, tpm), window, share);
    account.set_limits(b, r, t);
    Ok(account)
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>) -> Ledger {
        Ledger::with_share(store, 1)
    }

    /// A ledger enforcing `1/share` of every limit (see the module's note on fallback).
    pub fn with_share(store: Arc<dyn Store>, share: u32) -> Ledger {
        Ledger {
            store,
            accounts: Mutex::new(Accounts::default()),
            share: share.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Accounts> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings accounts in line with the store's keys and teams: new ones are restored from usage,
    /// existing ones get their (possibly changed) limits and keep their counters.
    pub fn sync(&self, keys: &[KeyRecord], teams: &[TeamRecord], now: UnixSecs) -> Result<(), StoreError> {
        let known: (Vec<String>, Vec<String>) = {
            let a = self.lock();
            (
                a.keys.keys().cloned().collect(),
                a.teams.keys().cloned().collect(),
            )
        };
        // Restoring reads the store; do it outside the lock so requests keep flowing.
        let mut new_keys = Vec::new();
        for k in keys.iter().filter(|k| !known.0.contains(&k.id)) {
            new_keys.push((
                k.id.clone(),
                restored(
                    self.store.as_ref(),
                    &Scope::Key(k.id.clone()),
                    &k.limits,
                    now,
                    self.share,
                )?,
            ));
        }
        let mut new_teams = Vec::new();
        for t in teams.iter().filter(|t| !known.1.contains(&t.id)) {
            new_teams.push((
                t.id.clone(),
                restored(
                    self.store.as_ref(),
                    &Scope::Team(t.id.clone()),
                    &t.limits,
                    now,
                    self.share,
                )?,
            ));
        }
        let mut a = self.lock();
        for (id, account) in new_keys {
            a.keys.entry(id).or_insert(account);
        }
        for (id, account) in new_teams {
            a.teams.entry(id).or_insert(account);
        }
        for k in keys {
            if let Some(acc) = a.keys.get_mut(&k.id) {
                let (b, r, t) = shared(limits_to_account(&k.limits), acc.spent(now), self.share);
                acc.set_limits(b, r, t);
            }
        }
        for t in teams {
            a.team_names.insert(t.id.clone(), t.name.clone());
            if let Some(acc) = a.teams.get_mut(&t.id) {
                let (b, r, tp) = shared(limits_to_account(&t.limits), acc.spent(now), self.share);
                acc.set_limits(b, r, tp);
                // A team's budget gauge is there from the start, not only after its first request.
                if let Some(b) = acc.budget {
                    crate::observe::metrics::budget_remaining(
                        Some(&t.name),
                        b.limit.saturating_sub(acc.spent(now)),
                    );
                }
            }
        }
        Ok(())
    }

    fn with_accounts<R>(
        &self,
        key_id: &str,
        team_id: Option<&str>,
        f: impl FnOnce(&mut [&mut Account]) -> R,
    ) -> Option<R> {
        let mut guard = self.lock();
        let Accounts { keys, teams, .. } = &mut *guard;
        let key = keys.get_mut(key_id)?;
        match team_id.and_then(|t| teams.get_mut(t)) {
            Some(team) => Some(f(&mut [key, team])),
            None => Some(f(&mut [key])),
        }
    }
}

impl Limiter for Ledger {
    fn sync(&self, keys: &[KeyRecord], teams: &[TeamRecord], now: UnixSecs) -> Result<(), StoreError> {
        Ledger::sync(self, keys, teams, now)
    }

    fn has_budget(&self, key_id: &str, team_id: Option<&str>) -> bool {
        let a = self.lock();
        a.keys.get(key_id).is_some_and(|k| k.budget.is_some())
            || team_id
                .and_then(|t| a.teams.get(t))
                .is_some_and(|t| t.budget.is_some())
    }

    fn key_status(&self, key_id: &str, now: UnixSecs) -> Option<(Nanos, Nanos, Option<Budget>)> {
        let a = self.lock();
        a.keys
            .get(key_id)
            .map(|k| (k.spent(now), k.total_spent(), k.budget))
    }

    fn reserve<'a>(&'a self, r: &'a Reservation) -> BoxFuture<'a, Result<Via, GatewayError>> {
        let result = self
            .with_accounts(&r.key_id, r.team_id.as_deref(), |accounts| {
                budget::reserve(accounts, r.hold, r.at)
            })
            .ok_or(GatewayError::Unauthorized)
            .and_then(|res| res.map(|()| Via::Memory).map_err(GatewayError::from));
        Box::pin(std::future::ready(result))
    }

    fn settle(&self, r: &Reservation, _via: Via, cost: Nanos, tokens: u64, now: UnixSecs) {
        self.with_accounts(&r.key_id, r.team_id.as_deref(), |a| {
            budget::settle(a, r.hold, cost, tokens, now)
        });
    }

    fn release(&self, r: &Reservation, _via: Via, now: UnixSecs) {
        self.with_accounts(&r.key_id, r.team_id.as_deref(), |a| {
            budget::release(a, r.hold, now)
        });
    }

    /// Publishes a settlement's spend, and what is left of the team's budget, as metrics.
    fn publish(&self, team_id: Option<&str>, cost: Nanos, now: UnixSecs) {
        let (name, remaining) = {
            let a = self.lock();
            let name = team_id.and_then(|t| a.team_names.get(t).cloned());
            let remaining = team_id
                .and_then(|t| a.teams.get(t))
                .and_then(|acc| acc.budget.map(|b| b.limit.saturating_sub(acc.spent(now))));
            (name, remaining)
        };
        // A team unknown by name (created after the last sync) is labelled by its id.
        let label = name.as_deref().or(team_id);
        crate::observe::metrics::spend(label, cost);
        if let Some(left) = remaining {
            crate::observe::metrics::budget_remaining(label, left);
        }
    }

    fn status(&self) -> LimiterStatus {
        LimiterStatus {
            mode: "memory",
            available: true,
            fallback: false,
            pending_settlements: 0,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_share_is_its_part_of_what_is_left_rounded_down() {
        let budget = Some(Budget {
            limit: 1_000,
            period: Period::Day,
        });
        let (b, r, t) = shared((budget, Some(5), Some(1_001)), 400, 2);
        assert_eq!(b.map(|b| b.limit), Some(400 + 300), "half of the $600 left");
        assert_eq!((r, t), (Some(2), Some(500)));
        // Together the shares never exceed the limit.
        for n in 1..10u32 {
            for spent in [0u64, 1, 999, 1_000, 5_000] {
                let (b, r, _) = shared((budget, Some(7), None), spent, n);
                let share = b.map(|b| b.limit - spent.min(b.limit)).unwrap_or(0);
                assert!(spent + share * u64::from(n) <= 1_000u64.max(spent));
                assert!(r.unwrap_or(0) * n <= 7);
            }
        }
        assert_eq!(
            shared((budget, None, None), 0, 1),
            (budget, None, None),
            "one node: unchanged"
        );
    }
}
