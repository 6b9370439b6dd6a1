//! moat's persistence: virtual keys, teams, usage records, encrypted provider credentials and sealed
//! Responses conversation state, behind one [`Store`] trait. [`SqliteStore`] is the embedded default
//! (one file, WAL); [`PgStore`] keeps the same schema in PostgreSQL, shared by several gateway nodes.
//! [`open`] picks one from the URL.
//!
//! The store holds no secrets in the clear: keys arrive already hashed (HMAC under the server secret)
//! and provider credentials already encrypted; the gateway does the cryptography.
//!
//! ```
//! use moat_store::{SqliteStore, Store, TeamRecord};
//! let store = SqliteStore::open_memory().unwrap();
//! store.insert_team(&TeamRecord::new("team_1", "research")).unwrap();
//! assert_eq!(store.teams().unwrap()[0].name, "research");
//! ```

mod postgres;
mod schema;
mod sqlite;
mod types;
mod writer;

pub use postgres::{PgOptions, PgStore};
pub use sqlite::SqliteStore;
pub use types::{
    KeyRecord, Limits, Scope, SealedSecret, StoreStatus, StoredResponse, TeamRecord, TeamSealedSecret,
    UsageLine, UsagePoint, UsageRow,
};

/// Opens the store a URL names: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` (also
/// `postgresql://`). `options` only matter for PostgreSQL (the local usage spool).
pub fn open(url: &str, options: PgOptions) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if is_postgres_url(url) {
        Ok(std::sync::Arc::new(PgStore::open(url, options)?))
    } else {
        Ok(std::sync::Arc::new(SqliteStore::open(url)?))
    }
}

/// True for `postgres://…` and `postgresql://…`.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A store URL with any password removed, for logs and errors.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}
/// What can go wrong in the store. Messages never include key material.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {url}: {message}")]
    Open { url: String, message: String },
    #[error("unsupported store url {0:?}: use sqlite:///absolute/path.db or postgres://USER@HOST:PORT/DB")]
    BadUrl(String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The database could not be reached (or did not answer in time).
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the store's background writer has stopped")]
    WriterGone,
}

/// How usage reports are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Key,
    Team,
    Model,
}

/// Everything the gateway persists. One trait, so the SQLite default and a future PostgreSQL store
/// are interchangeable; methods are synchronous and fast (reads hit an in-process database, writes of
/// usage are queued to a background writer).
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Adds a team. Fails with [`StoreError::Duplicate`] if the name is taken.
    fn insert_team(&self, team: &TeamRecord) -> Result<(), StoreError>;
    /// Replaces a team's limits.
    fn update_team_limits(&self, id: &str, limits: &Limits) -> Result<(), StoreError>;
    fn teams(&self) -> Result<Vec<TeamRecord>, StoreError>;

    /// Adds a key (its hash, never the key).
    fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    fn keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Marks a key revoked at `now`. Returns false when no such live key exists.
    fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Gives a key a new secret (hash and display prefix), keeping its id, limits and spend.
    fn rotate_key(&self, id: &str, hash: &[u8], prefix: &str) -> Result<bool, StoreError>;
    /// Replaces a key's limits.
    fn update_key_limits(&self, id: &str, limits: &Limits) -> Result<(), StoreError>;

    /// A number that changes whenever keys or teams change, from any process sharing the store.
    /// Cheap enough to call on every request (a shared store answers from memory, kept current by
    /// change notifications and polling).
    fn keys_version(&self) -> Result<i64, StoreError>;
    /// The version read from the database itself, for when a caller cannot wait for the next
    /// notification (an unknown key may have been created a moment ago on another node).
    fn keys_version_fresh(&self) -> Result<i64, StoreError> {
        self.keys_version()
    }
    /// Whether the database answers, and what waits in a local spool.
    fn status(&self) -> StoreStatus {
        StoreStatus::default()
    }

    /// Queues a usage record. Idempotent by `request_id`: recording the same request twice counts once.
    fn record_usage(&self, row: UsageRow) -> Result<(), StoreError>;
    /// Waits until every queued usage record is committed.
    fn flush(&self) -> Result<(), StoreError>;
    /// Settled cost of a scope since `since` (inclusive), and request count and tokens since `minute`.
    fn spend_since(&self, scope: &Scope, since: i64) -> Result<u64, StoreError>;
    /// Requests and tokens recorded for a scope since `since`.
    fn activity_since(&self, scope: &Scope, since: i64) -> Result<(u32, u64), StoreError>;
    /// Usage totals grouped for reports.
    fn usage_report(&self, by: GroupBy, since: i64) -> Result<Vec<UsageLine>, StoreError>;
    /// Usage totals per time bucket and group since `since`, oldest first: buckets are `bucket` seconds
    /// wide and aligned to the epoch (`bucket` is at least 1). With `team_id`, only that team's usage.
    fn usage_series(
        &self,
        by: GroupBy,
        since: i64,
        bucket: i64,
        team_id: Option<&str>,
    ) -> Result<Vec<UsagePoint>, StoreError>;

    /// Usage rows in request-id order, `limit` at a time after `after` (for copying a store).
    fn usage_rows(&self, after: &str, limit: usize) -> Result<Vec<UsageRow>, StoreError>;

    /// Stores an encrypted provider credential (nonce and ciphertext).
    fn put_provider_secret(
        &self,
        provider: &str,
        nonce: &[u8],
        ciphertext: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;
    /// All stored provider credentials, still sealed.
    fn provider_secrets(&self) -> Result<Vec<SealedSecret>, StoreError>;

    /// Stores (or replaces) a team's own sealed credential for a provider, and bumps
    /// [`Store::keys_version`] so running gateways pick it up on the team's next request.
    fn put_team_provider_secret(&self, secret: &TeamSealedSecret, now: i64) -> Result<(), StoreError>;
    /// Removes a team's credential for a provider; false when it had none.
    fn delete_team_provider_secret(&self, team_id: &str, provider: &str) -> Result<bool, StoreError>;
    /// Every team's stored credentials, still sealed.
    fn team_provider_secrets(&self) -> Result<Vec<TeamSealedSecret>, StoreError>;

    /// Stores a Responses turn (replacing one with the same id and tenant), and drops turns that
    /// expired before `now`. Committed when this returns: the next request may continue it at once.
    fn put_response(&self, response: &StoredResponse, now: i64) -> Result<(), StoreError>;
    /// The tenant's unexpired turn with this id; `None` for an unknown id, another tenant's, or an
    /// expired one (the three are indistinguishable on purpose).
    fn get_response(&self, id: &str, tenant: &str, now: i64) -> Result<Option<StoredResponse>, StoreError>;
    /// Deletes the tenant's turn with this id; false when it had none.
    fn delete_response(&self, id: &str, tenant: &str) -> Result<bool, StoreError>;
}
