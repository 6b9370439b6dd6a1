//! The verifier: walks the chain from its start (genesis or the pruning anchor) and reports the first
//! record that is not what was written, then checks every signed checkpoint against the records.
//!
//! What each finding means:
//! - a record's contents no longer hash to its stored hash: it was **edited**;
//! - a sequence number is skipped: records were **deleted**;
//! - a record hashes correctly only under another sequence number: records were **moved** (swapped,
//!   or renumbered after an insertion or deletion); when it links back past its predecessor, the
//!   records in between were **inserted**;
//! - a record's hash differs from a signed checkpoint: the chain was **rewritten** (recomputed after an
//!   edit) — only the key holder can make a checkpoint that matches;
//! - a signed checkpoint names a sequence number past the last record: the tail was **truncated**.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use rusqlite::Connection;

use crate::db::{self, u64_of};
use crate::export::{checkpoints_of, read_checkpoint_file, Checkpoint};
use crate::keys::{checkpoint_signature_ok, public_key_of};
use crate::record::{entry_hash, GENESIS_HASH};
use crate::AuditError;

/// Where the key that checkpoints were checked against came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The exported checkpoint file given to `verify` (kept apart from the log).
    CheckpointFile,
    /// The signing key file on this host.
    KeyFile,
    /// The log's own `meta` table: proves nothing against someone who can rewrite the database.
    Database,
    /// No key anywhere (an empty log).
    None,
}

/// What is wrong with the first broken record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Edited,
    Deleted,
    Inserted,
    Moved,
    Duplicate,
    Rewritten,
    Truncated,
    BadSignature,
    BadAnchor,
}

/// The first broken record: its sequence number and a sentence saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub seq: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {}: {}", self.seq, self.detail)
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked (those before the first problem, if any).
    pub records: u64,
    /// First and last sequence numbers present.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The pruned prefix ends here.
    pub anchor_seq: Option<u64>,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints: u64,
    /// The last checked checkpoint: records after it are chained but not yet signed.
    pub last_checkpoint: Option<u64>,
    pub key_source: KeySource,
    /// The verifying key, hex.
    pub public_key: Option<String>,
    pub problem: Option<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// One line for people: `OK: …` or the problem.
    pub fn summary(&self) -> String {
        if let Some(p) = &self.problem {
            return format!("audit log broken at {p}");
        }
        let range = match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => format!(" (seq {a}..={b})"),
            _ => String::new(),
        };
        let pruned = self
            .anchor_seq
            .map_or(String::new(), |a| format!(", records up to {a} pruned"));
        let unsigned = match (self.last_checkpoint, self.last_seq) {
            (Some(c), Some(l)) if l > c => format!("; {} records after it not yet signed", l - c),
            (None, Some(l)) => format!("; {l} records not yet signed"),
            _ => String::new(),
        };
        let last = self
            .last_checkpoint
            .map_or(String::new(), |c| format!(", last at seq {c}"));
        let key = match self.key_source {
            KeySource::CheckpointFile => "key from the checkpoint file",
            KeySource::KeyFile => "key from the signing key file",
            KeySource::Database => "key from the log itself (pass --checkpoint FILE to check against a copy)",
            KeySource::None => "no key",
        };
        format!(
            "OK: {} records{range}{pruned}; {} checkpoints verified{last}{unsigned} ({key})",
            self.records, self.checkpoints
        )
    }
}

