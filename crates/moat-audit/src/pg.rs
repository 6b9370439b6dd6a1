//! The audit log in PostgreSQL, for a cluster: one hash chain per node (`node_id`), each signed by its
//! own node's key, in three tables shared by every node (`audit_records`, `audit_checkpoints`,
//! `audit_meta`, all keyed by node id first). Appending works exactly as with SQLite (`writer`), with
//! a transaction-scoped advisory lock per chain standing in for SQLite's write lock, so the gateway
//! and admin commands run with the same node id still make one unbroken sequence.
//!
//! Reading (verify, export, checkpoints) copies one chain into a temporary SQLite file and runs the
//! same code on it as on a local log: one verifier, whichever store holds the log.

use std::path::{Path, PathBuf};

use tokio_postgres::{Client, NoTls};

use crate::db;
use crate::writer::{Batch, Chain};
use crate::AuditError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_meta (node_id TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL,
                                       PRIMARY KEY (node_id, k));
CREATE TABLE IF NOT EXISTS audit_records (node_id TEXT NOT NULL, seq BIGINT NOT NULL, ts_ms BIGINT NOT NULL,
                                          prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL, payload TEXT NOT NULL,
                                          PRIMARY KEY (node_id, seq));
CREATE TABLE IF NOT EXISTS audit_checkpoints (node_id TEXT NOT NULL, seq BIGINT NOT NULL, hash BYTEA NOT NULL,
                                              ts_ms BIGINT NOT NULL, public_key BYTEA NOT NULL,
                                              signature BYTEA NOT NULL, PRIMARY KEY (node_id, seq));
";

/// The advisory lock taken while creating the tables ("moat" + 1).
const SCHEMA_LOCK: i64 = 0x6d6f_6175;

pub(crate) fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn pg(e: tokio_postgres::Error) -> AuditError {
    AuditError::Postgres(e.to_string())
}

/// Runs blocking database work on a thread of its own: callers may be inside an async runtime (the
/// gateway opens its log from one), where blocking on another runtime is not allowed.
fn off_runtime<T: Send>(f: impl FnOnce() -> Result<T, AuditError> + Send) -> Result<T, AuditError> {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|_| Err(AuditError::Postgres("database thread failed".into())))
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, AuditError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AuditError::Io)
}

async fn connect(url: &str) -> Result<Client, AuditError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(pg)?;
    config.connect_timeout(std::time::Duration::from_secs(5));
    config.application_name("moatd-audit");
    let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A node's chain in PostgreSQL, as the writer thread appends to it.
pub(crate) struct PgChain {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    url: String,
    node: String,
}

impl PgChain {
    /// Connects, creates the tables if needed and checks (or records) the chain's public key.
    pub(crate) fn open(
        url: &str,
        node: &str,
        public_key_hex: &str,
        key_file: &Path,
    ) -> Result<PgChain, AuditError> {
        off_runtime(|| PgChain::open_here(url, node, public_key_hex, key_file))
    }

    fn open_here(
        url: &str,
        node: &str,
        public_key_hex: &str,
        key_file: &Path,
    ) -> Result<PgChain, AuditError> {
        let rt = runtime()?;
        let client = rt.block_on(async {
            let mut client = connect(url).await?;
            let tx = client.transaction().await.map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .await
                .map_err(pg)?;
            tx.batch_execute(SCHEMA).await.map_err(pg)?;
            let known: Option<String> = tx
                .query_opt(
                    "SELECT v FROM audit_meta WHERE node_id = $1 AND k = 'public_key'",
                    &[&node],
                )
                .await
                .map_err(pg)?
                .map(|r| r.get(0));
            match known {
                Some(k) if k != public_key_hex => {
                    return Err(AuditError::KeyMismatch {
                        key_file: key_file.display().to_string(),
                        expected: k,
                    })
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO audit_meta (node_id, k, v) VALUES ($1, 'public_key', $2),
                                                                   ($1, 'format', '1')",
                        &[&node, &public_key_hex],
                    )
                    .await
                    .map_err(pg)?;
                }
            }
            tx.commit().await.map_err(pg)?;
            Ok::<_, AuditError>(client)
        })?;
        Ok(PgChain {
            rt,
            client: Some(client),
            url: url.to_string(),
            node: node.to_string(),
        })
    }

    async fn append(client: &mut Client, node: &str, b: &Batch<'_>) -> Result<u64, tokio_postgres::Error> {
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('moat-audit:' || $1))",
            &[&node],
        )
        .await?;
        let last = tx
            .query_opt(
                "SELECT seq, hash FROM audit_records WHERE node_id = $1 ORDER BY seq DESC LIMIT 1",
                &[&node],
            )
            .await?;
        let (mut seq, mut prev) = match last {
            Some(r) => (db::u64_of(r.get(0)), db::hash32(r.get::<_, &[u8]>(1))),
            None => {
                let anchor = tx
                    .query(
                        "SELECT k, v FROM audit_meta WHERE node_id = $1 AND k IN ('anchor_seq', 'anchor_hash')",
                        &[&node],
                    )
                    .await?;
                let get = |k: &str| {
                    anchor
                        .iter()
                        .find(|r| r.get::<_, &str>(0) == k)
                        .map(|r| r.get::<_, String>(1))
                };
                match (
                    get("anchor_seq").and_then(|s| s.parse::<u64>().ok()),
                    get("anchor_hash").and_then(|h| hex::decode(h).ok()),
                ) {
                    (Some(s), Some(h)) => (s, db::hash32(&h)),
                    _ => (0, crate::record::GENESIS_HASH),
                }
            }
        };
        let last_cp: Option<i64> = tx
            .query_one(
                "SELECT MAX(seq) FROM audit_checkpoints WHERE node_id = $1",
                &[&node],
            )
            .await?
            .get(0);
        let mut last_cp = last_cp.map_or(0, db::u64_of);
        let insert = tx
            .prepare(
                "INSERT INTO audit_records (node_id, seq, ts_ms, prev_hash, hash, payload)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?;
        let checkpoint = tx
            .prepare(
                "INSERT INTO audit_checkpoints (node_id, seq, hash, ts_ms, public_key, signature)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .await?;
        let mut signed = 0;
        let mut cps = Vec::new();
        for p in b.pending {
            seq += 1;
            let hash = crate::record::entry_hash(seq, &prev, p.payload.as_bytes());
            tx.execute(
                &insert,
                &[
                    &node,
                    &db::i64_of(seq),
                    &p.ts_ms,
                    &&prev[..],
                    &&hash[..],
                    &p.payload,
                ],
            )
            .await?;
            prev = hash;
            if b.checkpoint_every > 0 && seq >= last_cp.saturating_add(b.checkpoint_every) {
                cps.push((seq, prev));
                last_cp = seq;
            }
        }
        if b.checkpoint_head && seq > last_cp {
            cps.push((seq, prev));
        }
        for (seq, hash) in cps {
            let sig = crate::keys::sign_checkpoint(b.key, seq, &hash);
            tx.execute(
                &checkpoint,
                &[
                    &node,
                    &db::i64_of(seq),
                    &&hash[..],
                    &crate::now_ms(),
                    &&b.public_key[..],
                    &&sig[..],
                ],
            )
            .await?;
            signed += 1;
        }
        tx.commit().await?;
        Ok(signed)
    }
}

