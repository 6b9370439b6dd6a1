//! Administration shared by the `moatd keys|teams|providers|usage` commands and the admin HTTP API:
//! creating, listing, revoking and rotating virtual keys; teams and their limits; sealed provider
//! credentials; usage reports. A key is shown exactly once, when created or rotated; the store keeps
//! only its HMAC.

use moat_policy::budget::{format_usd, Budget, Nanos, Period};
use moat_policy::keys::{parse_duration_secs, ModelFilter};
use moat_store::{GroupBy, KeyRecord, Limits, Scope, Store, StoreError, TeamRecord, UsageLine};
use serde::{Deserialize, Serialize};

use crate::secret::{display_prefix, new_id, new_virtual_key, ServerSecret};

/// An admin request that cannot be done, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("store: {0}")]
    Store(StoreError),
    #[error("{0}")]
    Secret(#[from] crate::secret::SecretError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => AdminError::Conflict(what),
            StoreError::NotFound(what) => AdminError::NotFound(what),
            other => AdminError::Store(other),
        }
    }
}

/// Limits as an operator writes them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// `5/day`, `50/month`, `100` (USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

impl LimitSpec {
    pub(crate) fn to_limits(&self) -> Result<Limits, AdminError> {
        let budget = match &self.budget {
            Some(text) => Some(
                text.parse::<Budget>()
                    .map_err(|e| AdminError::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        if self.rpm == Some(0) || self.tpm == Some(0) {
            return Err(AdminError::Invalid(
                "rpm and tpm must be greater than zero".into(),
            ));
        }
        Ok(Limits {
            budget_nanos: budget.map(|b| b.limit),
            budget_period: budget.map(|b| b.period.as_str().to_string()),
            rpm: self.rpm,
            tpm: self.tpm,
        })
    }
}

/// `keys create`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// Team name.
    #[serde(default)]
    pub team: Option<String>,
    #[serde(flatten)]
    pub limits: LimitSpec,
    /// Model allow-list globs.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub local_only: bool,
    /// `30d`, `12h`…
    #[serde(default)]
    pub expires: Option<String>,
}

/// A key as issued: the only time its secret is visible.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub key: String,
}

/// A key as listed (no secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub id: String,
    pub prefix: String,
    pub name: String,
    pub team: Option<String>,
    pub budget: Option<String>,
    /// Spend in the budget's current window (lifetime spend when there is no budget), USD.
    pub spend: String,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub models: Vec<String>,
    pub local_only: bool,
    pub expires_at: Option<i64>,
    pub status: &'static str,
}

fn budget_of(l: &Limits) -> Option<Budget> {
    l.budget_nanos.map(|limit| Budget {
        limit,
        period: l
            .budget_period
            .as_deref()
            .and_then(Period::parse)
            .unwrap_or(Period::Total),
    })
}

fn check_name(kind: &str, name: &str) -> Result<(), AdminError> {
    let ok = !name.trim().is_empty() && name.len() <= 128 && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{kind} name must be 1-128 printable characters"
        )))
    }
}

fn team_id_by_name(store: &dyn Store, name: &str) -> Result<String, AdminError> {
    store
        .teams()?
        .into_iter()
        .find(|t| t.name == name || t.id == name)
        .map(|t| t.id)
        .ok_or_else(|| AdminError::NotFound(format!("team {name:?}")))
}

/// A team's id from its name (or id).
pub fn team_id(store: &dyn Store, name: &str) -> Result<String, AdminError> {
    team_id_by_name(store, name)
}

/// The name of the team a key (by id, prefix, name or the whole key) belongs to, if any.
pub fn key_team(store: &dyn Store, secret: &ServerSecret, which: &str) -> Result<Option<String>, AdminError> {
    let key = find_key(store, secret, which)?;
    let Some(team_id) = key.team_id else {
        return Ok(None);
    };
    Ok(store
        .teams()?
        .into_iter()
        .find(|t| t.id == team_id)
        .map(|t| t.name))
}

/// Finds a key by id, display prefix, name (when unique) or the whole key itself: pasting a leaked
/// key is the first thing anyone does with it. A whole key is matched by its keyed hash and never
/// repeated in an error message.
fn find_key(store: &dyn Store, secret: &ServerSecret, which: &str) -> Result<KeyRecord, AdminError> {
    let which = which.trim();
    let prefix = display_prefix(which);
    let whole = which.starts_with("moat-") && which.len() > prefix.len();
    let hash = whole.then(|| secret.hash_key(which));
    let keys = store.keys()?;
    let mut hits: Vec<KeyRecord> = keys
        .into_iter()
        .filter(|k| {
            hash.is_some_and(|h| k.hash == h)
                || k.id == which
                || k.prefix == which
                || (k.name == which && k.revoked_at.is_none())
        })
        .collect();
    let shown = if whole {
        format!("key {prefix}… (the whole key given)")
    } else {
        format!("key {which:?}")
    };
    match hits.len() {
        0 => Err(AdminError::NotFound(shown)),
        1 => Ok(hits.remove(0)),
        _ => Err(AdminError::Invalid(format!(
            "{shown} matches several keys; use the key id"
        ))),
    }
}

