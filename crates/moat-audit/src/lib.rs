//! moat's tamper-evident audit log: one record per request and per admin action, chained by SHA-256,
//! stored append-only in its own SQLite file (or, for a cluster, in PostgreSQL with one chain per
//! node), with Ed25519-signed checkpoints.
//!
//! Appending is off the hot path: [`AuditLog::append`] only queues the record; a writer thread
//! gives it the next sequence number, chains it to the previous record's hash and commits records in
//! batches ("group commit"). Every `checkpoint_every` records (and every `checkpoint_interval`) the
//! writer signs (sequence, hash) with the gateway's key. [`verify`] walks the chain and names the first
//! record that was edited, deleted, inserted or moved, or a tail cut off behind a checkpoint.
//! docs/AUDIT.md says what this proves and what it does not.
//!
//! ```no_run
//! use moat_audit::{AuditLog, AuditSettings, AdminRecord};
//! # fn main() -> Result<(), moat_audit::AuditError> {
//! let log = AuditLog::open(
//!     "sqlite:///var/lib/moat/audit.db",
//!     std::path::Path::new("/var/lib/moat/audit_signing_key"),
//!     AuditSettings::default(),
//! )?;
//! log.append_admin(AdminRecord {
//!     ts_ms: moat_audit::now_ms(),
//!     actor: "cli".into(),
//!     action: "key.revoke".into(),
//!     target: "key_3f2a9c1b0d4e".into(),
//!     details: serde_json::json!({}),
//! })?;
//! log.flush()?;
//! let report = moat_audit::verify("sqlite:///var/lib/moat/audit.db", None, None)?;
//! assert!(report.is_ok(), "{}", report.summary());
//! # Ok(()) }
//! ```

mod db;
mod export;
mod keys;
mod log;
mod pg;
mod prune;
mod recent;
mod record;
mod verify;
mod writer;

pub use export::{export_checkpoints, export_records, list_checkpoints, read_checkpoint_file, Checkpoint};
pub use keys::public_key_of;
pub use log::{AuditLog, AuditSettings, AuditStats, OnFull};
pub use prune::PruneReport;
pub use recent::Recent;
pub use record::{entry_hash, AdminRecord, AuditRecord, Bodies, PolicyDecision, RequestRecord, GENESIS_HASH};
pub use verify::{verify, KeySource, Problem, ProblemKind, VerifyReport};

/// What can go wrong opening, writing or reading the log. Verification findings are not errors:
/// they are in the [`VerifyReport`].
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log url {0:?} is not sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    BadUrl(String),
    #[error("audit log in PostgreSQL: {0}")]
    Postgres(String),
    #[error("{0} is not available for an audit log in PostgreSQL")]
    Unsupported(&'static str),
    #[error("audit log {path}: {message}")]
    Open { path: String, message: String },
    #[error("no audit log at {0}")]
    Missing(String),
    #[error("audit database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("audit signing key {path}: {message}")]
    Key { path: String, message: String },
    #[error(
        "audit signing key {0} is readable by group or others; make it private (chmod 600) or remove it"
    )]
    KeyPermissions(String),
    #[error(
        "audit signing key {key_file} is not the key this log was started with (public key {expected}); \
         restore that key, or move the log aside to start a new one"
    )]
    KeyMismatch { key_file: String, expected: String },
    #[error("checkpoint file {path}: {message}")]
    CheckpointFile { path: String, message: String },
    #[error("the audit writer has stopped")]
    WriterGone,
    #[error("audit write failed: {0}")]
    Write(String),
    #[error("date {0:?}: expected YYYY-MM-DD or an RFC 3339 time")]
    BadDate(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The chains of a log, each readable as a SQLite log (see [`readable_chains`]).
#[derive(Debug)]
pub struct ReadableChains {
    /// (node id, `sqlite://` URL) per chain.
    pub chains: Vec<(String, String)>,
    /// Where snapshots of a PostgreSQL log live; removed when this is dropped.
    _dir: Option<tempfile::TempDir>,
}

/// The chains a log holds: for a SQLite log, itself (named `local`); for PostgreSQL, a snapshot of
/// every node's chain in a temporary directory that lives as long as the result. Verify, export and
/// list each chain through its URL.
pub fn readable_chains(url: &str) -> Result<ReadableChains, AuditError> {
    if !pg::is_postgres(url) {
        return Ok(ReadableChains {
            chains: vec![("local".to_string(), url.to_string())],
            _dir: None,
        });
    }
    let dir = tempfile::Builder::new().prefix("moat-audit-").tempdir()?;
    let mut chains = Vec::new();
    for node in pg::chains(url)? {
        let local = pg::snapshot(url, &node, dir.path())?;
        chains.push((node, local));
    }
    Ok(ReadableChains {
        chains,
        _dir: Some(dir),
    })
}

/// Verifies every chain of the log at `url` (one for SQLite, one per node for PostgreSQL). The
/// checkpoint file and key file are this node's (`node`): other nodes' chains are checked against
/// the key recorded with them.
pub fn verify_all(
    url: &str,
    node: &str,
    checkpoint_file: Option<&std::path::Path>,
    key_file: Option<&std::path::Path>,
) -> Result<Vec<(String, VerifyReport)>, AuditError> {
    let readable = readable_chains(url)?;
    let local = !pg::is_postgres(url);
    readable
        .chains
        .iter()
        .map(|(name, chain_url)| {
            let mine = local || name == node;
            let report = verify(
                chain_url,
                checkpoint_file.filter(|_| mine),
                key_file.filter(|_| mine),
            )?;
            Ok((name.clone(), report))
        })
        .collect()
}

/// The current time in Unix milliseconds (UTC), the unit of every record's `ts_ms`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time into Unix milliseconds, for `--since`.
pub fn parse_date(text: &str) -> Result<i64, AuditError> {
    let bad = || AuditError::BadDate(text.to_string());
    let t = text.trim();
    let at = if t.len() == 10 {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(t, format)
            .map_err(|_| bad())?
            .midnight()
            .assume_utc()
    } else {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(|_| bad())?
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-11-01T12:00:00.123Z`), for people.
pub fn format_ms(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(format).unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_utc_milliseconds() {
        assert_eq!(parse_date("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_date("1970-01-01T00:00:01.5Z").unwrap(), 1_500);
        assert_eq!(parse_date("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_date("yesterday").is_err());
        assert!(parse_date("2026-13-01").is_err());
        assert_eq!(format_ms(1_500), "1970-01-01T00:00:01.500Z");
    }
}
