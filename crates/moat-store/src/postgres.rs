//! The PostgreSQL store, shared by several gateway nodes: the same tables as SQLite, reached through a
//! connection pool (deadpool over tokio-postgres) with static SQL only.
//!
//! The [`Store`] trait is synchronous (SQLite answers in microseconds in-process), so this store runs
//! its pool on a small runtime of its own and each call waits for its answer there. That keeps the
//! trait and every caller unchanged, and it is safe inside the gateway's async handlers: the caller
//! parks its thread on a channel, never enters the store's runtime. The request path touches the
//! database only when keys change (see `watch`); usage rows go through a batching writer (`writer`).

mod schema;
mod watch;
mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};

use crate::{redacted_url, KeyRecord, Limits, StoreError, UsageRow};

/// Settings of a PostgreSQL store beyond its URL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Where usage rows wait while PostgreSQL is unreachable (None: they are dropped and counted).
    pub spool_file: Option<PathBuf>,
    /// The most rows the spool holds; beyond it rows are dropped, counted and logged.
    pub spool_max_rows: u64,
    /// The most a store call waits for PostgreSQL.
    pub timeout: Duration,
    /// Connections in the pool.
    pub pool_size: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            spool_file: None,
            spool_max_rows: 200_000,
            timeout: Duration::from_secs(5),
            pool_size: 16,
        }
    }
}

/// State shared between the store handle and its background tasks.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    keys_version: AtomicI64,
    unreachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    spooled: AtomicU64,
    spool_dropped: AtomicU64,
}

impl Shared {
    /// Records whether the database answered; logs each change once.
    fn reachable(&self, ok: bool, error: Option<String>) {
        let was_unreachable = self.unreachable.swap(!ok, Ordering::AcqRel);
        if ok && was_unreachable {
            tracing::info!("PostgreSQL reachable again");
        } else if !ok && !was_unreachable {
            tracing::error!(error = error.as_deref().unwrap_or(""), "PostgreSQL unreachable");
        }
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = if ok { None } else { error };
    }
}

/// PostgreSQL-backed [`Store`].
pub struct PgStore {
    pool: Pool,
    shared: Arc<Shared>,
    writer: Option<tokio::sync::mpsc::UnboundedSender<writer::Op>>,
    writer_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
    url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() || e.as_db_error().is_none() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Postgres(e.to_string())
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: Option<i64>) -> Option<u64> {
    v.map(|v| u64::try_from(v).unwrap_or(0))
}

fn duplicate_or(e: tokio_postgres::Error, what: String) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Duplicate(what)
    } else {
        pg_error(e)
    }
}

/// Bumps the keys version and tells every listening node, inside the caller's transaction (the
/// notification is delivered only if it commits).
const BUMP: &str = "WITH b AS (UPDATE meta SET v = v + 1 WHERE k = 'keys_version' RETURNING v)
                    SELECT pg_notify('moat_keys', v::text) FROM b";

async fn read_version(pool: &Pool) -> Result<i64, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached("SELECT v FROM meta WHERE k = 'keys_version'")
        .await
        .map_err(pg_error)?;
    Ok(client
        .query_opt(&stmt, &[])
        .await
        .map_err(pg_error)?
        .map_or(0, |r| r.get(0)))
}

impl PgStore {
    /// Connects to `postgres://USER[:PASSWORD]@HOST:PORT/DB`, migrates the schema (safely when several
    /// nodes start at once), replays any usage spooled by a previous run and starts the writer and the
    /// key-change listener.
    pub fn open(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let label = redacted_url(url);
        let fail = |message: String| StoreError::Open {
            url: label.clone(),
            message,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| fail(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        config.application_name("moatd");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("moat-pg")
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let shared = Arc::new(Shared::default());
        let mut store = PgStore {
            pool: pool.clone(),
            shared: shared.clone(),
            writer: None,
            writer_done: Mutex::new(None),
            timeout: options.timeout,
            runtime: None,
            url: label.clone(),
        };
        let migrate_pool = pool.clone();
        let version = run_on(&runtime, options.timeout.saturating_mul(6), async move {
            let mut client = migrate_pool.get().await.map_err(pool_error)?;
            schema::migrate(&mut client).await?;
            read_version(&migrate_pool).await
        })
        .map_err(|e| fail(e.to_string()))?;
        shared.keys_version.store(version, Ordering::Release);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let spool = writer::Spool::new(options.spool_file.clone(), options.spool_max_rows);
        let (p, s) = (pool.clone(), shared.clone());
        runtime.spawn(async move {
            writer::run(p, s, rx, spool).await;
            let _ = done_tx.send(());
        });
        runtime.spawn(watch::run(config, pool, shared));
        store.writer = Some(tx);
        store.writer_done = Mutex::new(Some(done_rx));
        store.runtime = Some(runtime);
        Ok(store)
    }

    /// Runs one database step on the store's runtime and waits for it (at most the timeout).
    fn block<T: Send + 'static>(
        &self,
        step: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let runtime = self.runtime.as_ref().ok_or(StoreError::WriterGone)?;
        let result = run_on(runtime, self.timeout, step);
        if let Err(StoreError::Unavailable(e)) = &result {
            self.shared.reachable(false, Some(e.clone()));
        }
        result
    }
}

fn run_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    timeout: Duration,
    step: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let result = match tokio::time::timeout(timeout, step).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
        };
        let _ = tx.send(result);
    });
    rx.recv().map_err(|_| StoreError::WriterGone)?
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer insert (or spool) what is left; wait for that, bounded.
        drop(self.writer.take());
        let done = self
            .writer_done
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(done) = done {
            let _ = done.recv_timeout(self.timeout.saturating_mul(2));
        }
        if let Some(rt) = self.runtime.take() {
            // Not `drop`: that would block, which is not allowed inside the caller's async context.
            rt.shutdown_background();
        }
    }
}

fn limits_of(row: &Row, base: usize) -> Limits {
    Limits {
        budget_nanos: u64_of(row.get(base)),
        budget_period: row.get(base + 1),
        rpm: row
            .get::<_, Option<i64>>(base + 2)
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
        tpm: u64_of(row.get(base + 3)),
    }
}

fn key_of(r: &Row) -> KeyRecord {
    let models: String = r.get(9);
    KeyRecord {
        id: r.get(0),
        hash: r.get(1),
        prefix: r.get(2),
        name: r.get(3),
        team_id: r.get(4),
        limits: limits_of(r, 5),
        models: models
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        local_only: r.get(10),
        expires_at: r.get(11),
        revoked_at: r.get(12),
        created_at: r.get(13),
    }
}

fn usage_of(r: &Row) -> UsageRow {
    UsageRow {
        request_id: r.get(0),
        ts: r.get(1),
        key_id: r.get(2),
        team_id: r.get(3),
        provider: r.get(4),
        model: r.get(5),
        prompt_tokens: u64_of(r.get(6)).unwrap_or(0),
        completion_tokens: u64_of(r.get(7)).unwrap_or(0),
        cost_nanos: u64_of(r.get(8)).unwrap_or(0),
        status: r.get(9),
    }
}

mod store_impl;
