//! The SQLite store: one database file in WAL mode, a connection for reads and admin changes, and a
//! background writer for usage (see `writer`).

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::writer::{Op, Writer};
use crate::{
    GroupBy, KeyRecord, Limits, Scope, SealedSecret, Store, StoreError, StoredResponse, TeamRecord,
    TeamSealedSecret, UsageLine, UsagePoint, UsageRow,
};

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    writer: Writer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // WAL lets readers proceed while the writer commits; NORMAL sync is durable across process
    // crashes (a power loss may drop the last commits), the usual trade-off for WAL.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: Option<i64>) -> Option<u64> {
    v.map(|v| u64::try_from(v).unwrap_or(0))
}

impl SqliteStore {
    /// Opens `sqlite:///absolute/path.db` (or `sqlite://relative.db`), creating the file and its
    /// directory if needed, and migrates the schema.
    pub fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .ok_or_else(|| StoreError::BadUrl(url.to_string()))?;
        if path.is_empty() {
            return Err(StoreError::BadUrl(url.to_string()));
        }
        SqliteStore::open_path(Path::new(path))
    }

    /// Opens a database file.
    pub fn open_path(path: &Path) -> Result<SqliteStore, StoreError> {
        let label = path.display().to_string();
        let fail = |message: String| StoreError::Open {
            url: label.clone(),
            message,
        };
        // Created private before SQLite opens it: its `-wal` and `-shm` files take the database
        // file's mode, so they are private too.
        moat_fs::create_parent(path).map_err(|e| fail(e.to_string()))?;
        moat_fs::touch(path).map_err(|e| fail(e.to_string()))?;
        let mut conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        configure(&conn).map_err(|e| fail(e.to_string()))?;
        crate::schema::migrate(&mut conn)?;
        let writer_conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        configure(&writer_conn).map_err(|e| fail(e.to_string()))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            writer: Writer::start(writer_conn)?,
        })
    }

    /// A private in-memory database (tests, `--private` style runs). Both connections share it.
    pub fn open_memory() -> Result<SqliteStore, StoreError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let uri = format!(
            "file:moat-mem-{}-{}?mode=memory&cache=shared",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let mut conn = Connection::open_with_flags(&uri, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        crate::schema::migrate(&mut conn)?;
        let writer_conn = Connection::open_with_flags(&uri, flags)?;
        writer_conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            writer: Writer::start(writer_conn)?,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn bump_keys_version(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.execute("UPDATE meta SET v = v + 1 WHERE k = 'keys_version'", [])?;
    Ok(())
}

fn limits_of(row: &Row<'_>, base: usize) -> Result<Limits, rusqlite::Error> {
    Ok(Limits {
        budget_nanos: u64_of(row.get(base)?),
        budget_period: row.get(base + 1)?,
        rpm: row
            .get::<_, Option<i64>>(base + 2)?
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
        tpm: u64_of(row.get(base + 3)?),
    })
}

fn duplicate_or(e: rusqlite::Error, what: String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Duplicate(what)
        }
        other => StoreError::Sql(other),
    }
}

