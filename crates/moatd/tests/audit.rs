//! `moatd audit verify|export|checkpoints|prune` through the real binary, on a log found through an
//! explicit config file and an isolated data directory; tampering done in the database makes
//! `verify` exit 1 with one line naming the record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use moat_audit::{AdminRecord, AuditLog, AuditSettings, RequestRecord};

const DAY: i64 = 86_400_000;

struct Setup {
    data: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

impl Setup {
    /// A config whose `[audit]` names a log outside the data directory; the signing key stays at its
    /// default place in the data directory (`XDG_DATA_HOME/moat/audit_signing_key`).
    fn new(extra: &str) -> Setup {
        let data = tempfile::tempdir().unwrap();
        let db = data.path().join("logs/audit.db");
        let config = data.path().join("moatd.toml");
        std::fs::write(
            &config,
            format!(
                "[audit]\nurl = \"sqlite://{}\"\ncheckpoint_every = 10\n{extra}",
                db.display()
            ),
        )
        .unwrap();
        Setup { data, config, db }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.db.display())
    }

    fn key_file(&self) -> PathBuf {
        self.data.path().join("moat/audit_signing_key")
    }

    /// Appends `n` request records dated `ts_ms + i` and one admin record.
    fn fill(&self, n: u64, ts_ms: i64) {
        let settings = AuditSettings {
            checkpoint_every: 10,
            ..AuditSettings::default()
        };
        let log = AuditLog::open(&self.url(), &self.key_file(), settings).unwrap();
        for i in 1..=n {
            log.append_request(RequestRecord {
                ts_ms: ts_ms + i as i64,
                request_id: format!("req_{i}"),
                endpoint: "/v1/chat/completions".into(),
                model_requested: "emu/tiny".into(),
                status: 200,
                ..RequestRecord::default()
            })
            .unwrap();
        }
        log.append_admin(AdminRecord {
            ts_ms: ts_ms + n as i64 + 1,
            actor: "cli".into(),
            action: "key.revoke".into(),
            target: "key_0123456789ab".into(),
            details: serde_json::json!({}),
        })
        .unwrap();
    }

    fn run(&self, args: &[&str]) -> (String, String, bool) {
        let cfg = self.config.to_str().unwrap();
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", cfg]);
        moatd_cmd(self.data.path(), &all, None)
    }

