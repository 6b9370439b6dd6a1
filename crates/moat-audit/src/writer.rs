//! The writer thread: takes queued records in order, numbers and chains them, and commits them in
//! batches (group commit) with checkpoints signed in the same transaction.
//!
//! The chain's head is read from the database inside each `BEGIN IMMEDIATE` transaction rather than
//! kept in memory, so several processes can append to one log (the gateway, and `moatd keys …` run
//! next to it) and the chain stays one unbroken sequence: SQLite's write lock orders them.
//!
//! A failed commit is retried, with the batch kept in memory, until it succeeds: an audit record is
//! never dropped because the disk was briefly busy or full. Meanwhile the bounded queue fills and
//! `append` applies backpressure (see [`crate::OnFull`]). Only at shutdown, after three failed
//! attempts, are the remaining records given up, counted and logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, TransactionBehavior};

use crate::db::{self, i64_of};
use crate::keys::sign_checkpoint;
use crate::record::{entry_hash, AuditRecord};

/// Answers a flush or checkpoint request once what was queued before it is committed.
pub(crate) type Ack = SyncSender<Result<(), String>>;

#[expect(
    clippy::large_enum_variant,
    reason = "records are nearly every message; boxing them would add an allocation per append"
)]
pub(crate) enum Op {
    Record(AuditRecord),
    Flush(Ack),
    /// Commit, then sign a checkpoint at the head even if neither N nor T has been reached.
    Checkpoint(Ack),
}

/// Counters shared with the [`crate::AuditLog`] handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub queued: AtomicU64,
    pub committed: AtomicU64,
    pub dropped: AtomicU64,
    pub blocked: AtomicU64,
    pub write_errors: AtomicU64,
    pub checkpoints: AtomicU64,
}

pub(crate) struct WriterConfig {
    pub commit_delay: Duration,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub max_batch: usize,
}

/// A record serialised, waiting for its sequence number.
pub(crate) struct Pending {
    pub ts_ms: i64,
    pub payload: String,
}

/// Where a chain is stored: one transaction appends a batch (SQLite here, PostgreSQL in `pg`).
pub(crate) trait Chain: Send {
    /// Chains `pending` onto the stored head in one transaction, signing a checkpoint every
    /// `checkpoint_every` records and one at the new head when `checkpoint_head`; returns how many
    /// checkpoints were signed.
    fn commit(&mut self, batch: Batch<'_>) -> Result<u64, String>;
}

/// What one commit appends, and the key that signs its checkpoints.
pub(crate) struct Batch<'a> {
    pub pending: &'a [Pending],
    pub checkpoint_head: bool,
    pub checkpoint_every: u64,
    pub key: &'a SigningKey,
    pub public_key: &'a [u8; 32],
}

/// The SQLite chain: the log's own file.
pub(crate) struct SqliteChain(pub Connection);

struct State {
    chain: Box<dyn Chain>,
    key: SigningKey,
    public_key: [u8; 32],
    cfg: WriterConfig,
    counters: Arc<Counters>,
    pending: Vec<Pending>,
    acks: Vec<Ack>,
    force_checkpoint: bool,
    last_checkpoint: Instant,
}

pub(crate) fn run(
    chain: Box<dyn Chain>,
    key: SigningKey,
    rx: Receiver<Op>,
    cfg: WriterConfig,
    counters: Arc<Counters>,
) {
    let public_key = key.verifying_key().to_bytes();
    let mut st = State {
        chain,
        key,
        public_key,
        cfg,
        counters,
        pending: Vec::new(),
        acks: Vec::new(),
        force_checkpoint: false,
        last_checkpoint: Instant::now(),
    };
    let mut closed = false;
    let mut failures = 0u32;
    loop {
        // New work is taken only once the previous batch is committed: that keeps records in order
        // and bounds what is held in memory to one batch plus the queue.
        if st.pending.is_empty() && st.acks.is_empty() && !closed {
            let wait = st
                .cfg
                .checkpoint_interval
                .saturating_sub(st.last_checkpoint.elapsed());
            match rx.recv_timeout(wait) {
                Ok(op) => st.take(op),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
            st.drain(&rx, &mut closed);
            // Linger a moment when the batch is not full: at moderate rates that turns one
            // transaction (a WAL page and an fsync) per record into one per few dozen. Sleeping
            // rather than waiting on the queue means appends meanwhile never have to wake this
            // thread. Flushes and shutdown skip it; under load batches are full and skip it too.
            let partial = !st.pending.is_empty() && st.pending.len() < st.cfg.max_batch;
            if partial && !closed && st.acks.is_empty() && !st.cfg.commit_delay.is_zero() {
                std::thread::sleep(st.cfg.commit_delay);
                st.drain(&rx, &mut closed);
            }
            if closed {
                // A last checkpoint at shutdown, so a clean stop leaves nothing unsigned.
                st.force_checkpoint = true;
            }
        }
        let due = st.last_checkpoint.elapsed() >= st.cfg.checkpoint_interval;
        if st.pending.is_empty() && !due && !st.force_checkpoint {
            st.answer(Ok(()));
        } else {
            match st.commit(due || st.force_checkpoint) {
                Ok(()) => {
                    failures = 0;
                    let n = st.pending.len() as u64;
                    st.counters.committed.fetch_add(n, Ordering::Relaxed);
                    st.pending.clear();
                    st.force_checkpoint = false;
                    if due {
                        st.last_checkpoint = Instant::now();
                    }
                    st.answer(Ok(()));
                }
                Err(e) => {
                    failures += 1;
                    st.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, records = st.pending.len(), attempt = failures,
                        "audit batch not committed; retrying");
                    st.answer(Err(e.to_string()));
                    if closed && failures >= 3 {
                        let lost = st.pending.len() as u64;
                        st.counters.dropped.fetch_add(lost, Ordering::Relaxed);
                        tracing::error!(
                            records = lost,
                            "audit records lost at shutdown: the log could not be written"
                        );
                        return;
                    }
                    let backoff = Duration::from_millis(50u64 << failures.min(5));
                    std::thread::sleep(backoff);
                }
            }
        }
        if closed && st.pending.is_empty() && !st.force_checkpoint {
            return;
        }
    }
}