/// What an audit record says about a new key: everything but the secret.
pub fn describe_new_key(new: &NewKey) -> serde_json::Value {
    serde_json::json!({
        "name": new.name,
        "team": new.team,
        "limits": new.limits,
        "models": new.models,
        "local_only": new.local_only,
        "expires": new.expires,
    })
}

/// Creates a key; its secret is returned once.
pub fn create_key(
    store: &dyn Store,
    secret: &ServerSecret,
    new: &NewKey,
    now: i64,
) -> Result<IssuedKey, AdminError> {
    check_name("key", &new.name)?;
    let limits = new.limits.to_limits()?;
    ModelFilter::new(&new.models).map_err(|e| AdminError::Invalid(e.to_string()))?;
    let expires_at = match &new.expires {
        Some(text) => Some(now + parse_duration_secs(text).map_err(|e| AdminError::Invalid(e.to_string()))?),
        None => None,
    };
    let team_id = match &new.team {
        Some(name) => Some(team_id_by_name(store, name)?),
        None => None,
    };
    let key = new_virtual_key()?;
    let record = KeyRecord {
        id: new_id("key")?,
        hash: secret.hash_key(&key).to_vec(),
        prefix: display_prefix(&key),
        name: new.name.clone(),
        team_id,
        limits,
        models: new
            .models
            .iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect(),
        local_only: new.local_only,
        expires_at,
        revoked_at: None,
        created_at: now,
    };
    store.insert_key(&record)?;
    Ok(IssuedKey {
        id: record.id,
        name: record.name,
        prefix: record.prefix,
        key,
    })
}

/// Revokes a key: the next request with it gets 401.
pub fn revoke_key(
    store: &dyn Store,
    secret: &ServerSecret,
    which: &str,
    now: i64,
) -> Result<String, AdminError> {
    let key = find_key(store, secret, which)?;
    if !store.revoke_key(&key.id, now)? {
        return Err(AdminError::Invalid(format!(
            "key {} is already revoked",
            key.prefix
        )));
    }
    Ok(key.id)
}

/// Replaces a key's secret; limits and spend stay with the key id.
pub fn rotate_key(store: &dyn Store, secret: &ServerSecret, which: &str) -> Result<IssuedKey, AdminError> {
    let record = find_key(store, secret, which)?;
    let key = new_virtual_key()?;
    if !store.rotate_key(&record.id, &secret.hash_key(&key), &display_prefix(&key))? {
        return Err(AdminError::Invalid(format!(
            "key {} is revoked and cannot be rotated",
            record.prefix
        )));
    }
    Ok(IssuedKey {
        id: record.id,
        name: record.name,
        prefix: display_prefix(&key),
        key,
    })
}

/// Changes a key's limits.
pub fn set_key_limits(
    store: &dyn Store,
    secret: &ServerSecret,
    which: &str,
    spec: &LimitSpec,
) -> Result<String, AdminError> {
    let key = find_key(store, secret, which)?;
    store.update_key_limits(&key.id, &spec.to_limits()?)?;
    Ok(key.id)
}

/// All keys with their spend.
pub fn list_keys(store: &dyn Store, now: i64) -> Result<Vec<KeyView>, AdminError> {
    store.flush()?;
    let teams = store.teams()?;
    let mut out = Vec::new();
    for k in store.keys()? {
        let budget = budget_of(&k.limits);
        let (start, _) = budget.map_or(Period::Total, |b| b.period).window(now);
        let spend = store.spend_since(&Scope::Key(k.id.clone()), start)?;
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        out.push(KeyView {
            team: k
                .team_id
                .as_ref()
                .and_then(|id| teams.iter().find(|t| &t.id == id))
                .map(|t| t.name.clone()),
            id: k.id,
            prefix: k.prefix,
            name: k.name,
            budget: budget.map(|b| b.to_string()),
            spend: format!("${}", format_usd(spend)),
            rpm: k.limits.rpm,
            tpm: k.limits.tpm,
            models: k.models,
            local_only: k.local_only,
            expires_at: k.expires_at,
            status,
        });
    }
    Ok(out)
}

