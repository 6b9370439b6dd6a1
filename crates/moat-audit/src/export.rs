//! Getting records and checkpoints out: JSON Lines for records (`moatd audit export`) and for
//! checkpoints (`moatd audit checkpoints --export`), and reading a checkpoint file back for
//! `verify --checkpoint`.
//!
//! A record line is `{"seq":…,"time":"…","prev_hash":"hex","hash":"hex","record":{…}}` where `record`
//! is the stored payload byte for byte, so anyone can recompute `hash` from the line (see
//! `record.rs` for the formula). A checkpoint line is
//! `{"seq":…,"hash":"hex","ts_ms":…,"time":"…","public_key":"hex","signature":"hex"}`; each line stands
//! alone, so files can be appended to and concatenated.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::db::{self, u64_of};
use crate::AuditError;

/// A signed statement "record `seq` had hash `hash`". Byte fields stay as stored, even if a tampered
/// database holds the wrong length: the verifier reports that rather than failing to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: Vec<u8>,
    pub ts_ms: i64,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine {
    seq: u64,
    hash: String,
    ts_ms: i64,
    #[serde(default)]
    time: String,
    public_key: String,
    signature: String,
}

impl Checkpoint {
    /// One JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        let line = CheckpointLine {
            seq: self.seq,
            hash: hex::encode(&self.hash),
            ts_ms: self.ts_ms,
            time: crate::format_ms(self.ts_ms),
            public_key: hex::encode(&self.public_key),
            signature: hex::encode(&self.signature),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// Every checkpoint in the log, oldest first.
pub fn list_checkpoints(url: &str) -> Result<Vec<Checkpoint>, AuditError> {
    checkpoints_of(&db::open_ro(url)?)
}

pub(crate) fn checkpoints_of(conn: &rusqlite::Connection) -> Result<Vec<Checkpoint>, AuditError> {
    let mut stmt =
        conn.prepare("SELECT seq, hash, ts_ms, public_key, signature FROM checkpoints ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok(Checkpoint {
            seq: u64_of(r.get(0)?),
            hash: r.get(1)?,
            ts_ms: r.get(2)?,
            public_key: r.get(3)?,
            signature: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes every checkpoint as JSON Lines; returns how many.
pub fn export_checkpoints(url: &str, out: &mut dyn Write) -> Result<u64, AuditError> {
    let cps = list_checkpoints(url)?;
    for cp in &cps {
        writeln!(out, "{}", cp.to_json_line())?;
    }
    out.flush()?;
    Ok(cps.len() as u64)
}

/// Reads a checkpoint file written by [`export_checkpoints`] (blank lines ignored).
pub fn read_checkpoint_file(path: &Path) -> Result<Vec<Checkpoint>, AuditError> {
    let fail = |message: String| AuditError::CheckpointFile {
        path: path.display().to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| fail(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| fail(format!("line {}: {what}", n + 1));
        let l: CheckpointLine = serde_json::from_str(&line).map_err(|e| bad(&e.to_string()))?;
        out.push(Checkpoint {
            seq: l.seq,
            hash: hex::decode(&l.hash).map_err(|_| bad("hash is not hex"))?,
            ts_ms: l.ts_ms,
            public_key: hex::decode(&l.public_key).map_err(|_| bad("public_key is not hex"))?,
            signature: hex::decode(&l.signature).map_err(|_| bad("signature is not hex"))?,
        });
    }
    Ok(out)
}

#[derive(Serialize)]
struct RecordLine<'a> {
    seq: u64,
    time: String,
    prev_hash: String,
    hash: String,
    record: &'a serde_json::value::RawValue,
}

/// Writes the records with `ts_ms >= since_ms` as JSON Lines, in chain order; returns how many.
/// Exporting does not verify: run `verify` for that. A payload that is no longer valid JSON (it was
/// edited) is exported as a JSON string under `"record_text"` so the line stays parseable.
pub fn export_records(url: &str, since_ms: i64, out: &mut dyn Write) -> Result<u64, AuditError> {
    let conn = db::open_ro(url)?;
    let mut stmt = conn
        .prepare("SELECT seq, ts_ms, prev_hash, hash, payload FROM records WHERE ts_ms >= ?1 ORDER BY seq")?;
    let mut rows = stmt.query([since_ms])?;
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        let seq = u64_of(row.get(0)?);
        let ts_ms: i64 = row.get(1)?;
        let prev: Vec<u8> = row.get(2)?;
        let hash: Vec<u8> = row.get(3)?;
        let bytes = db::bytes_of(row.get_ref(4)?);
        let payload = String::from_utf8_lossy(&bytes);
        let line = match serde_json::value::RawValue::from_string(payload.to_string()) {
            Ok(raw) => serde_json::to_string(&RecordLine {
                seq,
                time: crate::format_ms(ts_ms),
                prev_hash: hex::encode(&prev),
                hash: hex::encode(&hash),
                record: &raw,
            }),
            Err(_) => serde_json::to_string(&serde_json::json!({
                "seq": seq,
                "time": crate::format_ms(ts_ms),
                "prev_hash": hex::encode(&prev),
                "hash": hex::encode(&hash),
                "record_text": payload,
            })),
        }
        .map_err(|e| AuditError::Write(e.to_string()))?;
        writeln!(out, "{line}")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}