impl Store for SqliteStore {
    fn insert_team(&self, team: &TeamRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let l = &team.limits;
        tx.execute(
            "INSERT INTO teams (id, name, budget_nanos, budget_period, rpm, tpm, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                team.id,
                team.name,
                l.budget_nanos.map(i64_of),
                l.budget_period,
                l.rpm,
                l.tpm.map(i64_of),
                team.created_at
            ],
        )
        .map_err(|e| duplicate_or(e, format!("team {:?}", team.name)))?;
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn update_team_limits(&self, id: &str, l: &Limits) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE teams SET budget_nanos = ?2, budget_period = ?3, rpm = ?4, tpm = ?5 WHERE id = ?1",
            params![
                id,
                l.budget_nanos.map(i64_of),
                l.budget_period,
                l.rpm,
                l.tpm.map(i64_of)
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("team {id:?}")));
        }
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, budget_nanos, budget_period, rpm, tpm, created_at FROM teams ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TeamRecord {
                id: r.get(0)?,
                name: r.get(1)?,
                limits: limits_of(r, 2)?,
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let l = &k.limits;
        tx.execute(
            "INSERT INTO keys (id, hash, prefix, name, team_id, budget_nanos, budget_period, rpm, tpm, models,
                               local_only, expires_at, revoked_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                k.id,
                k.hash,
                k.prefix,
                k.name,
                k.team_id,
                l.budget_nanos.map(i64_of),
                l.budget_period,
                l.rpm,
                l.tpm.map(i64_of),
                k.models.join(","),
                k.local_only,
                k.expires_at,
                k.revoked_at,
                k.created_at
            ],
        )
        .map_err(|e| duplicate_or(e, format!("key {:?}", k.id)))?;
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, hash, prefix, name, team_id, budget_nanos, budget_period, rpm, tpm, models, local_only,
                    expires_at, revoked_at, created_at
             FROM keys ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            let models: String = r.get(9)?;
            Ok(KeyRecord {
                id: r.get(0)?,
                hash: r.get(1)?,
                prefix: r.get(2)?,
                name: r.get(3)?,
                team_id: r.get(4)?,
                limits: limits_of(r, 5)?,
                models: models
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
                local_only: r.get(10)?,
                expires_at: r.get(11)?,
                revoked_at: r.get(12)?,
                created_at: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn rotate_key(&self, id: &str, hash: &[u8], prefix: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE keys SET hash = ?2, prefix = ?3 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, hash, prefix],
        )?;
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn update_key_limits(&self, id: &str, l: &Limits) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE keys SET budget_nanos = ?2, budget_period = ?3, rpm = ?4, tpm = ?5 WHERE id = ?1",
            params![
                id,
                l.budget_nanos.map(i64_of),
                l.budget_period,
                l.rpm,
                l.tpm.map(i64_of)
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("key {id:?}")));
        }
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn keys_version(&self) -> Result<i64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT v FROM meta WHERE k = 'keys_version'")?;
        Ok(stmt.query_row([], |r| r.get(0)).optional()?.unwrap_or(0))
    }

    fn record_usage(&self, row: UsageRow) -> Result<(), StoreError> {
        self.writer.send(Op::Usage(row))
    }

    fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        self.writer.send(Op::Flush(ack))?;
        match done.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Open {
                url: "writer".into(),
                message,
            }),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    fn spend_since(&self, scope: &Scope, since: i64) -> Result<u64, StoreError> {
        let conn = self.conn();
        let (sql, id) = match scope {
            Scope::Key(id) => (
                "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage WHERE key_id = ?1 AND ts >= ?2",
                id,
            ),
            Scope::Team(id) => (
                "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage WHERE team_id = ?1 AND ts >= ?2",
                id,
            ),
        };
        let sum: i64 = conn
            .prepare_cached(sql)?
            .query_row(params![id, since], |r| r.get(0))?;
        Ok(u64::try_from(sum).unwrap_or(0))
    }

    fn activity_since(&self, scope: &Scope, since: i64) -> Result<(u32, u64), StoreError> {
        let conn = self.conn();
        let (sql, id) = match scope {
            Scope::Key(id) => (
                "SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage WHERE key_id = ?1 AND ts >= ?2",
                id,
            ),
            Scope::Team(id) => (
                "SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage WHERE team_id = ?1 AND ts >= ?2",
                id,
            ),
        };
        let (n, tokens): (i64, i64) = conn
            .prepare_cached(sql)?
            .query_row(params![id, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((
            u32::try_from(n).unwrap_or(u32::MAX),
            u64::try_from(tokens).unwrap_or(0),
        ))
    }

    fn usage_report(&self, by: GroupBy, since: i64) -> Result<Vec<UsageLine>, StoreError> {
        let conn = self.conn();
        let sql = match by {
            GroupBy::Key => "SELECT COALESCE(key_id, '-'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos) FROM usage WHERE ts >= ?1 GROUP BY key_id ORDER BY 5 DESC",
            GroupBy::Team => "SELECT COALESCE(team_id, '-'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos) FROM usage WHERE ts >= ?1 GROUP BY team_id ORDER BY 5 DESC",
            GroupBy::Model => "SELECT provider || '/' || model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos) FROM usage WHERE ts >= ?1 GROUP BY provider, model ORDER BY 5 DESC",
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![since], |r| {
            Ok(UsageLine {
                group: r.get(0)?,
                requests: u64_of(r.get(1)?).unwrap_or(0),
                prompt_tokens: u64_of(r.get(2)?).unwrap_or(0),
                completion_tokens: u64_of(r.get(3)?).unwrap_or(0),
                cost_nanos: u64_of(r.get(4)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn usage_series(
        &self,
        by: GroupBy,
        since: i64,
        bucket: i64,
        team_id: Option<&str>,
    ) -> Result<Vec<UsagePoint>, StoreError> {
        let conn = self.conn();
        let sql = match by {
            GroupBy::Key => "SELECT (ts / ?2) * ?2 AS b, COALESCE(key_id, '-'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos) FROM usage WHERE ts >= ?1 AND (?3 IS NULL OR team_id = ?3) GROUP BY b, key_id ORDER BY b, 6 DESC",
            GroupBy::Team => "SELECT (ts / ?2) * ?2 AS b, COALESCE(team_id, '-'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos) FROM usage WHERE ts >= ?1 AND (?3 IS NULL OR team_id = ?3) GROUP BY b, team_id ORDER BY b, 6 DESC",
            GroupBy::Model => "SELECT (ts / ?2) * ?2 AS b, provider || '/' || model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos) FROM usage WHERE ts >= ?1 AND (?3 IS NULL OR team_id = ?3) GROUP BY b, provider, model ORDER BY b, 6 DESC",
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![since, bucket.max(1), team_id], |r| {
            Ok(UsagePoint {
                start: r.get(0)?,
                line: UsageLine {
                    group: r.get(1)?,
                    requests: u64_of(r.get(2)?).unwrap_or(0),
                    prompt_tokens: u64_of(r.get(3)?).unwrap_or(0),
                    completion_tokens: u64_of(r.get(4)?).unwrap_or(0),
                    cost_nanos: u64_of(r.get(5)?).unwrap_or(0),
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn usage_rows(&self, after: &str, limit: usize) -> Result<Vec<UsageRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT request_id, ts, key_id, team_id, provider, model, prompt_tokens, completion_tokens,
                    cost_nanos, status
             FROM usage WHERE request_id > ?1 ORDER BY request_id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(UsageRow {
                request_id: r.get(0)?,
                ts: r.get(1)?,
                key_id: r.get(2)?,
                team_id: r.get(3)?,
                provider: r.get(4)?,
                model: r.get(5)?,
                prompt_tokens: u64_of(r.get(6)?).unwrap_or(0),
                completion_tokens: u64_of(r.get(7)?).unwrap_or(0),
                cost_nanos: u64_of(r.get(8)?).unwrap_or(0),
                status: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_provider_secret(
        &self,
        provider: &str,
        nonce: &[u8],
        ciphertext: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO provider_secrets (provider, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (provider) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                                                  updated_at = excluded.updated_at",
            params![provider, nonce, ciphertext, now],
        )?;
        Ok(())
    }

    fn provider_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT provider, nonce, ciphertext FROM provider_secrets ORDER BY provider")?;
        let rows = stmt.query_map([], |r| {
            Ok(SealedSecret {
                provider: r.get(0)?,
                nonce: r.get(1)?,
                ciphertext: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_team_provider_secret(&self, t: &TeamSealedSecret, now: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let known: i64 = tx.query_row(
            "SELECT COUNT(*) FROM teams WHERE id = ?1",
            params![t.team_id],
            |r| r.get(0),
        )?;
        if known == 0 {
            return Err(StoreError::NotFound(format!("team {}", t.team_id)));
        }
        tx.execute(
            "INSERT INTO team_provider_secrets (team_id, provider, nonce, ciphertext, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (team_id, provider) DO UPDATE SET nonce = excluded.nonce,
                 ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
            params![t.team_id, t.provider, t.nonce, t.ciphertext, now],
        )?;
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn delete_team_provider_secret(&self, team_id: &str, provider: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM team_provider_secrets WHERE team_id = ?1 AND provider = ?2",
            params![team_id, provider],
        )?;
        bump_keys_version(&tx)?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn team_provider_secrets(&self) -> Result<Vec<TeamSealedSecret>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT team_id, provider, nonce, ciphertext FROM team_provider_secrets ORDER BY team_id, provider",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TeamSealedSecret {
                team_id: r.get(0)?,
                provider: r.get(1)?,
                nonce: r.get(2)?,
                ciphertext: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_response(&self, r: &StoredResponse, now: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM responses WHERE expires_at <= ?1", params![now])?;
        tx.execute(
            "INSERT INTO responses (id, tenant, nonce, ciphertext, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id, tenant) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            params![r.id, r.tenant, r.nonce, r.ciphertext, r.created_at, r.expires_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn get_response(&self, id: &str, tenant: &str, now: i64) -> Result<Option<StoredResponse>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, tenant, nonce, ciphertext, created_at, expires_at FROM responses
             WHERE id = ?1 AND tenant = ?2 AND expires_at > ?3",
        )?;
        let row = stmt
            .query_row(params![id, tenant, now], |r| {
                Ok(StoredResponse {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    nonce: r.get(2)?,
                    ciphertext: r.get(3)?,
                    created_at: r.get(4)?,
                    expires_at: r.get(5)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    fn delete_response(&self, id: &str, tenant: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM responses WHERE id = ?1 AND tenant = ?2",
            params![id, tenant],
        )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests;
