//! The records the store keeps. Plain data; limits are in the units the policy crate counts in
//! (nano-dollars, requests and tokens per minute).

/// Spend and rate limits of a key or team.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Budget in nano-dollars, with its period (`day`, `month`, `total`).
    pub budget_nanos: Option<u64>,
    pub budget_period: Option<String>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
}

/// A team: a group of keys sharing limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRecord {
    pub id: String,
    pub name: String,
    pub limits: Limits,
    pub created_at: i64,
}

impl TeamRecord {
    /// A team with no limits.
    pub fn new(id: &str, name: &str) -> TeamRecord {
        TeamRecord {
            id: id.to_string(),
            name: name.to_string(),
            limits: Limits::default(),
            created_at: 0,
        }
    }
}

/// A virtual key. `hash` is HMAC-SHA-256 of the key under the server secret; `prefix` is the short,
/// non-secret start of the key shown in listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub hash: Vec<u8>,
    pub prefix: String,
    pub name: String,
    pub team_id: Option<String>,
    pub limits: Limits,
    /// Model allow-list globs; empty = any.
    pub models: Vec<String>,
    pub local_only: bool,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// Whose usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Key(String),
    Team(String),
}

/// One settled request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageRow {
    /// Unique per request: the idempotency key of settlement.
    pub request_id: String,
    pub ts: i64,
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_nanos: u64,
    /// `ok`, `error`, `cancelled`.
    pub status: String,
}

/// One line of a usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLine {
    /// The key id, team id or model the line is about (`-` when none).
    pub group: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_nanos: u64,
}

/// One bucket of a usage series: totals of one group over `[start, start + bucket)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePoint {
    pub start: i64,
    pub line: UsageLine,
}

/// A provider credential as stored: sealed by the gateway (AEAD), never in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub provider: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// A team's own credential for a provider (bring your own key), sealed by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSealedSecret {
    pub team_id: String,
    pub provider: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// How the store is doing, for `/ready` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// False while the database does not answer (a shared store only; SQLite is always reachable).
    pub unreachable: bool,
    /// The last error seen while unreachable (no credentials in it).
    pub error: Option<String>,
    /// Usage rows waiting in the local spool for the database to come back.
    pub spooled: u64,
    /// Usage rows dropped because the spool was full.
    pub spool_dropped: u64,
}

/// One stored Responses turn (`previous_response_id`, `GET /v1/responses/{id}`): the response and its
/// conversation, sealed by the gateway with the server secret (the tenant and id are bound into the
/// seal), never in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The response id (`resp_…`).
    pub id: String,
    /// Whose it is; every read and delete is scoped to it.
    pub tenant: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: i64,
    /// After this (Unix seconds) it is neither served nor kept.
    pub expires_at: i64,
}