impl Chain for PgChain {
    fn commit(&mut self, b: Batch<'_>) -> Result<u64, String> {
        let (url, node) = (self.url.clone(), self.node.clone());
        let client = &mut self.client;
        self.rt.block_on(async {
            if client.as_ref().is_none_or(Client::is_closed) {
                *client = Some(connect(&url).await.map_err(|e| e.to_string())?);
            }
            let Some(c) = client.as_mut() else {
                return Err("not connected".to_string());
            };
            let result = PgChain::append(c, &node, &b).await;
            if result.is_err() && c.is_closed() {
                *client = None;
            }
            result.map_err(|e| e.to_string())
        })
    }
}

/// The node ids that have a chain in the database.
pub(crate) fn chains(url: &str) -> Result<Vec<String>, AuditError> {
    off_runtime(|| {
        runtime()?.block_on(async {
            let client = connect(url).await?;
            let rows = client
                .query(
                    "SELECT node_id FROM audit_meta WHERE k = 'public_key'
                 UNION SELECT DISTINCT node_id FROM audit_records ORDER BY 1",
                    &[],
                )
                .await
                .map_err(pg)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    })
}

/// Copies one node's chain (meta, records, checkpoints, as stored, tampering included) into a new
/// SQLite log at `dir/NODE.db` and returns its `sqlite://` URL.
pub(crate) fn snapshot(url: &str, node: &str, dir: &Path) -> Result<String, AuditError> {
    off_runtime(|| snapshot_here(url, node, dir))
}

fn snapshot_here(url: &str, node: &str, dir: &Path) -> Result<String, AuditError> {
    let path: PathBuf = dir.join(format!("{}.db", node.replace(['/', '\\'], "_")));
    let mut conn = db::open_rw(&path)?;
    runtime()?.block_on(async {
        let mut client = connect(url).await?;
        // One repeatable-read transaction: a consistent view while nodes keep appending.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let lite = conn.transaction()?;
        for r in tx
            .query("SELECT k, v FROM audit_meta WHERE node_id = $1", &[&node])
            .await
            .map_err(pg)?
        {
            db::set_meta(&lite, r.get(0), r.get(1))?;
        }
        for r in tx
            .query(
                "SELECT seq, ts_ms, prev_hash, hash, payload FROM audit_records WHERE node_id = $1 ORDER BY seq",
                &[&node],
            )
            .await
            .map_err(pg)?
        {
            lite.execute(
                "INSERT INTO records (seq, ts_ms, prev_hash, hash, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    r.get::<_, i64>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, Vec<u8>>(2),
                    r.get::<_, Vec<u8>>(3),
                    r.get::<_, String>(4)
                ],
            )?;
        }
        for r in tx
            .query(
                "SELECT seq, hash, ts_ms, public_key, signature FROM audit_checkpoints WHERE node_id = $1",
                &[&node],
            )
            .await
            .map_err(pg)?
        {
            lite.execute(
                "INSERT INTO checkpoints (seq, hash, ts_ms, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    r.get::<_, i64>(0),
                    r.get::<_, Vec<u8>>(1),
                    r.get::<_, i64>(2),
                    r.get::<_, Vec<u8>>(3),
                    r.get::<_, Vec<u8>>(4)
                ],
            )?;
        }
        lite.commit()?;
        Ok::<_, AuditError>(())
    })?;
    Ok(format!("sqlite://{}", path.display()))
}