impl State {
    /// Takes what is queued, up to a full batch, without waiting.
    fn drain(&mut self, rx: &Receiver<Op>, closed: &mut bool) {
        while !*closed && self.pending.len() < self.cfg.max_batch {
            match rx.try_recv() {
                Ok(op) => self.take(op),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => *closed = true,
            }
        }
    }

    fn take(&mut self, op: Op) {
        match op {
            Op::Record(r) => match r.payload() {
                Ok(payload) => self.pending.push(Pending {
                    ts_ms: r.ts_ms(),
                    payload,
                }),
                Err(e) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "audit record could not be encoded; dropped");
                }
            },
            Op::Flush(ack) => self.acks.push(ack),
            Op::Checkpoint(ack) => {
                self.force_checkpoint = true;
                self.acks.push(ack);
            }
        }
    }

    fn answer(&mut self, result: Result<(), String>) {
        for ack in self.acks.drain(..) {
            let _ = ack.send(result.clone());
        }
    }

    fn commit(&mut self, checkpoint_head: bool) -> Result<(), String> {
        let signed = self.chain.commit(Batch {
            pending: &self.pending,
            checkpoint_head,
            checkpoint_every: self.cfg.checkpoint_every,
            key: &self.key,
            public_key: &self.public_key,
        })?;
        self.counters.checkpoints.fetch_add(signed, Ordering::Relaxed);
        Ok(())
    }
}

impl Chain for SqliteChain {
    /// One transaction: the pending records chained onto the current head, a checkpoint every
    /// `checkpoint_every` records, and one at the new head when `checkpoint_head` (time, shutdown or
    /// asked for) and something is not yet covered.
    fn commit(&mut self, b: Batch<'_>) -> Result<u64, String> {
        self.commit_sqlite(&b).map_err(|e| e.to_string())
    }
}

impl SqliteChain {
    fn commit_sqlite(&mut self, b: &Batch<'_>) -> Result<u64, rusqlite::Error> {
        let tx = self.0.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut seq, mut prev) = db::head(&tx)?;
        let mut last_cp = db::last_checkpoint_seq(&tx)?;
        let mut signed = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO records (seq, ts_ms, prev_hash, hash, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut checkpoint = tx.prepare_cached(
                "INSERT OR IGNORE INTO checkpoints (seq, hash, ts_ms, public_key, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut sign = |seq: u64, hash: &[u8; 32]| -> Result<(), rusqlite::Error> {
                let sig = sign_checkpoint(b.key, seq, hash);
                checkpoint.execute(params![
                    i64_of(seq),
                    &hash[..],
                    crate::now_ms(),
                    &b.public_key[..],
                    &sig[..]
                ])?;
                signed += 1;
                Ok(())
            };
            for p in b.pending {
                seq += 1;
                let hash = entry_hash(seq, &prev, p.payload.as_bytes());
                insert.execute(params![i64_of(seq), p.ts_ms, &prev[..], &hash[..], p.payload])?;
                prev = hash;
                if b.checkpoint_every > 0 && seq >= last_cp.saturating_add(b.checkpoint_every) {
                    sign(seq, &prev)?;
                    last_cp = seq;
                }
            }
            if b.checkpoint_head && seq > last_cp {
                sign(seq, &prev)?;
            }
        }
        tx.commit()?;
        Ok(signed)
    }
}
