//! Budget and rate arithmetic: reservations that make overspending impossible.
//!
//! Money is counted in nano-dollars ([`Nanos`], 1e-9 USD) so sums of tiny per-token prices stay exact.
//! Before a request is forwarded, its *maximum* cost and tokens are reserved against every account that
//! applies (the key, its team); the reservation succeeds on all of them or on none. When the answer's
//! usage arrives, the hold is released and the actual cost is added to the spend. Because the check and
//! the hold happen in one step, concurrent requests cannot all pass a check that only one of them fits:
//! the spend can exceed a limit only by what a request costs beyond its own estimate.
//!
//! Windows are calendar-aligned in UTC: a daily budget resets at midnight, a monthly one on the 1st;
//! rate limits count per clock minute.

use std::fmt;

/// Nano-dollars (1e-9 USD).
pub type Nanos = u64;

/// Nano-dollars per dollar.
pub const NANOS_PER_USD: u64 = 1_000_000_000;

/// Seconds since the Unix epoch, UTC.
pub type UnixSecs = i64;

/// How often a budget resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Month,
    /// Never resets: a lifetime cap.
    Total,
}

impl Period {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" | "daily" => Some(Period::Day),
            "month" | "monthly" => Some(Period::Month),
            "total" => Some(Period::Total),
            _ => None,
        }
    }

    /// Start of the window containing `now` and the start of the next one (`None` for [`Period::Total`]).
    pub fn window(self, now: UnixSecs) -> (UnixSecs, Option<UnixSecs>) {
        match self {
            Period::Total => (0, None),
            Period::Day => {
                let start = now.div_euclid(86_400) * 86_400;
                (start, Some(start + 86_400))
            }
            Period::Month => month_window(now),
        }
    }
}

fn month_window(now: UnixSecs) -> (UnixSecs, Option<UnixSecs>) {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(now) else {
        return (now, None);
    };
    let first = |year: i32, month: time::Month| {
        time::Date::from_calendar_date(year, month, 1)
            .ok()
            .map(|d| d.midnight().assume_utc().unix_timestamp())
    };
    let start = first(t.year(), t.month()).unwrap_or(now);
    let (ny, nm) = match t.month() {
        time::Month::December => (t.year() + 1, time::Month::January),
        m => (t.year(), m.next()),
    };
    (start, first(ny, nm))
}

/// A spend limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: Nanos,
    pub period: Period,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usd = format_usd(self.limit);
        match self.period {
            Period::Total => write!(f, "${usd}"),
            p => write!(f, "${usd}/{}", p.as_str()),
        }
    }
}

/// Formats nano-dollars as dollars without float rounding surprises (trailing zeros trimmed).
pub fn format_usd(n: Nanos) -> String {
    let whole = n / NANOS_PER_USD;
    let frac = n % NANOS_PER_USD;
    if frac == 0 {
        return whole.to_string();
    }
    let s = format!("{whole}.{frac:09}");
    s.trim_end_matches('0').to_string()
}

/// Dollars (from a float, e.g. OpenRouter's `usage.cost`) to nano-dollars, rounding up so that
/// spend is never under-counted. Negative, NaN and infinite amounts count as zero.
pub fn usd_to_nanos(usd: f64) -> Nanos {
    if !usd.is_finite() || usd <= 0.0 {
        return 0;
    }
    let n = (usd * NANOS_PER_USD as f64).ceil();
    if n >= u64::MAX as f64 {
        u64::MAX
    } else {
        n as u64
    }
}

/// Why a `--budget` text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("budget {0:?}: expected an amount in USD, optionally per day or month: 5/day, 50/month, 100")]
pub struct BudgetParseError(pub String);

impl std::str::FromStr for Budget {
    type Err = BudgetParseError;

    /// `5/day`, `50/month`, `100` (lifetime), `0.25/day`; a leading `$` is allowed.
    fn from_str(text: &str) -> Result<Budget, BudgetParseError> {
        let bad = || BudgetParseError(text.to_string());
        let t = text.trim();
        let (amount, period) = match t.split_once('/') {
            Some((a, p)) => (
                a,
                Period::parse(p.trim())
                    .filter(|p| *p != Period::Total)
                    .ok_or_else(bad)?,
            ),
            None => (t, Period::Total),
        };
        let amount = amount.trim().trim_start_matches('$');
        let limit = parse_usd(amount).ok_or_else(bad)?;
        Ok(Budget { limit, period })
    }
}

/// Parses a decimal dollar amount exactly (no float): at most 9 decimal places.
pub fn parse_usd(s: &str) -> Option<Nanos> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_n: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    whole.checked_mul(NANOS_PER_USD)?.checked_add(frac_n)
}

/// One spending account (a key or a team): its limits and what it has used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    pub budget: Option<Budget>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    /// Start of the budget window that `spent` belongs to.
    window_start: UnixSecs,
    /// Settled spend in the current budget window.
    spent: Nanos,
    /// Outstanding reservations (money).
    held: Nanos,
    /// Lifetime settled spend, for reports.
    total_spent: Nanos,
    /// Clock minute that the rate counters belong to.
    minute: i64,
    requests_this_minute: u32,
    /// Tokens settled plus tokens held in this minute.
    tokens_this_minute: u64,
}

