//! Retention: deleting an old prefix of the chain without breaking verification of what remains.
//!
//! Only a prefix ending at a checkpointed record is ever deleted, and that record's (seq, hash) is kept
//! as the anchor in `meta`. The verifier starts the chain from the anchor and requires a checkpoint,
//! signed by the log's key, at exactly that (seq, hash): so the anchor cannot be moved without the key.
//! Checkpoints themselves are never deleted (they are about 150 bytes each).

use rusqlite::{params, Connection, TransactionBehavior};

use crate::db::{self, i64_of, u64_of};
use crate::AuditError;

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Records deleted.
    pub deleted: u64,
    /// The new anchor: the last deleted record's seq (None if nothing was deleted).
    pub through_seq: Option<u64>,
}

/// Deletes in steps of about this many records, one transaction each, so the writer is never
/// locked out for long; every step leaves a consistent anchor.
const STEP: u64 = 50_000;

/// Deletes every record up to the last checkpoint before the first record at or after `cutoff_ms`.
/// Refuses to delete anything if the log does not verify: pruning must not destroy evidence.
pub(crate) fn prune_before(conn: &mut Connection, cutoff_ms: i64) -> Result<PruneReport, AuditError> {
    let report = crate::verify::verify_conn(conn, None, None)?;
    if let Some(problem) = &report.problem {
        return Err(AuditError::Write(format!(
            "refusing to prune a log that does not verify: {problem}"
        )));
    }
    let first_kept: Option<i64> = conn.query_row(
        "SELECT MIN(seq) FROM records WHERE ts_ms >= ?1",
        [cutoff_ms],
        |r| r.get(0),
    )?;
    let (head, _) = db::head(conn)?;
    let limit = first_kept.map_or(head, |s| u64_of(s).saturating_sub(1));
    let start = db::anchor(conn)?.map_or(0, |a| a.seq);
    let candidates: Vec<(u64, Vec<u8>)> = {
        let mut stmt = conn.prepare(
            "SELECT c.seq, c.hash FROM checkpoints c JOIN records r ON r.seq = c.seq
             WHERE c.seq > ?1 AND c.seq <= ?2 AND c.hash = r.hash ORDER BY c.seq",
        )?;
        let rows = stmt.query_map(params![i64_of(start), i64_of(limit)], |r| {
            Ok((u64_of(r.get(0)?), r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut report = PruneReport::default();
    let mut done = start;
    for (i, (seq, hash)) in candidates.iter().enumerate() {
        let last = i + 1 == candidates.len();
        if !last && seq - done < STEP {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = tx.execute("DELETE FROM records WHERE seq <= ?1", [i64_of(*seq)])?;
        db::set_meta(&tx, "anchor_seq", &seq.to_string())?;
        db::set_meta(&tx, "anchor_hash", &hex::encode(hash))?;
        tx.commit()?;
        report.deleted += deleted as u64;
        report.through_seq = Some(*seq);
        done = *seq;
    }
    if report.deleted > 0 {
        tracing::info!(
            deleted = report.deleted,
            through_seq = done,
            "audit records pruned"
        );
    }
    Ok(report)
}
