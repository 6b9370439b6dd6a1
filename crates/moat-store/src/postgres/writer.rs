//! The PostgreSQL usage writer: rows are queued, gathered for a few milliseconds and inserted with one
//! statement per batch (`UNNEST` of arrays, `ON CONFLICT (request_id) DO NOTHING`, so a row written
//! twice counts once). While PostgreSQL does not answer, batches go to a bounded local spool file
//! instead, and the spool is replayed, oldest first, as soon as an insert succeeds again. Replaying is
//! idempotent for the same reason inserting is, so a spool replayed twice (a crash mid-replay) is
//! harmless. A spool left by a previous run is replayed at start.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{pg_error, Shared};
use crate::{StoreError, UsageRow};

/// Most rows per insert.
const MAX_BATCH: usize = 1024;
/// How long the writer gathers rows after the first before inserting (as the SQLite writer does).
const GATHER: Duration = Duration::from_millis(5);
/// How often a non-empty spool is retried while no new rows arrive.
const RETRY: Duration = Duration::from_secs(1);

pub(super) enum Op {
    Usage(UsageRow),
    /// Answered once everything queued before it is in PostgreSQL (an error while rows are spooled).
    Flush(std::sync::mpsc::SyncSender<Result<(), String>>),
}

const INSERT: &str = "INSERT INTO usage (request_id, ts, key_id, team_id, provider, model, prompt_tokens,
                                         completion_tokens, cost_nanos, status)
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::bigint[], $8::bigint[], $9::bigint[], $10::text[])
     ON CONFLICT (request_id) DO NOTHING";

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Inserts rows in one statement.
pub(super) async fn insert(pool: &Pool, rows: &[&UsageRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let stmt = client.prepare_cached(INSERT).await.map_err(pg_error)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    let ts: Vec<i64> = rows.iter().map(|r| r.ts).collect();
    let keys: Vec<Option<&str>> = rows.iter().map(|r| r.key_id.as_deref()).collect();
    let teams: Vec<Option<&str>> = rows.iter().map(|r| r.team_id.as_deref()).collect();
    let providers: Vec<&str> = rows.iter().map(|r| r.provider.as_str()).collect();
    let models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    let prompt: Vec<i64> = rows.iter().map(|r| i64_of(r.prompt_tokens)).collect();
    let completion: Vec<i64> = rows.iter().map(|r| i64_of(r.completion_tokens)).collect();
    let cost: Vec<i64> = rows.iter().map(|r| i64_of(r.cost_nanos)).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    client
        .execute(
            &stmt,
            &[
                &ids,
                &ts,
                &keys,
                &teams,
                &providers,
                &models,
                &prompt,
                &completion,
                &cost,
                &status,
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// The local spool: one JSON row per line, appended while PostgreSQL is away.
pub(super) struct Spool {
    path: Option<PathBuf>,
    max_rows: u64,
    rows: u64,
}

impl Spool {
    pub(super) fn new(path: Option<PathBuf>, max_rows: u64) -> Spool {
        let rows = path
            .as_ref()
            .and_then(|p| std::fs::File::open(p).ok())
            .map_or(0, |f| std::io::BufReader::new(f).lines().count() as u64);
        Spool { path, max_rows, rows }
    }

    /// Appends rows; those beyond `max_rows` are dropped (and returned as a count). Without a spool
    /// file every row is dropped.
    fn append(&mut self, rows: &[UsageRow]) -> u64 {
        let Some(path) = &self.path else {
            return rows.len() as u64;
        };
        let room = self.max_rows.saturating_sub(self.rows) as usize;
        let keep = &rows[..rows.len().min(room)];
        let write = || -> std::io::Result<()> {
            let mut f = moat_fs::open_append(path)?;
            let mut text = String::new();
            for r in keep {
                text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
                text.push('\n');
            }
            f.write_all(text.as_bytes())?;
            f.sync_data()
        };
        match write() {
            Ok(()) => {
                self.rows += keep.len() as u64;
                (rows.len() - keep.len()) as u64
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "usage spool not written");
                rows.len() as u64
            }
        }
    }

    fn read(&self) -> Vec<UsageRow> {
        let Some(f) = self.path.as_ref().and_then(|p| std::fs::File::open(p).ok()) else {
            return Vec::new();
        };
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    fn clear(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
        self.rows = 0;
    }
}

/// The writer task: runs until every sender is gone, then writes (or spools) what is left.
pub(super) async fn run(pool: Pool, shared: Arc<Shared>, mut rx: UnboundedReceiver<Op>, mut spool: Spool) {
    shared.spooled.store(spool.rows, Ordering::Relaxed);
    let mut open = true;
    while open || spool.rows > 0 {
        let mut batch = Vec::new();
        let mut acks = Vec::new();
        let first = if spool.rows > 0 {
            // Wake up now and then to retry the spool even when no new rows arrive.
            tokio::time::timeout(RETRY, rx.recv())
                .await
                .map_or(Next::Tick, Next::from)
        } else {
            Next::from(rx.recv().await)
        };
        match first {
            Next::Closed => {
                open = false;
                if spool.rows > 0 && !replay(&pool, &shared, &mut spool).await {
                    break;
                }
                continue;
            }
            Next::Tick => {}
            Next::Op(Op::Usage(r)) => {
                batch.push(r);
                tokio::time::sleep(GATHER).await;
            }
            Next::Op(Op::Flush(ack)) => acks.push(ack),
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Op::Usage(r)) => batch.push(r),
                Ok(Op::Flush(ack)) => {
                    acks.push(ack);
                    break;
                }
                Err(_) => break,
            }
        }
        if spool.rows > 0 {
            replay(&pool, &shared, &mut spool).await;
        }
        let result = if spool.rows == 0 {
            let refs: Vec<&UsageRow> = batch.iter().collect();
            insert(&pool, &refs).await
        } else {
            Err(StoreError::Unavailable("rows are waiting in the spool".into()))
        };
        let answer = match result {
            Ok(()) => {
                shared.reachable(true, None);
                Ok(())
            }
            Err(e) => {
                let dropped = spool.append(&batch);
                shared.reachable(false, Some(e.to_string()));
                if !batch.is_empty() {
                    tracing::warn!(rows = batch.len(), error = %e, "PostgreSQL unreachable: usage rows spooled locally");
                }
                if dropped > 0 {
                    shared.spool_dropped.fetch_add(dropped, Ordering::Relaxed);
                    tracing::error!(
                        rows = dropped,
                        "usage spool full: rows dropped ([store] spool_max_rows)"
                    );
                }
                Err(format!("usage rows are spooled locally: {e}"))
            }
        };
        shared.spooled.store(spool.rows, Ordering::Relaxed);
        for ack in acks {
            let _ = ack.send(answer.clone());
        }
    }
}

enum Next {
    Op(Op),
    Closed,
    Tick,
}

impl From<Option<Op>> for Next {
    fn from(op: Option<Op>) -> Next {
        op.map_or(Next::Closed, Next::Op)
    }
}

/// Inserts the spool's rows; true (and the spool emptied) when all went in.
async fn replay(pool: &Pool, shared: &Shared, spool: &mut Spool) -> bool {
    let rows = spool.read();
    for chunk in rows.chunks(MAX_BATCH) {
        let refs: Vec<&UsageRow> = chunk.iter().collect();
        if let Err(e) = insert(pool, &refs).await {
            shared.reachable(false, Some(e.to_string()));
            return false;
        }
    }
    tracing::info!(rows = rows.len(), "usage spool replayed into PostgreSQL");
    spool.clear();
    shared.reachable(true, None);
    shared.spooled.store(0, Ordering::Relaxed);
    true
}
