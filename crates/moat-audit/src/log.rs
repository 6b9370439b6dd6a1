//! [`AuditLog`]: the handle the gateway and the admin commands append through.
//!
//! `append` only puts the record on a bounded queue; the writer thread (see `writer`) does the
//! hashing, signing and disk work. What a crash can lose is therefore what is queued or in the batch
//! being committed: at most `queue_capacity + max_batch` records (docs/AUDIT.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::db;
use crate::keys;
use crate::prune::{self, PruneReport};
use crate::record::{AdminRecord, AuditRecord, RequestRecord};
use crate::writer::{self, Counters, Op, WriterConfig};
use crate::AuditError;

/// What `append` does when the queue is full (the disk has fallen behind by a whole queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFull {
    /// Wait for room: the request that produced the record waits too, so nothing goes unrecorded.
    /// Counted in [`AuditStats::blocked`].
    #[default]
    Block,
    /// Drop the record, count it in [`AuditStats::dropped`] and log an error line: availability over
    /// completeness, for deployments that prefer it.
    Drop,
}

/// Tunables. `Default` matches the `[audit]` config defaults.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Sign a checkpoint every this many records (`[audit] checkpoint_every`, default 1000; 0 = only
    /// by time).
    pub checkpoint_every: u64,
    /// ...and at least this often while records arrive (`[audit] checkpoint_secs`, default 60 s).
    pub checkpoint_interval: Duration,
    /// Prune records older than this many days (`[audit] retention_days`; None keeps everything).
    pub retention_days: Option<u64>,
    /// Keep request and response bodies (`[audit] bodies`, default false). When false, bodies handed
    /// to [`AuditLog::append_request`] are discarded before they are queued.
    pub record_bodies: bool,
    /// Records the queue holds before `on_full` applies (default 4096).
    pub queue_capacity: usize,
    /// Most records per transaction (default 1024): bounds how long one commit holds the write lock.
    pub max_batch: usize,
    /// How long the writer waits for more records before committing a batch that is not full
    /// (default 20 ms): at 5,000 records/s that is ~100 records per transaction instead of ~25, which
    /// halves the writer's CPU per record. It never adds to what a crash can lose (that is bounded by
    /// `max_batch`), and a `flush` queued before the wait skips it.
    pub commit_delay: Duration,
    pub on_full: OnFull,
    /// Which chain this process appends to in a PostgreSQL log (`[cluster] node_id`; default `local`).
    /// A SQLite log has one chain and ignores it.
    pub node_id: String,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            retention_days: None,
            record_bodies: false,
            queue_capacity: 4096,
            max_batch: 1024,
            commit_delay: Duration::from_millis(20),
            on_full: OnFull::Block,
            node_id: "local".to_string(),
        }
    }
}

impl AuditSettings {
    /// From the `[audit]` config section's values, each None meaning "the default".
    pub fn from_config(
        bodies: bool,
        checkpoint_every: Option<u64>,
        checkpoint_secs: Option<u64>,
        retention_days: Option<u64>,
    ) -> AuditSettings {
        let d = AuditSettings::default();
        AuditSettings {
            checkpoint_every: checkpoint_every.unwrap_or(d.checkpoint_every),
            checkpoint_interval: checkpoint_secs.map_or(d.checkpoint_interval, Duration::from_secs),
            retention_days,
            record_bodies: bodies,
            ..d
        }
    }

    /// The most acknowledged records a crash (kill -9, power loss) can lose: the queue plus the batch
    /// being committed. Committed batches are fsynced.
    pub fn max_crash_loss(&self) -> usize {
        self.queue_capacity.max(1) + self.max_batch.max(1)
    }
}

