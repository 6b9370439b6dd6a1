//! Who is calling: static keys from the config, virtual keys from the store, or nobody (allowed only
//! on an open loopback gateway). Virtual keys are looked up by their HMAC in an in-memory table that
//! is reloaded whenever the store's `keys_version` moves, which any process changing keys bumps — so
//! `moatd keys revoke` in another terminal refuses the very next request.
//!
//! With a shared store (PostgreSQL) the version is kept current by change notifications plus polling
//! (see `moat_store`), and a key this node has never seen makes it ask the database directly (at most
//! every `FRESH_CHECK`), so a key created through another node works here at once. If the store
//! cannot be read, the table already loaded keeps serving: known keys keep working.
//!
//! Unknown, revoked and expired keys all get the same 401: the answer must not tell an attacker which
//! keys exist.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use http::HeaderMap;
use moat_policy::keys::ModelFilter;
use moat_store::Store;

use crate::auth::{presented_key, StaticKeys};
use crate::ledger::Payer;
use crate::limits::Limiter;
use crate::secret::ServerSecret;
use crate::GatewayError;

/// A virtual key as the request path needs it.
#[derive(Debug)]
pub struct KeyEntry {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub team_id: Option<String>,
    /// The team's name, for metric labels and spans (ids mean nothing on a dashboard).
    pub team_name: Option<String>,
    pub models: ModelFilter,
    pub local_only: bool,
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// No key needed (open loopback gateway); usage is recorded without a key.
    Open,
    /// A static key from `[server] api_keys`: unlimited.
    Static,
    Virtual(Arc<KeyEntry>),
}

impl Principal {
    pub fn payer(&self) -> Payer {
        match self {
            Principal::Open | Principal::Static => Payer {
                key_id: None,
                team_id: None,
                metered: false,
            },
            Principal::Virtual(k) => Payer {
                key_id: Some(k.id.clone()),
                team_id: k.team_id.clone(),
                metered: true,
            },
        }
    }
}

#[derive(Default)]
struct Table {
    version: i64,
    by_hash: HashMap<[u8; 32], Arc<KeyEntry>>,
}

/// The gateway's view of keys.
pub struct Identities {
    store: Arc<dyn Store>,
    secret: ServerSecret,
    statics: StaticKeys,
    admins: StaticKeys,
    open_allowed: bool,
    limits: Arc<dyn Limiter>,
    table: RwLock<Table>,
    /// When an open gateway last looked for new keys.
    last_check: std::sync::Mutex<Option<std::time::Instant>>,
    /// When an unknown key last made us read the version from the database itself.
    last_fresh: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often an unknown key may send this node to the database: bounds what a flood of made-up keys
/// costs the store, while a key created a moment ago on another node is still found at once.
const FRESH_CHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// How often an open gateway checks whether keys have been created (which closes it).
const OPEN_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("statics", &self.statics)
            .finish()
    }
}

impl Identities {
    pub fn new(
        store: Arc<dyn Store>,
        secret: ServerSecret,
        api_keys: &[String],
        admin_keys: &[String],
        open_allowed: bool,
        limits: Arc<dyn Limiter>,
    ) -> Result<Identities, GatewayError> {
        let ids = Identities {
            store,
            secret,
            statics: StaticKeys::new(api_keys),
            admins: StaticKeys::new(admin_keys),
            open_allowed,
            limits,
            table: RwLock::new(Table {
                version: -1,
                ..Table::default()
            }),
            last_check: std::sync::Mutex::new(None),
            last_fresh: std::sync::Mutex::new(None),
        };
        ids.refresh(crate::ledger::now())?;
        Ok(ids)
    }

    pub fn secret(&self) -> &ServerSecret {
        &self.secret
    }

    /// Reloads keys and teams if anything changed them since the last look. When the store cannot be
    /// read, a table loaded before keeps serving (and the failure is logged); only a gateway that
    /// never loaded one fails.
    pub fn refresh(&self, now: i64) -> Result<(), GatewayError> {
        match self.store.keys_version() {
            Ok(version) => self.load(version, now),
            Err(e) => self.degrade(e),
        }
    }

    fn degrade(&self, e: moat_store::StoreError) -> Result<(), GatewayError> {
        if self.keys_version() < 0 {
            return Err(e.into());
        }
        tracing::warn!(error = %e, "key store unreadable: serving the keys already loaded");
        Ok(())
    }