/// `teams create`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
    #[serde(flatten)]
    pub limits: LimitSpec,
}

/// A team as listed.
#[derive(Debug, Clone, Serialize)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub budget: Option<String>,
    pub spend: String,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
}

pub fn create_team(store: &dyn Store, new: &NewTeam, now: i64) -> Result<TeamRecord, AdminError> {
    check_name("team", &new.name)?;
    let team = TeamRecord {
        id: new_id("team")?,
        name: new.name.clone(),
        limits: new.limits.to_limits()?,
        created_at: now,
    };
    store.insert_team(&team)?;
    Ok(team)
}

pub fn set_team_limits(store: &dyn Store, which: &str, spec: &LimitSpec) -> Result<(), AdminError> {
    let id = team_id_by_name(store, which)?;
    Ok(store.update_team_limits(&id, &spec.to_limits()?)?)
}

pub fn list_teams(store: &dyn Store, now: i64) -> Result<Vec<TeamView>, AdminError> {
    store.flush()?;
    let mut out = Vec::new();
    for t in store.teams()? {
        let budget = budget_of(&t.limits);
        let (start, _) = budget.map_or(Period::Total, |b| b.period).window(now);
        let spend: Nanos = store.spend_since(&Scope::Team(t.id.clone()), start)?;
        out.push(TeamView {
            id: t.id,
            name: t.name,
            budget: budget.map(|b| b.to_string()),
            spend: format!("${}", format_usd(spend)),
            rpm: t.limits.rpm,
            tpm: t.limits.tpm,
        });
    }
    Ok(out)
}

/// Seals and stores a provider credential.
pub fn set_provider_key(
    store: &dyn Store,
    secret: &ServerSecret,
    provider: &str,
    key: &str,
    now: i64,
) -> Result<(), AdminError> {
    let key = key.trim();
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "the provider key is empty or has control characters".into(),
        ));
    }
    let (nonce, ct) = secret.seal(provider, key)?;
    Ok(store.put_provider_secret(provider, &nonce, &ct, now)?)
}

/// Seals and stores a team's own credential for a provider (bring your own key); returns the
/// team's id. The team's requests to that provider use it from their next request on.
pub fn set_team_provider_key(
    store: &dyn Store,
    secret: &ServerSecret,
    team: &str,
    provider: &str,
    key: &str,
    now: i64,
) -> Result<String, AdminError> {
    let team_id = team_id_by_name(store, team)?;
    let key = key.trim();
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "the provider key is empty or has control characters".into(),
        ));
    }
    let label = crate::cache::team_keys::sealing_label(&team_id, provider);
    let (nonce, ciphertext) = secret.seal(&label, key)?;
    store.put_team_provider_secret(
        &moat_store::TeamSealedSecret {
            team_id: team_id.clone(),
            provider: provider.to_string(),
            nonce,
            ciphertext,
        },
        now,
    )?;
    Ok(team_id)
}

/// Removes a team's own credential for a provider (its requests go back to the shared key).
pub fn remove_team_provider_key(store: &dyn Store, team: &str, provider: &str) -> Result<String, AdminError> {
    let team_id = team_id_by_name(store, team)?;
    if !store.delete_team_provider_secret(&team_id, provider)? {
        return Err(AdminError::NotFound(format!(
            "a key of team {team} for provider {provider}"
        )));
    }
    Ok(team_id)
}

/// Parses `--by`.
pub fn group_by(text: &str) -> Result<GroupBy, AdminError> {
    match text {
        "key" => Ok(GroupBy::Key),
        "team" => Ok(GroupBy::Team),
        "model" => Ok(GroupBy::Model),
        other => Err(AdminError::Invalid(format!(
            "--by {other:?}: use key, team or model"
        ))),
    }
}

/// Parses `--since YYYY-MM-DD` (UTC midnight).
pub fn parse_date(text: &str) -> Result<i64, AdminError> {
    let bad = || AdminError::Invalid(format!("date {text:?}: use YYYY-MM-DD"));
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}

/// A usage report line with dollars instead of nano-dollars.
#[derive(Debug, Clone, Serialize)]
pub struct UsageView {
    pub group: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: String,
}

pub fn usage(store: &dyn Store, by: GroupBy, since: i64) -> Result<Vec<UsageView>, AdminError> {
    store.flush()?;
    Ok(store
        .usage_report(by, since)?
        .into_iter()
        .map(|l: UsageLine| UsageView {
            group: l.group,
            requests: l.requests,
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.completion_tokens,
            cost_usd: format_usd(l.cost_nanos),
        })
        .collect())
}

pub mod views;

#[cfg(test)]
mod tests;
