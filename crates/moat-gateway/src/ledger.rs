//! The ledger: every key's and team's budget and rate counters, in memory, guarded by one lock, so a
//! reservation against several accounts is a single atomic step (see `moat_policy::budget`). The
//! store is the durable record: settled usage is written there (batched, idempotent by request id),
//! and an account's counters are restored from it when the gateway starts or first sees the account.
//!
//! A [`Meter`] follows each request: it holds the reservation and, when the answer's usage is known,
//! settles it and writes the usage row. Dropped without settling (the request failed, or the client
//! left before an answer), it releases the hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use moat_policy::budget::{self, Account, Budget, Hold, Nanos, Period, UnixSecs};
use moat_policy::pricing::{actual_cost, Price};
use moat_store::{KeyRecord, Limits, Scope, Store, StoreError, TeamRecord, UsageRow};
use moat_wire::openai::Usage;

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
}

/// All accounts.
pub struct Ledger {
    store: Arc<dyn Store>,
    accounts: Mutex<Accounts>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

/// Restores an account's counters from the store's usage rows.
fn restored(store: &dyn Store, scope: &Scope, limits: &Limits, now: UnixSecs) -> Result<Account, StoreError> {
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
    Ok(account)
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>) -> Ledger {
        Ledger {
            store,
            accounts: Mutex::new(Accounts::default()),
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
                restored(self.store.as_ref(), &Scope::Key(k.id.clone()), &k.limits, now)?,
            ));
        }
        let mut new_teams = Vec::new();
        for t in teams.iter().filter(|t| !known.1.contains(&t.id)) {
            new_teams.push((
                t.id.clone(),
                restored(self.store.as_ref(), &Scope::Team(t.id.clone()), &t.limits, now)?,
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
                let (b, r, t) = limits_to_account(&k.limits);
                acc.set_limits(b, r, t);
            }
        }
        for t in teams {
            if let Some(acc) = a.teams.get_mut(&t.id) {
                let (b, r, tp) = limits_to_account(&t.limits);
                acc.set_limits(b, r, tp);
            }
        }
        Ok(())
    }

    /// True when the key or its team has a spend limit (so prices must be known).
    pub fn has_budget(&self, key_id: &str, team_id: Option<&str>) -> bool {
        let a = self.lock();
        a.keys.get(key_id).is_some_and(|k| k.budget.is_some())
            || team_id
                .and_then(|t| a.teams.get(t))
                .is_some_and(|t| t.budget.is_some())
    }

    /// (spent in window, lifetime spend, budget) for reports such as `/api/v1/key`.
    pub fn key_status(&self, key_id: &str, now: UnixSecs) -> Option<(Nanos, Nanos, Option<Budget>)> {
        let a = self.lock();
        a.keys
            .get(key_id)
            .map(|k| (k.spent(now), k.total_spent(), k.budget))
    }

    fn with_accounts<R>(
        &self,
        key_id: &str,
        team_id: Option<&str>,
        f: impl FnOnce(&mut [&mut Account]) -> R,
    ) -> Option<R> {
        let mut guard = self.lock();
        let Accounts { keys, teams } = &mut *guard;
        let key = keys.get_mut(key_id)?;
        match team_id.and_then(|t| teams.get_mut(t)) {
            Some(team) => Some(f(&mut [key, team])),
            None => Some(f(&mut [key])),
        }
    }
}

/// Who is paying for a request, for the usage row and the reservation.
#[derive(Debug, Clone)]
pub struct Payer {
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    /// Whether accounts in the ledger apply (virtual keys) or the request is only recorded (static keys).
    pub metered: bool,
}

/// Follows one request from reservation to settlement.
pub struct Meter {
    ledger: Arc<Ledger>,
    payer: Payer,
    request_id: String,
    hold: Hold,
    reserved: bool,
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
    /// Reserves `hold` for a metered payer (refusing with 402/429 when it does not fit), or just
    /// prepares to record usage for an unmetered one.
    pub fn reserve(
        ledger: &Arc<Ledger>,
        payer: Payer,
        request_id: String,
        hold: Hold,
        now: UnixSecs,
    ) -> Result<Meter, GatewayError> {
        let mut meter = Meter {
            ledger: ledger.clone(),
            payer,
            request_id,
            hold,
            reserved: false,
            done: false,
        };
        if meter.payer.metered {
            if let Some(key_id) = meter.payer.key_id.clone() {
                let team = meter.payer.team_id.clone();
                let result = ledger
                    .with_accounts(&key_id, team.as_deref(), |accounts| {
                        budget::reserve(accounts, hold, now)
                    })
                    .ok_or(GatewayError::Unauthorized)?;
                match result {
                    Ok(()) => {
                        meter.reserved = true;
                        holds_open(1.0);
                    }
                    Err(refusal) => {
                        meter.done = true;
                        return Err(refusal.into());
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
        if self.reserved {
            holds_open(-1.0);
            if let Some(key_id) = self.payer.key_id.clone() {
                let team = self.payer.team_id.clone();
                let hold = self.hold;
                self.ledger.with_accounts(&key_id, team.as_deref(), |a| {
                    budget::settle(a, hold, cost, tokens, now)
                });
            }
        }
        self.done = true;
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
        if let Err(e) = self.ledger.store.record_usage(row) {
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
        if self.done || !self.reserved {
            return;
        }
        holds_open(-1.0);
        if let Some(key_id) = self.payer.key_id.clone() {
            let team = self.payer.team_id.clone();
            let hold = self.hold;
            self.ledger
                .with_accounts(&key_id, team.as_deref(), |a| budget::release(a, hold, now()));
        }
    }
}
