//! The background writer: usage records are queued and committed in batches by one thread with its
//! own connection ("group commit"). A request never waits for the disk; under load, hundreds of
//! records share one transaction, which is what lets SQLite keep up with thousands of requests per
//! second.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use rusqlite::{params, Connection};

use crate::{StoreError, UsageRow};

/// Most records in one transaction: bounds the time one commit holds the write lock.
const MAX_BATCH: usize = 1024;

/// How long the writer gathers records after the first one before committing. A transaction per
/// few milliseconds instead of per handful of records is what keeps the writer's CPU low under load;
/// settlement is already off the request path, so nobody waits for it (a flush waits at most this long).
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

pub(crate) enum Op {
    Usage(UsageRow),
    /// Acknowledged once everything queued before it is committed.
    Flush(mpsc::SyncSender<Result<(), String>>),
}

pub(crate) struct Writer {
    tx: Option<Sender<Op>>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    pub(crate) fn start(conn: Connection) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("moat-store-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Open {
                url: "writer".into(),
                message: e.to_string(),
            })?;
        Ok(Writer {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    pub(crate) fn send(&self, op: Op) -> Result<(), StoreError> {
        self.tx
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(op)
            .map_err(|_| StoreError::WriterGone)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread commit what is queued and exit.
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(mut conn: Connection, rx: Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut flush = matches!(first, Op::Flush(_));
        let mut batch = vec![first];
        if !flush {
            // Sleep rather than wait on the channel: a thread blocked in `recv_timeout` is woken by
            // every send, which at thousands of requests a second costs the request path a futex
            // wake and a context switch each; asleep, senders only push onto the queue.
            std::thread::sleep(GATHER);
        }
        while batch.len() < MAX_BATCH && !flush {
            match rx.try_recv() {
                Ok(op) => {
                    flush = matches!(op, Op::Flush(_));
                    batch.push(op);
                }
                Err(_) => break,
            }
        }
        let result = commit(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, records = batch.len(), "usage batch not committed");
        }
        for op in batch {
            if let Op::Flush(ack) = op {
                let _ = ack.send(result.clone());
            }
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Op]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO usage (request_id, ts, key_id, team_id, provider, model, prompt_tokens,
                                completion_tokens, cost_nanos, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (request_id) DO NOTHING",
        )?;
        for op in batch {
            if let Op::Usage(r) = op {
                insert.execute(params![
                    r.request_id,
                    r.ts,
                    r.key_id,
                    r.team_id,
                    r.provider,
                    r.model,
                    i64::try_from(r.prompt_tokens).unwrap_or(i64::MAX),
                    i64::try_from(r.completion_tokens).unwrap_or(i64::MAX),
                    i64::try_from(r.cost_nanos).unwrap_or(i64::MAX),
                    r.status,
                ])?;
            }
        }
    }
    tx.commit()
}
