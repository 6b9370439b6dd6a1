//! Shared helpers for the audit log's integration tests: build a log, open its database directly (as
//! an attacker would), and re-hash rows the way an attacker without the signing key could.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_audit::{entry_hash, AuditLog, AuditSettings, PolicyDecision, RequestRecord};
use rusqlite::{params, Connection};

pub struct TestLog {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub key_file: PathBuf,
}

impl TestLog {
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }

    pub fn conn(&self) -> Connection {
        Connection::open(self.db_path()).unwrap()
    }

    pub fn open(&self, settings: AuditSettings) -> AuditLog {
        AuditLog::open(&self.url, &self.key_file, settings).unwrap()
    }

    pub fn verify(&self) -> moat_audit::VerifyReport {
        moat_audit::verify(&self.url, None, Some(&self.key_file)).unwrap()
    }

    pub fn verify_with(&self, checkpoints: &Path) -> moat_audit::VerifyReport {
        moat_audit::verify(&self.url, Some(checkpoints), Some(&self.key_file)).unwrap()
    }
}

pub fn settings(checkpoint_every: u64) -> AuditSettings {
    AuditSettings {
        checkpoint_every,
        // Only count-based checkpoints and the one at close, so tests know where they are.
        checkpoint_interval: Duration::from_secs(3600),
        ..AuditSettings::default()
    }
}

pub fn request(n: u64, ts_ms: i64) -> RequestRecord {
    RequestRecord {
        ts_ms,
        request_id: format!("r{n}"),
        key_prefix: Some("moat-AbCdEfGh".into()),
        key_id: Some("key_0123456789ab".into()),
        team: Some("research".into()),
        client_addr: Some("10.0.0.7:51234".into()),
        endpoint: "/v1/chat/completions".into(),
        model_requested: "fast".into(),
        provider: Some("openrouter".into()),
        model_used: Some("openai/gpt-4o-mini".into()),
        policy: vec![PolicyDecision {
            rule: "email".into(),
            action: "redact".into(),
            count: 1,
        }],
        prompt_tokens: 100 + n,
        completion_tokens: 20,
        cost_nanos: 1_500 * n,
        status: 200,
        latency_us: 250_000,
        bodies: None,
    }
}

/// A closed log of `n` request records (ts = 1000 * seq), checkpointed every `every` records and at
/// close.
pub fn build(n: u64, every: u64) -> TestLog {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let key_file = dir.path().join("audit_signing_key");
    let t = TestLog { dir, url, key_file };
    {
        let log = t.open(settings(every));
        for i in 1..=n {
            log.append_request(request(i, 1000 * i as i64)).unwrap();
        }
    }
    t
}

pub struct RowData {
    pub ts_ms: i64,
    pub prev: Vec<u8>,
    pub hash: Vec<u8>,
    pub payload: String,
}

pub fn row(conn: &Connection, seq: u64) -> RowData {
    conn.query_row(
        "SELECT ts_ms, prev_hash, hash, payload FROM records WHERE seq = ?1",
        [seq as i64],
        |r| {
            Ok(RowData {
                ts_ms: r.get(0)?,
                prev: r.get(1)?,
                hash: r.get(2)?,
                payload: r.get(3)?,
            })
        },
    )
    .unwrap()
}

pub fn max_seq(conn: &Connection) -> u64 {
    conn.query_row("SELECT MAX(seq) FROM records", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

/// What an attacker without the key can do after editing: recompute every hash from `from` on so the
/// chain is internally consistent again.
pub fn rehash_from(conn: &Connection, from: u64) {
    let mut prev: [u8; 32] = if from == 1 {
        [0; 32]
    } else {
        row(conn, from - 1).hash.try_into().unwrap()
    };
    for seq in from..=max_seq(conn) {
        let r = row(conn, seq);
        let h = entry_hash(seq, &prev, r.payload.as_bytes());
        conn.execute(
            "UPDATE records SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            params![&prev[..], &h[..], seq as i64],
        )
        .unwrap();
        prev = h;
    }
}

/// Moves rows `from..` up by `by` (negative: down), as renumbering after an insert or delete would.
pub fn shift_seqs(conn: &Connection, from: u64, by: i64) {
    // Via negative numbers, so the primary key never collides mid-update.
    conn.execute("UPDATE records SET seq = -seq WHERE seq >= ?1", [from as i64])
        .unwrap();
    conn.execute("UPDATE records SET seq = -seq + ?1 WHERE seq < 0", [by])
        .unwrap();
}