    fn sql(&self, statement: &str) {
        rusqlite::Connection::open(&self.db)
            .unwrap()
            .execute(statement, [])
            .unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn verify_reports_ok_with_the_count_then_names_an_edited_record() {
    let s = Setup::new("");
    s.fill(25, 1_700_000_000_000);
    let (out, err, ok) = s.run(&["verify"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("OK: 26 records (seq 1..=26)"), "{out}");
    assert!(out.contains("3 checkpoints verified"), "{out}");
    assert!(out.contains("signing key file"), "{out}");

    s.sql("UPDATE records SET payload = replace(payload, '\"status\":200', '\"status\":201') WHERE seq = 7");
    let out = Command::new(MOATD)
        .args(["audit", "verify"])
        .env("MOATD_CONFIG", &s.config)
        .env("XDG_DATA_HOME", s.data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("record 7: edited"), "{err}");
}

#[test]
fn exported_checkpoints_catch_a_tail_cut_with_its_checkpoints() {
    let s = Setup::new("");
    s.fill(25, 1_700_000_000_000);
    let kept = s.data.path().join("elsewhere/checkpoints.jsonl");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    let (_, err, ok) = s.run(&["checkpoints", "--export", kept.to_str().unwrap()]);
    assert!(ok && err.contains("exported 3 checkpoints"), "{err}");
    assert_eq!(lines(&kept).len(), 3);

    let (out, _, ok) = s.run(&["checkpoints"]);
    assert!(ok);
    assert!(out.starts_with("public key "), "{out}");
    for seq in ["10", "20", "26"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with(seq)), "{out}");
    }

    s.sql("DELETE FROM records WHERE seq >= 15");
    s.sql("DELETE FROM checkpoints WHERE seq >= 15");
    let (out, _, ok) = s.run(&["verify"]);
    assert!(ok, "the database alone cannot see this cut: {out}");
    let (_, err, ok) = s.run(&["verify", "--checkpoint", kept.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("record 15: missing"), "{err}");
    assert!(err.contains("tail truncated"), "{err}");
}

#[test]
fn export_writes_json_lines_since_a_date() {
    let s = Setup::new("");
    let day2 = moat_audit::parse_date("2026-11-02").unwrap();
    s.fill(5, day2 - 10); // 5 requests on Nov 1st (the last at day2 - 5), the admin record too.
    {
        let log = AuditLog::open(&s.url(), &s.key_file(), AuditSettings::default()).unwrap();
        for i in 0..3 {
            log.append_request(RequestRecord {
                ts_ms: day2 + i,
                request_id: format!("late_{i}"),
                ..RequestRecord::default()
            })
            .unwrap();
        }
    }
    let out = s.data.path().join("export.jsonl");
    let (_, err, ok) = s.run(&["export", "--since", "2026-11-02", "--out", out.to_str().unwrap()]);
    assert!(ok && err.contains("exported 3 records"), "{err}");
    let got = lines(&out);
    assert_eq!(got.len(), 3);
    let first: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(first["seq"], 7);
    assert_eq!(first["time"], "2026-11-02T00:00:00.000Z");
    assert_eq!(first["record"]["request_id"], "late_0");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (all, _, ok) = s.run(&["export"]);
    assert!(ok);
    assert_eq!(all.lines().count(), 9);
    let (_, err, ok) = s.run(&["export", "--format", "csv"]);
    assert!(!ok && err.contains("unknown export format"), "{err}");
    let (_, err, ok) = s.run(&["export", "--since", "last tuesday"]);
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn prune_applies_retention_and_the_rest_still_verifies() {
    let s = Setup::new("retention_days = 30\n");
    let now = moat_audit::now_ms();
    {
        let log = AuditLog::open(
            &s.url(),
            &s.key_file(),
            AuditSettings {
                checkpoint_every: 10,
                ..AuditSettings::default()
            },
        )
        .unwrap();
        for i in 0..45 {
            let ts_ms = if i < 32 { now - 60 * DAY } else { now };
            log.append_request(RequestRecord {
                ts_ms,
                request_id: format!("r{i}"),
                ..RequestRecord::default()
            })
            .unwrap();
        }
    }
    let (_, err, ok) = s.run(&["prune"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("pruned 30 records") && err.contains("through seq 30"),
        "{err}"
    );
    let (out, err, ok) = s.run(&["verify"]);
    assert!(ok, "{err}");
    assert!(out.contains("(seq 31..=46), records up to 30 pruned"), "{out}");
}

#[test]
fn prune_without_retention_keeps_everything_and_a_missing_log_is_an_error() {
    let s = Setup::new("");
    let (_, err, ok) = s.run(&["verify"]);
    assert!(!ok && err.contains("no audit log at"), "{err}");
    assert!(!s.db.exists(), "verify must not create the log");
    let (_, err, ok) = s.run(&["prune"]);
    assert!(ok && err.contains("retention_days is not set"), "{err}");
}

#[test]
fn without_a_config_the_log_is_in_the_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("moat/audit.db").display());
    {
        let log = AuditLog::open(
            &url,
            &data.path().join("moat/audit_signing_key"),
            AuditSettings::default(),
        )
        .unwrap();
        log.append_request(RequestRecord::default()).unwrap();
    }
    let (out, err, ok) = moatd_cmd(data.path(), &["audit", "verify"], None);
    assert!(ok, "{err}");
    assert!(out.starts_with("OK: 1 records"), "{out}");
}
