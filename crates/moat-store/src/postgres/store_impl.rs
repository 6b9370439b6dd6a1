//! [`Store`] for [`PgStore`]: each method is one static statement (or one short transaction) run on the
//! store's runtime. Changes to keys, teams and teams' credentials bump the keys version and notify
//! every node in the same transaction.

use std::sync::atomic::Ordering;

use super::{
    duplicate_or, i64_of, key_of, limits_of, pg_error, pool_error, read_version, u64_of, usage_of, writer,
    PgStore, BUMP,
};
use crate::{
    GroupBy, KeyRecord, Limits, Scope, SealedSecret, Store, StoreError, StoreStatus, StoredResponse,
    TeamRecord, TeamSealedSecret, UsageLine, UsagePoint, UsageRow,
};

impl Store for PgStore {
    fn insert_team(&self, team: &TeamRecord) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let t = team.clone();
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            let l = &t.limits;
            tx.execute(
                "INSERT INTO teams (id, name, budget_nanos, budget_period, rpm, tpm, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &t.id,
                    &t.name,
                    &l.budget_nanos.map(i64_of),
                    &l.budget_period,
                    &l.rpm.map(i64::from),
                    &l.tpm.map(i64_of),
                    &t.created_at,
                ],
            )
            .await
            .map_err(|e| duplicate_or(e, format!("team {:?}", t.name)))?;
            tx.execute(BUMP, &[]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }

    fn update_team_limits(&self, id: &str, l: &Limits) -> Result<(), StoreError> {
        self.update_limits(Table::Teams, id, l)
    }

    fn teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let rows = c
                .query(
                    "SELECT id, name, budget_nanos, budget_period, rpm, tpm, created_at FROM teams ORDER BY name",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| TeamRecord {
                    id: r.get(0),
                    name: r.get(1),
                    limits: limits_of(r, 2),
                    created_at: r.get(6),
                })
                .collect())
        })
    }

    fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let k = key.clone();
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            let l = &k.limits;
            tx.execute(
                "INSERT INTO keys (id, hash, prefix, name, team_id, budget_nanos, budget_period, rpm, tpm, models,
                                   local_only, expires_at, revoked_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &k.id,
                    &k.hash,
                    &k.prefix,
                    &k.name,
                    &k.team_id,
                    &l.budget_nanos.map(i64_of),
                    &l.budget_period,
                    &l.rpm.map(i64::from),
                    &l.tpm.map(i64_of),
                    &k.models.join(","),
                    &k.local_only,
                    &k.expires_at,
                    &k.revoked_at,
                    &k.created_at,
                ],
            )
            .await
            .map_err(|e| duplicate_or(e, format!("key {:?}", k.id)))?;
            tx.execute(BUMP, &[]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }

    fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let stmt = c
                .prepare_cached(
                    "SELECT id, hash, prefix, name, team_id, budget_nanos, budget_period, rpm, tpm, models,
                            local_only, expires_at, revoked_at, created_at
                     FROM keys ORDER BY created_at, id",
                )
                .await
                .map_err(pg_error)?;
            let rows = c.query(&stmt, &[]).await.map_err(pg_error)?;
            Ok(rows.iter().map(key_of).collect())
        })
    }

    fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let pool = self.pool.clone();
        let id = id.to_string();
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            let n = tx
                .execute(
                    "UPDATE keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&id, &now],
                )
                .await
                .map_err(pg_error)?;
            tx.execute(BUMP, &[]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(n > 0)
        })
    }

    fn rotate_key(&self, id: &str, hash: &[u8], prefix: &str) -> Result<bool, StoreError> {
        let pool = self.pool.clone();
        let (id, hash, prefix) = (id.to_string(), hash.to_vec(), prefix.to_string());
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            let n = tx
                .execute(
                    "UPDATE keys SET hash = $2, prefix = $3 WHERE id = $1 AND revoked_at IS NULL",
                    &[&id, &hash, &prefix],
                )
                .await
                .map_err(pg_error)?;
            tx.execute(BUMP, &[]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(n > 0)
        })
    }

    fn update_key_limits(&self, id: &str, l: &Limits) -> Result<(), StoreError> {
        self.update_limits(Table::Keys, id, l)
    }

    fn keys_version(&self) -> Result<i64, StoreError> {
        Ok(self.shared.keys_version.load(Ordering::Acquire))
    }

    fn keys_version_fresh(&self) -> Result<i64, StoreError> {
        let pool = self.pool.clone();
        let v = self.block(async move { read_version(&pool).await })?;
        self.shared.keys_version.store(v, Ordering::Release);
        Ok(v)
    }

    fn status(&self) -> StoreStatus {
        StoreStatus {
            unreachable: self.shared.unreachable.load(Ordering::Acquire),
            error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            spooled: self.shared.spooled.load(Ordering::Relaxed),
            spool_dropped: self.shared.spool_dropped.load(Ordering::Relaxed),
        }
    }

    fn record_usage(&self, row: UsageRow) -> Result<(), StoreError> {
        self.writer
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(writer::Op::Usage(row))
            .map_err(|_| StoreError::WriterGone)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        self.writer
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(writer::Op::Flush(ack))
            .map_err(|_| StoreError::WriterGone)?;
        match done.recv_timeout(self.timeout.saturating_mul(2)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Unavailable(message)),
            Err(_) => Err(StoreError::Unavailable("the usage writer did not answer".into())),
        }
    }

    fn spend_since(&self, scope: &Scope, since: i64) -> Result<u64, StoreError> {
        let pool = self.pool.clone();
        let scope = scope.clone();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let (sql, id) = match &scope {
                Scope::Key(id) => (
                    "SELECT COALESCE(SUM(cost_nanos), 0)::BIGINT FROM usage WHERE key_id = $1 AND ts >= $2",
                    id,
                ),
                Scope::Team(id) => (
                    "SELECT COALESCE(SUM(cost_nanos), 0)::BIGINT FROM usage WHERE team_id = $1 AND ts >= $2",
                    id,
                ),
            };
            let stmt = c.prepare_cached(sql).await.map_err(pg_error)?;
            let sum: i64 = c.query_one(&stmt, &[id, &since]).await.map_err(pg_error)?.get(0);
            Ok(u64::try_from(sum).unwrap_or(0))
        })
    }

    fn activity_since(&self, scope: &Scope, since: i64) -> Result<(u32, u64), StoreError> {
        let pool = self.pool.clone();
        let scope = scope.clone();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let (sql, id) = match &scope {
                Scope::Key(id) => (
                    "SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0)::BIGINT
                     FROM usage WHERE key_id = $1 AND ts >= $2",
                    id,
                ),
                Scope::Team(id) => (
                    "SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0)::BIGINT
                     FROM usage WHERE team_id = $1 AND ts >= $2",
                    id,
                ),
            };
            let stmt = c.prepare_cached(sql).await.map_err(pg_error)?;
            let row = c.query_one(&stmt, &[id, &since]).await.map_err(pg_error)?;
            let (n, tokens): (i64, i64) = (row.get(0), row.get(1));
            Ok((
                u32::try_from(n).unwrap_or(u32::MAX),
                u64::try_from(tokens).unwrap_or(0),
            ))
        })
    }

    fn usage_report(&self, by: GroupBy, since: i64) -> Result<Vec<UsageLine>, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let sql = match by {
                GroupBy::Key => {
                    "SELECT COALESCE(key_id, '-'), COUNT(*), SUM(prompt_tokens)::BIGINT,
                                        SUM(completion_tokens)::BIGINT, SUM(cost_nanos)::BIGINT
                                 FROM usage WHERE ts >= $1 GROUP BY key_id ORDER BY 5 DESC"
                }
                GroupBy::Team => {
                    "SELECT COALESCE(team_id, '-'), COUNT(*), SUM(prompt_tokens)::BIGINT,
                                         SUM(completion_tokens)::BIGINT, SUM(cost_nanos)::BIGINT
                                  FROM usage WHERE ts >= $1 GROUP BY team_id ORDER BY 5 DESC"
                }
                GroupBy::Model => {
                    "SELECT provider || '/' || model, COUNT(*), SUM(prompt_tokens)::BIGINT,
                                          SUM(completion_tokens)::BIGINT, SUM(cost_nanos)::BIGINT
                                   FROM usage WHERE ts >= $1 GROUP BY provider, model ORDER BY 5 DESC"
                }
            };
            let rows = c.query(sql, &[&since]).await.map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| UsageLine {
                    group: r.get(0),
                    requests: u64_of(r.get(1)).unwrap_or(0),
                    prompt_tokens: u64_of(r.get(2)).unwrap_or(0),
                    completion_tokens: u64_of(r.get(3)).unwrap_or(0),
                    cost_nanos: u64_of(r.get(4)).unwrap_or(0),
                })
                .collect())
        })
    }

    fn usage_series(
        &self,
        by: GroupBy,
        since: i64,
        bucket: i64,
        team_id: Option<&str>,
    ) -> Result<Vec<UsagePoint>, StoreError> {
        let pool = self.pool.clone();
        let bucket = bucket.max(1);
        let team_id = team_id.map(str::to_string);
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            // Integer division truncates toward zero, as SQLite's does, so buckets align to the epoch
            // the same way on both stores.
            let sql = match by {
                GroupBy::Key => {
                    "SELECT (ts / $2) * $2 AS b, COALESCE(key_id, '-'), COUNT(*), SUM(prompt_tokens)::BIGINT,
                            SUM(completion_tokens)::BIGINT, SUM(cost_nanos)::BIGINT
                     FROM usage WHERE ts >= $1 AND ($3::TEXT IS NULL OR team_id = $3)
                     GROUP BY b, key_id ORDER BY b, 6 DESC"
                }
                GroupBy::Team => {
                    "SELECT (ts / $2) * $2 AS b, COALESCE(team_id, '-'), COUNT(*), SUM(prompt_tokens)::BIGINT,
                            SUM(completion_tokens)::BIGINT, SUM(cost_nanos)::BIGINT
                     FROM usage WHERE ts >= $1 AND ($3::TEXT IS NULL OR team_id = $3)
                     GROUP BY b, team_id ORDER BY b, 6 DESC"
                }
                GroupBy::Model => {
                    "SELECT (ts / $2) * $2 AS b, provider || '/' || model, COUNT(*), SUM(prompt_tokens)::BIGINT,
                            SUM(completion_tokens)::BIGINT, SUM(cost_nanos)::BIGINT
                     FROM usage WHERE ts >= $1 AND ($3::TEXT IS NULL OR team_id = $3)
                     GROUP BY b, provider, model ORDER BY b, 6 DESC"
                }
            };
            let rows = c
                .query(sql, &[&since, &bucket, &team_id])
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| UsagePoint {
                    start: r.get(0),
                    line: UsageLine {
                        group: r.get(1),
                        requests: u64_of(r.get(2)).unwrap_or(0),
                        prompt_tokens: u64_of(r.get(3)).unwrap_or(0),
                        completion_tokens: u64_of(r.get(4)).unwrap_or(0),
                        cost_nanos: u64_of(r.get(5)).unwrap_or(0),
                    },
                })
                .collect())
        })
    }

    fn usage_rows(&self, after: &str, limit: usize) -> Result<Vec<UsageRow>, StoreError> {
        let pool = self.pool.clone();
        let after = after.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let rows = c
                .query(
                    "SELECT request_id, ts, key_id, team_id, provider, model, prompt_tokens, completion_tokens,
                            cost_nanos, status
                     FROM usage WHERE request_id > $1 ORDER BY request_id LIMIT $2",
                    &[&after, &limit],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(usage_of).collect())
        })
    }

    fn put_provider_secret(
        &self,
        provider: &str,
        nonce: &[u8],
        ciphertext: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let (provider, nonce, ciphertext) = (provider.to_string(), nonce.to_vec(), ciphertext.to_vec());
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            c.execute(
                "INSERT INTO provider_secrets (provider, nonce, ciphertext, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (provider) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                                                      updated_at = excluded.updated_at",
                &[&provider, &nonce, &ciphertext, &now],
            )
            .await
            .map_err(pg_error)?;
            Ok(())
        })
    }

    fn provider_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let rows = c
                .query(
                    "SELECT provider, nonce, ciphertext FROM provider_secrets ORDER BY provider",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| SealedSecret {
                    provider: r.get(0),
                    nonce: r.get(1),
                    ciphertext: r.get(2),
                })
                .collect())
        })
    }

    fn put_team_provider_secret(&self, secret: &TeamSealedSecret, now: i64) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let t = secret.clone();
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            let known = tx
                .query_opt("SELECT 1 FROM teams WHERE id = $1", &[&t.team_id])
                .await
                .map_err(pg_error)?;
            if known.is_none() {
                return Err(StoreError::NotFound(format!("team {}", t.team_id)));
            }
            tx.execute(
                "INSERT INTO team_provider_secrets (team_id, provider, nonce, ciphertext, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (team_id, provider) DO UPDATE SET nonce = excluded.nonce,
                     ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                &[&t.team_id, &t.provider, &t.nonce, &t.ciphertext, &now],
            )
            .await
            .map_err(pg_error)?;
            tx.execute(BUMP, &[]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }

    fn delete_team_provider_secret(&self, team_id: &str, provider: &str) -> Result<bool, StoreError> {
        let pool = self.pool.clone();
        let (team_id, provider) = (team_id.to_string(), provider.to_string());
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            let n = tx
                .execute(
                    "DELETE FROM team_provider_secrets WHERE team_id = $1 AND provider = $2",
                    &[&team_id, &provider],
                )
                .await
                .map_err(pg_error)?;
            tx.execute(BUMP, &[]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(n > 0)
        })
    }

    fn team_provider_secrets(&self) -> Result<Vec<TeamSealedSecret>, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let rows = c
                .query(
                    "SELECT team_id, provider, nonce, ciphertext FROM team_provider_secrets
                     ORDER BY team_id, provider",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| TeamSealedSecret {
                    team_id: r.get(0),
                    provider: r.get(1),
                    nonce: r.get(2),
                    ciphertext: r.get(3),
                })
                .collect())
        })
    }

    fn put_response(&self, response: &StoredResponse, now: i64) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let r = response.clone();
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            tx.execute("DELETE FROM responses WHERE expires_at <= $1", &[&now])
                .await
                .map_err(pg_error)?;
            tx.execute(
                "INSERT INTO responses (id, tenant, nonce, ciphertext, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id, tenant) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                     created_at = excluded.created_at, expires_at = excluded.expires_at",
                &[&r.id, &r.tenant, &r.nonce, &r.ciphertext, &r.created_at, &r.expires_at],
            )
            .await
            .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }

    fn get_response(&self, id: &str, tenant: &str, now: i64) -> Result<Option<StoredResponse>, StoreError> {
        let pool = self.pool.clone();
        let (id, tenant) = (id.to_string(), tenant.to_string());
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let row = c
                .query_opt(
                    "SELECT id, tenant, nonce, ciphertext, created_at, expires_at FROM responses
                     WHERE id = $1 AND tenant = $2 AND expires_at > $3",
                    &[&id, &tenant, &now],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| StoredResponse {
                id: r.get(0),
                tenant: r.get(1),
                nonce: r.get(2),
                ciphertext: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
            }))
        })
    }

    fn delete_response(&self, id: &str, tenant: &str) -> Result<bool, StoreError> {
        let pool = self.pool.clone();
        let (id, tenant) = (id.to_string(), tenant.to_string());
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let n = c
                .execute(
                    "DELETE FROM responses WHERE id = $1 AND tenant = $2",
                    &[&id, &tenant],
                )
                .await
                .map_err(pg_error)?;
            Ok(n > 0)
        })
    }
}

/// The two tables whose rows carry limits.
#[derive(Clone, Copy)]
enum Table {
    Keys,
    Teams,
}

impl PgStore {
    /// Sets the limits of key or team `id`, and bumps the keys version so every node reloads them.
    fn update_limits(&self, table: Table, id: &str, l: &Limits) -> Result<(), StoreError> {
        let (sql, what) = match table {
            Table::Keys => (
                "UPDATE keys SET budget_nanos = $2, budget_period = $3, rpm = $4, tpm = $5 WHERE id = $1",
                "key",
            ),
            Table::Teams => (
                "UPDATE teams SET budget_nanos = $2, budget_period = $3, rpm = $4, tpm = $5 WHERE id = $1",
                "team",
            ),
        };
        let pool = self.pool.clone();
        let (id, l) = (id.to_string(), l.clone());
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(pg_error)?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                &id,
                &l.budget_nanos.map(i64_of),
                &l.budget_period,
                &l.rpm.map(i64::from),
                &l.tpm.map(i64_of),
            ];
            if tx.execute(sql, &params).await.map_err(pg_error)? == 0 {
                return Err(StoreError::NotFound(format!("{what} {id:?}")));
            }
            tx.execute(BUMP, &[]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }
}
