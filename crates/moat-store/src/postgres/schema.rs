//! PostgreSQL migrations: the SQLite schema's tables in PostgreSQL types, applied in order at open
//! and tracked in `moat_schema`. Every node runs them at start; a transaction-scoped advisory lock
//! makes nodes that start together take turns, so each step runs exactly once.

use deadpool_postgres::Client;

use super::pg_error;
use crate::StoreError;

/// The advisory lock every node takes while migrating ("moat" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d6f_6174;

const MIGRATIONS: &[&str] = &[
    // 1: keys, teams, usage, provider secrets, teams' own provider secrets.
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v BIGINT NOT NULL);
     INSERT INTO meta (k, v) VALUES ('keys_version', 0);
     CREATE TABLE teams (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        budget_nanos BIGINT,
        budget_period TEXT,
        rpm BIGINT,
        tpm BIGINT,
        created_at BIGINT NOT NULL
     );
     CREATE TABLE keys (
        id TEXT PRIMARY KEY,
        hash BYTEA NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        name TEXT NOT NULL,
        team_id TEXT REFERENCES teams(id),
        budget_nanos BIGINT,
        budget_period TEXT,
        rpm BIGINT,
        tpm BIGINT,
        models TEXT NOT NULL DEFAULT '',
        local_only BOOLEAN NOT NULL DEFAULT FALSE,
        expires_at BIGINT,
        revoked_at BIGINT,
        created_at BIGINT NOT NULL
     );
     CREATE TABLE usage (
        request_id TEXT PRIMARY KEY,
        ts BIGINT NOT NULL,
        key_id TEXT,
        team_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        cost_nanos BIGINT NOT NULL,
        status TEXT NOT NULL
     );
     CREATE INDEX usage_key_ts ON usage (key_id, ts);
     CREATE INDEX usage_team_ts ON usage (team_id, ts);
     CREATE INDEX usage_ts ON usage (ts);
     CREATE TABLE provider_secrets (
        provider TEXT PRIMARY KEY,
        nonce BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        updated_at BIGINT NOT NULL
     );
     CREATE TABLE team_provider_secrets (
        team_id TEXT NOT NULL REFERENCES teams(id),
        provider TEXT NOT NULL,
        nonce BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (team_id, provider)
     );",
    // 2: Responses conversation state, sealed by the gateway; every lookup is by id and tenant.
    "CREATE TABLE responses (
        id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        nonce BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (id, tenant)
     );
     CREATE INDEX responses_expires ON responses (expires_at);",
];

/// Brings the database up to the newest schema, holding the migration lock for the whole step.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS moat_schema (version INTEGER NOT NULL)")
        .await
        .map_err(pg_error)?;
    let current: Option<i32> = tx
        .query_opt("SELECT MAX(version) FROM moat_schema", &[])
        .await
        .map_err(pg_error)?
        .and_then(|r| r.get(0));
    let current = usize::try_from(current.unwrap_or(0)).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(sql).await.map_err(pg_error)?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute("INSERT INTO moat_schema (version) VALUES ($1)", &[&version])
            .await
            .map_err(pg_error)?;
        tracing::info!(version, "PostgreSQL store schema migrated");
    }
    tx.commit().await.map_err(pg_error)
}