/// What a request reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hold {
    pub cost: Nanos,
    pub tokens: u64,
}

/// Why a reservation was refused; the gateway turns these into 402 / 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The budget of account number `account` (index into the slice given) would be exceeded.
    Budget {
        account: usize,
        retry_after: Option<u64>,
    },
    /// Requests per minute.
    Rpm { account: usize, retry_after: u64 },
    /// Tokens per minute.
    Tpm { account: usize, retry_after: u64 },
}

impl Account {
    /// An account with these limits and nothing used.
    pub fn new(budget: Option<Budget>, rpm: Option<u32>, tpm: Option<u64>) -> Account {
        Account {
            budget,
            rpm,
            tpm,
            ..Account::default()
        }
    }

    /// Restores settled usage (e.g. at start, from the store): spend in the current window, lifetime
    /// spend, and the current minute's requests and tokens.
    pub fn restore(
        &mut self,
        now: UnixSecs,
        window_spent: Nanos,
        total_spent: Nanos,
        minute_requests: u32,
        minute_tokens: u64,
    ) {
        self.roll(now);
        self.spent = window_spent;
        self.total_spent = total_spent;
        self.requests_this_minute = minute_requests;
        self.tokens_this_minute = minute_tokens;
    }

    /// Changes limits, keeping usage.
    pub fn set_limits(&mut self, budget: Option<Budget>, rpm: Option<u32>, tpm: Option<u64>) {
        self.budget = budget;
        self.rpm = rpm;
        self.tpm = tpm;
    }

    /// Settled spend in the current budget window.
    pub fn spent(&self, now: UnixSecs) -> Nanos {
        let (start, _) = self.period().window(now);
        if start == self.window_start {
            self.spent
        } else {
            0
        }
    }

    /// Lifetime settled spend.
    pub fn total_spent(&self) -> Nanos {
        self.total_spent
    }

    /// Outstanding holds.
    pub fn held(&self) -> Nanos {
        self.held
    }

    fn period(&self) -> Period {
        self.budget.map_or(Period::Total, |b| b.period)
    }

    /// Moves the counters into the windows that contain `now`.
    fn roll(&mut self, now: UnixSecs) {
        let (start, _) = self.period().window(now);
        if start != self.window_start {
            self.window_start = start;
            self.spent = 0;
        }
        let minute = now.div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.requests_this_minute = 0;
            self.tokens_this_minute = 0;
        }
    }

    fn check(&mut self, index: usize, hold: Hold, now: UnixSecs) -> Result<(), Refusal> {
        self.roll(now);
        let to_next_minute = (60 - now.rem_euclid(60)) as u64;
        if let Some(rpm) = self.rpm {
            if self.requests_this_minute >= rpm {
                return Err(Refusal::Rpm {
                    account: index,
                    retry_after: to_next_minute,
                });
            }
        }
        if let Some(tpm) = self.tpm {
            if self.tokens_this_minute.saturating_add(hold.tokens) > tpm {
                return Err(Refusal::Tpm {
                    account: index,
                    retry_after: to_next_minute,
                });
            }
        }
        if let Some(budget) = self.budget {
            let committed = self.spent.saturating_add(self.held).saturating_add(hold.cost);
            if committed > budget.limit {
                let (_, next) = budget.period.window(now);
                let retry_after = next.map(|n| (n - now).max(1) as u64);
                return Err(Refusal::Budget {
                    account: index,
                    retry_after,
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, hold: Hold) {
        self.held = self.held.saturating_add(hold.cost);
        self.requests_this_minute = self.requests_this_minute.saturating_add(1);
        self.tokens_this_minute = self.tokens_this_minute.saturating_add(hold.tokens);
    }
}

/// Reserves `hold` on every account, or on none: all are checked before any is changed.
pub fn reserve(accounts: &mut [&mut Account], hold: Hold, now: UnixSecs) -> Result<(), Refusal> {
    for (i, account) in accounts.iter_mut().enumerate() {
        account.check(i, hold, now)?;
    }
    for account in accounts.iter_mut() {
        account.apply(hold);
    }
    Ok(())
}

/// Settles a reservation: drops its hold and counts what was actually used. `actual_tokens` replaces
/// the held token estimate in this minute's count.
pub fn settle(
    accounts: &mut [&mut Account],
    hold: Hold,
    actual_cost: Nanos,
    actual_tokens: u64,
    now: UnixSecs,
) {
    for account in accounts.iter_mut() {
        account.roll(now);
        account.held = account.held.saturating_sub(hold.cost);
        account.spent = account.spent.saturating_add(actual_cost);
        account.total_spent = account.total_spent.saturating_add(actual_cost);
        account.tokens_this_minute = account
            .tokens_this_minute
            .saturating_sub(hold.tokens)
            .saturating_add(actual_tokens);
    }
}

/// Releases a reservation whose request produced nothing billable (it failed before an answer).
pub fn release(accounts: &mut [&mut Account], hold: Hold, now: UnixSecs) {
    settle(accounts, hold, 0, 0, now);
}

#[cfg(test)]
mod tests;