/// Counters since the log was opened (for `/metrics` and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records accepted by `append`.
    pub queued: u64,
    /// Records committed to disk.
    pub committed: u64,
    /// Records lost: dropped on a full queue (`OnFull::Drop`), unencodable, or unwritable at
    /// shutdown. Each loss is also logged.
    pub dropped: u64,
    /// Appends that had to wait for room in the queue.
    pub blocked: u64,
    /// Failed commit attempts (each retried).
    pub write_errors: u64,
    /// Checkpoints signed.
    pub checkpoints: u64,
}

/// The audit log, open for appending. Cheap to share (`Arc<AuditLog>`); dropping it commits what is
/// queued, signs a final checkpoint and waits for the writer.
pub struct AuditLog {
    tx: Option<SyncSender<Op>>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    settings: AuditSettings,
    path: PathBuf,
    public_key: [u8; 32],
    /// Pruning's own connection, so a long prune never holds up the writer's batches in memory.
    admin: Mutex<Option<rusqlite::Connection>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log at `url` (`sqlite:///path/audit.db`) with the signing key in
    /// `key_file` (created, mode 0600, on first start; refused if group or others can read it), and
    /// starts the writer thread. Fails if the key is not the one the log was started with.
    pub fn open(url: &str, key_file: &Path, settings: AuditSettings) -> Result<AuditLog, AuditError> {
        if crate::pg::is_postgres(url) {
            return AuditLog::open_postgres(url, key_file, settings);
        }
        let path = db::path_of(url)?;
        let key = keys::load_or_create(key_file)?;
        let public_key = key.verifying_key().to_bytes();
        let conn = db::open_rw(&path)?;
        match db::meta(&conn, "public_key")? {
            Some(known) if known != hex::encode(public_key) => {
                return Err(AuditError::KeyMismatch {
                    key_file: key_file.display().to_string(),
                    expected: known,
                })
            }
            Some(_) => {}
            None => db::set_meta(&conn, "public_key", &hex::encode(public_key))?,
        }
        let writer_conn = db::open_rw(&path)?;
        AuditLog::start(
            Box::new(writer::SqliteChain(writer_conn)),
            key,
            public_key,
            settings,
            path,
            Some(conn),
        )
    }

    /// The PostgreSQL log: this node's chain among the others (see `pg`).
    fn open_postgres(url: &str, key_file: &Path, settings: AuditSettings) -> Result<AuditLog, AuditError> {
        let key = keys::load_or_create(key_file)?;
        let public_key = key.verifying_key().to_bytes();
        let chain = crate::pg::PgChain::open(url, &settings.node_id, &hex::encode(public_key), key_file)?;
        let label = match url.split_once('@') {
            Some((_, host)) => format!("postgres://…@{host}#{}", settings.node_id),
            None => format!("{url}#{}", settings.node_id),
        };
        AuditLog::start(
            Box::new(chain),
            key,
            public_key,
            settings,
            PathBuf::from(label),
            None,
        )
    }

    fn start(
        chain: Box<dyn writer::Chain>,
        key: ed25519_dalek::SigningKey,
        public_key: [u8; 32],
        settings: AuditSettings,
        path: PathBuf,
        admin: Option<rusqlite::Connection>,
    ) -> Result<AuditLog, AuditError> {
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::sync_channel(settings.queue_capacity.max(1));
        let cfg = WriterConfig {
            commit_delay: settings.commit_delay,
            checkpoint_every: settings.checkpoint_every,
            checkpoint_interval: settings.checkpoint_interval,
            max_batch: settings.max_batch.max(1),
        };
        let c = counters.clone();
        let handle = std::thread::Builder::new()
            .name("moat-audit-writer".into())
            .spawn(move || writer::run(chain, key, rx, cfg, c))
            .map_err(|e| AuditError::Open {
                path: path.display().to_string(),
                message: format!("starting the writer: {e}"),
            })?;
        Ok(AuditLog {
            tx: Some(tx),
            handle: Some(handle),
            counters,
            settings,
            path,
            public_key,
            admin: Mutex::new(admin),
        })
    }