/// Verifies the log at `url`. `checkpoint_file`: checkpoints exported earlier and kept elsewhere;
/// their key is then the trusted one, and each of them must match the log. Otherwise the public key
/// of `key_file` is trusted if it exists, else the key recorded in the log.
pub fn verify(
    url: &str,
    checkpoint_file: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<VerifyReport, AuditError> {
    let conn = db::open_ro(url)?;
    let mut trusted = None;
    let mut extra = Vec::new();
    if let Some(path) = checkpoint_file {
        extra = read_checkpoint_file(path)?;
        let mut keys: Vec<&Vec<u8>> = extra.iter().map(|c| &c.public_key).collect();
        keys.dedup();
        match keys.as_slice() {
            [] => {}
            [one] => trusted = Some((db::hash32(one), KeySource::CheckpointFile)),
            _ => {
                return Err(AuditError::CheckpointFile {
                    path: path.display().to_string(),
                    message: "checkpoints signed by more than one key".into(),
                })
            }
        }
    }
    if trusted.is_none() {
        if let Some(kf) = key_file.filter(|p| p.exists()) {
            trusted = Some((public_key_of(kf)?, KeySource::KeyFile));
        }
    }
    verify_conn(&conn, trusted, Some(&extra))
}

/// Recent (seq, hash) pairs, to tell an insertion from an edit.
const WINDOW: u64 = 64;

pub(crate) fn verify_conn(
    conn: &Connection,
    trusted: Option<([u8; 32], KeySource)>,
    extra: Option<&[Checkpoint]>,
) -> Result<VerifyReport, AuditError> {
    // One read transaction: a consistent snapshot even while the gateway appends or a prune runs
    // (otherwise checkpoints, anchor and records could be read at different moments).
    let snapshot = conn.unchecked_transaction()?;
    let conn: &Connection = &snapshot;
    let db_key = db::meta(conn, "public_key")?.and_then(|h| hex::decode(h).ok());
    let (key, key_source) = match (trusted, db_key) {
        (Some((k, s)), _) => (Some(k), s),
        (None, Some(k)) => (Some(db::hash32(&k)), KeySource::Database),
        (None, None) => (None, KeySource::None),
    };
    let mut report = VerifyReport {
        records: 0,
        first_seq: None,
        last_seq: None,
        anchor_seq: None,
        checkpoints: 0,
        last_checkpoint: None,
        key_source,
        public_key: key.map(hex::encode),
        problem: None,
    };
    let mut cps: BTreeMap<u64, Vec<Checkpoint>> = BTreeMap::new();
    for cp in checkpoints_of(conn)?
        .into_iter()
        .chain(extra.unwrap_or_default().iter().cloned())
    {
        cps.entry(cp.seq).or_default().push(cp);
    }
    let sig_ok = |cp: &Checkpoint| match key {
        Some(k) => {
            cp.public_key == k
                && cp.hash.len() == 32
                && checkpoint_signature_ok(&k, cp.seq, &db::hash32(&cp.hash), &cp.signature)
        }
        None => false,
    };
    let bad_sig = |cp: &Checkpoint| {
        Problem {
        seq: cp.seq,
        kind: ProblemKind::BadSignature,
        detail: format!(
            "the checkpoint at seq {} is not validly signed by the trusted key (forged, altered, or made by another key)",
            cp.seq
        ),
    }
    };

    // Where the chain starts: genesis, or the anchor left by pruning, which must be a signed checkpoint.
    let mut expected = 1u64;
    let mut prev = GENESIS_HASH;
    if let Some(a) = db::anchor(conn)? {
        report.anchor_seq = Some(a.seq);
        let covered = cps
            .get(&a.seq)
            .is_some_and(|list| list.iter().any(|cp| cp.hash == a.hash && sig_ok(cp)));
        if !covered {
            report.problem = Some(Problem {
                seq: a.seq,
                kind: ProblemKind::BadAnchor,
                detail: "the pruned prefix ends here, but no checkpoint signed by the trusted key covers this record's hash (the anchor was moved or forged)".into(),
            });
            return Ok(report);
        }
        expected = a.seq + 1;
        prev = a.hash;
    }
    // Checkpoints inside the pruned prefix can only be checked for their signature.
    for (&seq, list) in cps.range(..expected) {
        if let Some(cp) = list.iter().find(|cp| !sig_ok(cp)) {
            report.problem = Some(bad_sig(cp));
            return Ok(report);
        }
        report.checkpoints += 1;
        report.last_checkpoint = Some(seq);
    }

    let mut window: VecDeque<(u64, [u8; 32])> = VecDeque::new();
    window.push_back((expected - 1, prev));
    let mut last_good_cp = report.last_checkpoint.unwrap_or(0);
    let mut stmt = conn.prepare("SELECT seq, ts_ms, prev_hash, hash, payload FROM records ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    // Rows numbered below where the chain has got to (zero, negative, repeated) are set aside: the
    // gap they left is what names the record, and they are mentioned there.
    let mut strays: Vec<i64> = Vec::new();
    let stray_note = |strays: &[i64]| match strays {
        [] => String::new(),
        [s, ..] => format!(" (a row numbered {s} is out of place)"),
    };
    while let Some(row) = rows.next()? {
        let raw_seq: i64 = row.get(0)?;
        if raw_seq < db::i64_of(expected) {
            strays.push(raw_seq);
            continue;
        }
        let seq = u64_of(raw_seq);
        let ts_ms: i64 = row.get(1)?;
        let stored_prev: Vec<u8> = row.get(2)?;
        let stored_hash: Vec<u8> = row.get(3)?;
        let payload = db::bytes_of(row.get_ref(4)?);
        let row = Row {
            seq,
            ts_ms,
            prev: &stored_prev,
            hash: &stored_hash,
            payload: &payload,
        };
        if let Some(mut p) = check_row(&row, expected, &prev, &window) {
            p.detail.push_str(&stray_note(&strays));
            report.problem = Some(p);
            return Ok(report);
        }
        let hash = db::hash32(&stored_hash);
        report.first_seq.get_or_insert(seq);
        report.last_seq = Some(seq);
        report.records += 1;
        if let Some(list) = cps.get(&seq) {
            if let Some(cp) = list.iter().find(|cp| !sig_ok(cp)) {
                report.problem = Some(bad_sig(cp));
                return Ok(report);
            }
            if list.iter().any(|cp| cp.hash != hash) {
                report.problem = Some(Problem {
                    seq,
                    kind: ProblemKind::Rewritten,
                    detail: format!(
                        "does not match the signed checkpoint at seq {seq}: the chain after seq {last_good_cp} was rewritten (edited and re-hashed)"
                    ),
                });
                return Ok(report);
            }
            report.checkpoints += 1;
            report.last_checkpoint = Some(seq);
            last_good_cp = seq;
        }
        if window.len() as u64 >= WINDOW {
            window.pop_front();
        }
        window.push_back((seq, hash));
        prev = hash;
        expected = seq + 1;
    }
    // A signed checkpoint past the end: the tail was cut off.
    if let Some((&seq, list)) = cps.range(expected..).next() {
        let cp = &list[0];
        if !sig_ok(cp) {
            report.problem = Some(bad_sig(cp));
        } else {
            report.problem = Some(Problem {
                seq: expected,
                kind: ProblemKind::Truncated,
                detail: format!(
                    "missing: the log ends at seq {}, but a signed checkpoint covers seq {seq}; records {expected}..={seq} were deleted (tail truncated){}",
                    expected - 1,
                    stray_note(&strays)
                ),
            });
        }
    } else if let Some(&s) = strays.first() {
        report.problem = Some(Problem {
            seq: u64_of(s),
            kind: ProblemKind::Duplicate,
            detail: format!("a row numbered {s} is out of place (duplicated or renumbered)"),
        });
    }
    if report.last_seq.is_none() && report.anchor_seq.is_some() {
        report.last_seq = report.anchor_seq;
    }
    Ok(report)
}

/// One stored row, as read (possibly tampered with).
struct Row<'a> {
    seq: u64,
    ts_ms: i64,
    prev: &'a [u8],
    hash: &'a [u8],
    payload: &'a [u8],
}

/// Checks one row against its expected position; None when it is intact.
fn check_row(
    row: &Row<'_>,
    expected: u64,
    prev: &[u8; 32],
    window: &VecDeque<(u64, [u8; 32])>,
) -> Option<Problem> {
    let Row {
        seq,
        ts_ms,
        prev: stored_prev,
        hash: stored_hash,
        payload,
    } = *row;
    let problem = |seq, kind, detail: String| Some(Problem { seq, kind, detail });
    if seq > expected {
        let what = if seq - expected == 1 {
            format!(
                "missing (deleted): the log jumps from seq {} to {seq}",
                expected - 1
            )
        } else {
            format!("missing (deleted): records {expected}..={} are gone", seq - 1)
        };
        return problem(expected, ProblemKind::Deleted, what);
    }
    let (Ok(p), Ok(h)) = (
        <[u8; 32]>::try_from(stored_prev),
        <[u8; 32]>::try_from(stored_hash),
    ) else {
        return problem(
            seq,
            ProblemKind::Edited,
            "edited: its hash fields are not 32 bytes".into(),
        );
    };
    if entry_hash(seq, &p, payload) != h {
        // Written for another position? Then records around it were renumbered or reordered.
        let lo = seq.saturating_sub(WINDOW).max(1);
        if let Some(j) = (lo..=seq + WINDOW).find(|&j| j != seq && entry_hash(j, &p, payload) == h) {
            if j < seq {
                if let Some(&(k, _)) = window.iter().find(|(_, wh)| *wh == p) {
                    if k + 1 < seq {
                        return problem(
                            k + 1,
                            ProblemKind::Inserted,
                            format!("inserted: record {seq} was written as record {j} and follows record {k}, so records {}..={} were inserted", k + 1, seq - 1),
                        );
                    }
                }
            }
            return problem(
                seq,
                ProblemKind::Moved,
                format!("moved: it holds the record written as seq {j} (records were swapped, or inserted or deleted and the rest renumbered)"),
            );
        }
        return problem(
            seq,
            ProblemKind::Edited,
            "edited: its contents do not match its hash".into(),
        );
    }
    if &p != prev {
        if let Some(&(k, _)) = window
            .iter()
            .find(|(_, wh)| *wh == p)
            .filter(|(k, _)| k + 1 < seq)
        {
            return problem(
                k + 1,
                ProblemKind::Inserted,
                format!(
                    "inserted: record {seq} links to record {k}, so records {}..={} were inserted",
                    k + 1,
                    seq - 1
                ),
            );
        }
        let before = seq - 1;
        return problem(
            before,
            ProblemKind::Edited,
            format!("rewritten: its hash no longer matches the prev_hash of record {seq} (edited and re-hashed, or replaced)"),
        );
    }
    #[derive(serde::Deserialize)]
    struct Time {
        ts_ms: i64,
    }
    match serde_json::from_slice::<Time>(payload) {
        Ok(t) if t.ts_ms == ts_ms => None,
        _ => problem(
            seq,
            ProblemKind::Edited,
            format!("edited: its ts_ms column ({ts_ms}) does not match the time in the record"),
        ),
    }
}
