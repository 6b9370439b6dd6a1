//! The SQLite file: its schema, how connections are opened, and the few queries shared by the writer,
//! the verifier, export and pruning.
//!
//! Three tables: `records` (seq, ts_ms, prev_hash, hash, payload), `checkpoints` (seq, hash, ts_ms,
//! public_key, signature) and `meta` (format version, the log's public key, and the anchor left by
//! pruning). Rows are only ever inserted, except that pruning deletes a checkpointed prefix.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::record::GENESIS_HASH;
use crate::AuditError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    ts_ms INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL
);
INSERT OR IGNORE INTO meta (k, v) VALUES ('format', '1');
";

/// The file named by `sqlite:///abs/path.db` or `sqlite://relative.db`.
pub(crate) fn path_of(url: &str) -> Result<PathBuf, AuditError> {
    match url.strip_prefix("sqlite://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(AuditError::BadUrl(url.to_string())),
    }
}

fn open_error(path: &Path, e: impl ToString) -> AuditError {
    AuditError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A read-write connection, creating the file and schema if needed.
///
/// `synchronous = FULL`: each group commit is fsynced, so a committed record survives a power loss
/// too, not only a process crash; batching makes that one fsync per batch, not per record.
pub(crate) fn open_rw(path: &Path) -> Result<Connection, AuditError> {
    // Created private before SQLite opens it, so its `-wal` and `-shm` files are private too.
    moat_fs::create_parent(path).map_err(|e| open_error(path, e))?;
    moat_fs::touch(path).map_err(|e| open_error(path, e))?;
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    let configure = || -> Result<(), rusqlite::Error> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)
    };
    configure().map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// A read-only connection to an existing log (verify, export): never creates anything.
pub(crate) fn open_ro(url: &str) -> Result<Connection, AuditError> {
    let path = path_of(url)?;
    if !path.exists() {
        return Err(AuditError::Missing(path.display().to_string()));
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| open_error(&path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let has_records: bool = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'",
            [],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if !has_records {
        return Err(open_error(&path, "not an audit log (no records table)"));
    }
    Ok(conn)
}

pub(crate) fn meta(conn: &Connection, k: &str) -> Result<Option<String>, rusqlite::Error> {
    conn.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
        .optional()
}

pub(crate) fn set_meta(conn: &Connection, k: &str, v: &str) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        [k, v],
    )?;
    Ok(())
}

/// Any stored hash as 32 bytes. A tampered value of another length cannot be chained onto as is; the
/// writer still needs *some* predecessor hash, and the verifier reports the damage regardless.
pub(crate) fn hash32(bytes: &[u8]) -> [u8; 32] {
    <[u8; 32]>::try_from(bytes).unwrap_or_else(|_| {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).into()
    })
}

/// The last record of a pruned prefix, kept so the remainder still chains onto something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub seq: u64,
    pub hash: [u8; 32],
}

pub(crate) fn anchor(conn: &Connection) -> Result<Option<Anchor>, rusqlite::Error> {
    let seq = meta(conn, "anchor_seq")?.and_then(|s| s.parse::<u64>().ok());
    let hash = meta(conn, "anchor_hash")?.and_then(|h| hex::decode(h).ok());
    Ok(match (seq, hash) {
        (Some(seq), Some(hash)) => Some(Anchor {
            seq,
            hash: hash32(&hash),
        }),
        _ => None,
    })
}

/// The end of the chain: the last record, else the anchor, else the genesis (seq 0).
pub(crate) fn head(conn: &Connection) -> Result<(u64, [u8; 32]), rusqlite::Error> {
    let last = conn
        .query_row(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )
        .optional()?;
    if let Some((seq, hash)) = last {
        return Ok((u64::try_from(seq).unwrap_or(0), hash32(&hash)));
    }
    Ok(match anchor(conn)? {
        Some(a) => (a.seq, a.hash),
        None => (0, GENESIS_HASH),
    })
}

pub(crate) fn last_checkpoint_seq(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let seq: Option<i64> = conn.query_row("SELECT MAX(seq) FROM checkpoints", [], |r| r.get(0))?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

/// A payload's bytes whether stored as TEXT or (after tampering) as a BLOB or a number.
pub(crate) fn bytes_of(v: rusqlite::types::ValueRef<'_>) -> std::borrow::Cow<'_, [u8]> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => std::borrow::Cow::Borrowed(b),
        ValueRef::Null => std::borrow::Cow::Borrowed(&[]),
        ValueRef::Integer(i) => std::borrow::Cow::Owned(i.to_string().into_bytes()),
        ValueRef::Real(f) => std::borrow::Cow::Owned(f.to_string().into_bytes()),
    }
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