    /// Queues a record. Returns at once unless the queue is full (see [`OnFull`]); errors only if the
    /// writer thread is gone.
    pub fn append(&self, record: AuditRecord) -> Result<(), AuditError> {
        let tx = self.tx.as_ref().ok_or(AuditError::WriterGone)?;
        match tx.try_send(Op::Record(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(op)) => match self.settings.on_full {
                OnFull::Block => {
                    let n = self.counters.blocked.fetch_add(1, Ordering::Relaxed);
                    if n % 1000 == 0 {
                        tracing::warn!(
                            times = n + 1,
                            "audit queue full: appends are waiting for the disk"
                        );
                    }
                    tx.send(op).map_err(|_| AuditError::WriterGone)?;
                }
                OnFull::Drop => {
                    let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    if n % 1000 == 0 {
                        tracing::error!(
                            dropped = n + 1,
                            "audit queue full: records dropped (on_full = drop)"
                        );
                    }
                    return Ok(());
                }
            },
            Err(TrySendError::Disconnected(_)) => return Err(AuditError::WriterGone),
        }
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Queues a request record, without its bodies unless `record_bodies` is set.
    pub fn append_request(&self, mut record: RequestRecord) -> Result<(), AuditError> {
        if !self.settings.record_bodies {
            record.bodies = None;
        }
        self.append(AuditRecord::Request(record))
    }

    /// Queues an admin record.
    pub fn append_admin(&self, record: AdminRecord) -> Result<(), AuditError> {
        self.append(AuditRecord::Admin(record))
    }

    fn round_trip(&self, make: fn(writer::Ack) -> Op) -> Result<(), AuditError> {
        let tx = self.tx.as_ref().ok_or(AuditError::WriterGone)?;
        let (ack, done) = mpsc::sync_channel(1);
        tx.send(make(ack)).map_err(|_| AuditError::WriterGone)?;
        done.recv()
            .map_err(|_| AuditError::WriterGone)?
            .map_err(AuditError::Write)
    }

    /// Waits until everything appended before this call is committed.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.round_trip(Op::Flush)
    }

    /// Commits what is queued and signs a checkpoint at the head now.
    pub fn checkpoint_now(&self) -> Result<(), AuditError> {
        self.round_trip(Op::Checkpoint)
    }

    /// Deletes records older than `retention_days` (relative to `now_ms`), but only up to and
    /// including a checkpointed record, leaving that record's (seq, hash) as the anchor the rest
    /// chains onto. Appends an `audit.prune` admin record. Does nothing without a retention setting.
    pub fn prune(&self, now_ms: i64) -> Result<PruneReport, AuditError> {
        let Some(days) = self.settings.retention_days else {
            return Ok(PruneReport::default());
        };
        let cutoff =
            now_ms.saturating_sub(i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX));
        let report = {
            let mut guard = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => return Err(AuditError::Unsupported("pruning")),
            };
            prune::prune_before(conn, cutoff)?
        };
        if let Some(through) = report.through_seq {
            self.append_admin(AdminRecord {
                ts_ms: crate::now_ms(),
                actor: "retention".into(),
                action: "audit.prune".into(),
                target: format!("seq 1..={through}"),
                details: serde_json::json!({
                    "deleted": report.deleted,
                    "through_seq": through,
                    "cutoff": crate::format_ms(cutoff),
                    "retention_days": days,
                }),
            })?;
            self.flush()?;
        }
        Ok(report)
    }

    pub fn stats(&self) -> AuditStats {
        let c = &self.counters;
        AuditStats {
            queued: c.queued.load(Ordering::Relaxed),
            committed: c.committed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            blocked: c.blocked.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
        }
    }

    pub fn settings(&self) -> &AuditSettings {
        &self.settings
    }

    /// The checkpoint verifying key (hex), to publish or keep with exported checkpoints.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key)
    }

    pub(crate) fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the queue makes the writer commit what is left, sign a last checkpoint and exit.
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::error!(dropped, "audit log closed; records were lost while it was open");
        }
    }
}