    fn load(&self, version: i64, now: i64) -> Result<(), GatewayError> {
        if self.table.read().map(|t| t.version == version).unwrap_or(false) {
            return Ok(());
        }
        let loaded = self
            .store
            .keys()
            .and_then(|k| Ok((k, self.store.teams()?)))
            .and_then(|(keys, teams)| {
                self.limits.sync(&keys, &teams, now)?;
                Ok((keys, teams))
            });
        let (keys, teams) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => return self.degrade(e),
        };
        let mut by_hash = HashMap::with_capacity(keys.len());
        for k in keys {
            let Ok(hash) = <[u8; 32]>::try_from(k.hash.as_slice()) else {
                continue;
            };
            // Patterns are validated before they are stored; one that fails here was edited by hand,
            // and a key whose allow-list cannot be enforced is left out rather than let through.
            let models = match ModelFilter::new(&k.models) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(key = %k.prefix, error = %e, "key skipped: bad model pattern");
                    continue;
                }
            };
            let revoked = k.revoked_at.is_some();
            let team_name = k
                .team_id
                .as_ref()
                .and_then(|id| teams.iter().find(|t| &t.id == id))
                .map(|t| t.name.clone());
            by_hash.insert(
                hash,
                Arc::new(KeyEntry {
                    id: k.id,
                    name: k.name,
                    prefix: k.prefix,
                    team_id: k.team_id,
                    team_name,
                    models,
                    local_only: k.local_only,
                    expires_at: k.expires_at,
                    revoked,
                }),
            );
        }
        if let Ok(mut t) = self.table.write() {
            *t = Table { version, by_hash };
        }
        Ok(())
    }

    /// Authenticates a request.
    pub fn authenticate(&self, headers: &HeaderMap, now: i64) -> Result<Principal, GatewayError> {
        let presented = presented_key(headers);
        if presented.is_some_and(|k| self.statics.matches(k)) {
            return Ok(Principal::Static);
        }
        let virtual_key = presented.filter(|k| k.starts_with("moat-"));
        if virtual_key.is_some() {
            // A virtual key is checked against the store's current state, so a revocation made by
            // another process refuses the very next request.
            self.refresh(now)?;
        } else if self.open_allowed {
            // Only the open/closed decision depends on the store here; a look every
            // `OPEN_RECHECK` keeps that cheap on an open gateway's hot path.
            self.refresh_at_most_every(OPEN_RECHECK, now)?;
        }
        if let Some(key) = virtual_key {
            let hash = self.secret.hash_key(key);
            let lookup = || self.table.read().ok().and_then(|t| t.by_hash.get(&hash).cloned());
            let mut found = lookup();
            if found.is_none() && !self.store.status().unreachable {
                // Perhaps created a moment ago on another node, before its notification arrived.
                // Requests that miss together wait for one look at the database, then look again.
                let mut last = self
                    .last_fresh
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                found = lookup();
                if found.is_none() && last.is_none_or(|t| t.elapsed() >= FRESH_CHECK) {
                    *last = Some(std::time::Instant::now());
                    if let Ok(version) = self.store.keys_version_fresh() {
                        self.load(version, now)?;
                        found = lookup();
                    }
                }
            }
            if let Some(entry) = found {
                if entry.revoked || entry.expires_at.is_some_and(|e| e <= now) {
                    return Err(GatewayError::Unauthorized);
                }
                return Ok(Principal::Virtual(entry));
            }
        }
        // An open loopback gateway stays open only until its first virtual key is made: from then on
        // (even if every key is later revoked) a key is required.
        if self.open_allowed && self.statics.is_empty() && !self.has_keys() {
            return Ok(Principal::Open);
        }
        Err(GatewayError::Unauthorized)
    }

    fn refresh_at_most_every(&self, every: std::time::Duration, now: i64) -> Result<(), GatewayError> {
        let due = self.last_check.lock().map(|mut last| {
            let due = last.is_none_or(|t: std::time::Instant| t.elapsed() >= every);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        });
        if due.unwrap_or(true) {
            self.refresh(now)?;
        }
        Ok(())
    }

    /// The store's `keys_version` the key table was last loaded at; a virtual-key request has just
    /// brought it up to date, so other per-request tables (team keys) can compare against it instead of
    /// reading the store again.
    pub fn keys_version(&self) -> i64 {
        self.table.read().map(|t| t.version).unwrap_or(-1)
    }

    fn has_keys(&self) -> bool {
        self.table.read().map(|t| !t.by_hash.is_empty()).unwrap_or(true)
    }

    /// True when `[server] admin_keys` names any key.
    pub fn has_admin_keys(&self) -> bool {
        !self.admins.is_empty()
    }

    /// True for an admin key (the admin API needs one; there is no open admin API).
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        presented_key(headers).is_some_and(|k| self.admins.matches(k))
    }

    /// True when `key` is one of `[server] admin_keys`.
    pub fn is_admin_key(&self, key: &str) -> bool {
        self.admins.matches(key)
    }
}
