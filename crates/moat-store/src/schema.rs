//! Schema migrations, applied in order at open and tracked in `PRAGMA user_version`. Each entry is
//! plain, portable SQL (no SQLite-only types), so the same steps translate to PostgreSQL.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: keys, teams, usage, provider secrets.
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
     INSERT INTO meta (k, v) VALUES ('keys_version', 0);
     CREATE TABLE teams (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        budget_nanos BIGINT,
        budget_period TEXT,
        rpm INTEGER,
        tpm BIGINT,
        created_at BIGINT NOT NULL
     );
     CREATE TABLE keys (
        id TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        name TEXT NOT NULL,
        team_id TEXT REFERENCES teams(id),
        budget_nanos BIGINT,
        budget_period TEXT,
        rpm INTEGER,
        tpm BIGINT,
        models TEXT NOT NULL DEFAULT '',
        local_only INTEGER NOT NULL DEFAULT 0,
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
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        updated_at BIGINT NOT NULL
     );",
    // 2: per-team provider credentials (bring your own key), sealed like provider_secrets.
    "CREATE TABLE team_provider_secrets (
        team_id TEXT NOT NULL REFERENCES teams(id),
        provider TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (team_id, provider)
     );",
    // 3: Responses conversation state, sealed by the gateway; every lookup is by id and tenant.
    "CREATE TABLE responses (
        id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (id, tenant)
     );
     CREATE INDEX responses_expires ON responses (expires_at);",
];

/// Brings the database up to the newest schema.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "store schema migrated");
    }
    Ok(())
}
