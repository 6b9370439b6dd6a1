//! Reading a running log back for the admin console: the latest records (metadata only) and a
//! verification against the key the log signs with.

use crate::db;
use crate::log::AuditLog;
use crate::record::AuditRecord;
use crate::verify::{verify_conn, KeySource, VerifyReport};
use crate::AuditError;

/// One record as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Recent {
    pub seq: u64,
    pub record: AuditRecord,
}

impl AuditLog {
    fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    /// The latest `limit` records, newest first, after committing what is queued. Request bodies
    /// (kept only with `[audit] bodies = true`) are left out: this is a metadata view. A payload that
    /// no longer parses (it was edited) is skipped here; `verify` reports it.
    pub fn recent(&self, limit: usize) -> Result<Vec<Recent>, AuditError> {
        self.flush()?;
        let conn = db::open_ro(&self.url())?;
        let mut stmt = conn.prepare("SELECT seq, payload FROM records ORDER BY seq DESC LIMIT ?1")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query([limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let seq = db::u64_of(row.get(0)?);
            let bytes = db::bytes_of(row.get_ref(1)?);
            let Ok(mut record) = serde_json::from_slice::<AuditRecord>(&bytes) else {
                continue;
            };
            if let AuditRecord::Request(r) = &mut record {
                r.bodies = None;
            }
            out.push(Recent { seq, record });
        }
        Ok(out)
    }

    /// Verifies the whole log against the key this log signs its checkpoints with (the signing key
    /// file it was opened with), after committing what is queued.
    pub fn verify_now(&self) -> Result<VerifyReport, AuditError> {
        self.flush()?;
        let conn = db::open_ro(&self.url())?;
        verify_conn(&conn, Some((self.public_key(), KeySource::KeyFile)), None)
    }
}
