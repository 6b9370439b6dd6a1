//! Tampering done directly in the SQLite file — edit a byte, delete, insert, swap, truncate the tail,
//! rewrite and re-hash, forge a signature — and `verify` names the first broken record each time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_audit::{entry_hash, ProblemKind};
use rusqlite::params;

fn problem(t: &TestLog) -> (u64, ProblemKind, String) {
    let report = t.verify();
    let p = report
        .problem
        .clone()
        .unwrap_or_else(|| panic!("tampering not detected: {}", report.summary()));
    (p.seq, p.kind, p.to_string())
}

#[test]
fn an_intact_log_verifies_with_its_count_and_checkpoints() {
    let t = build(25, 10);
    let r = t.verify();
    assert!(r.is_ok(), "{}", r.summary());
    assert_eq!(r.records, 25);
    assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(25)));
    // Every 10 records, plus one at close.
    assert_eq!(r.checkpoints, 3);
    assert_eq!(r.last_checkpoint, Some(25));
    assert_eq!(r.key_source, moat_audit::KeySource::KeyFile);
    assert!(r.summary().starts_with("OK: 25 records"), "{}", r.summary());
    let cps: Vec<u64> = moat_audit::list_checkpoints(&t.url)
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(cps, [10, 20, 25]);
}

#[test]
fn editing_one_byte_of_a_record_is_caught_at_that_record() {
    let t = build(25, 10);
    let c = t.conn();
    let r = row(&c, 7);
    let edited = r
        .payload
        .replacen("\"prompt_tokens\":107", "\"prompt_tokens\":106", 1);
    assert_ne!(edited, r.payload);
    c.execute("UPDATE records SET payload = ?1 WHERE seq = 7", [edited])
        .unwrap();
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (7, ProblemKind::Edited), "{text}");
    assert!(text.starts_with("record 7: edited"), "{text}");
}

#[test]
fn editing_a_stored_hash_or_time_is_caught_at_that_record() {
    let t = build(25, 10);
    let c = t.conn();
    let mut h = row(&c, 12).hash;
    h[0] ^= 1;
    c.execute("UPDATE records SET hash = ?1 WHERE seq = 12", [&h])
        .unwrap();
    assert_eq!(problem(&t).0, 12);

    let t = build(25, 10);
    t.conn()
        .execute("UPDATE records SET ts_ms = ts_ms + 1 WHERE seq = 3", [])
        .unwrap();
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (3, ProblemKind::Edited), "{text}");
}

#[test]
fn deleting_a_record_is_caught_at_the_missing_seq() {
    let t = build(25, 10);
    t.conn()
        .execute("DELETE FROM records WHERE seq = 14", [])
        .unwrap();
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (14, ProblemKind::Deleted), "{text}");
    assert!(text.contains("jumps from seq 13 to 15"), "{text}");
}

#[test]
fn deleting_a_record_and_renumbering_the_rest_is_caught() {
    let t = build(25, 10);
    let c = t.conn();
    c.execute("DELETE FROM records WHERE seq = 14", []).unwrap();
    shift_seqs(&c, 15, -1);
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (14, ProblemKind::Moved), "{text}");
    assert!(text.contains("written as seq 15"), "{text}");
}

#[test]
fn inserting_a_well_formed_record_is_caught_and_named() {
    // The strongest insert short of re-hashing everything: a forged record that chains correctly onto
    // record 8, with the later records renumbered to make room.
    let t = build(25, 10);
    let c = t.conn();
    shift_seqs(&c, 9, 1);
    let prev: [u8; 32] = row(&c, 8).hash.try_into().unwrap();
    let payload = serde_json::to_string(&moat_audit::AuditRecord::Request(request(999, 8_500))).unwrap();
    let h = entry_hash(9, &prev, payload.as_bytes());
    c.execute(
        "INSERT INTO records (seq, ts_ms, prev_hash, hash, payload) VALUES (9, 8500, ?1, ?2, ?3)",
        params![&prev[..], &h[..], payload],
    )
    .unwrap();
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (9, ProblemKind::Inserted), "{text}");
    assert!(text.contains("records 9..=9 were inserted"), "{text}");
}

#[test]
fn inserting_a_row_with_a_made_up_hash_is_caught_at_it() {
    let t = build(25, 10);
    let c = t.conn();
    shift_seqs(&c, 9, 1);
    let payload = serde_json::to_string(&moat_audit::AuditRecord::Request(request(999, 8_500))).unwrap();
    c.execute(
        "INSERT INTO records (seq, ts_ms, prev_hash, hash, payload) VALUES (9, 8500, ?1, ?2, ?3)",
        params![&[1u8; 32][..], &[2u8; 32][..], payload],
    )
    .unwrap();
    assert_eq!(problem(&t).0, 9);
}

#[test]
fn swapping_two_records_is_caught_at_the_first() {
    let t = build(25, 10);
    let c = t.conn();
    c.execute("UPDATE records SET seq = -1 WHERE seq = 5", [])
        .unwrap();
    c.execute("UPDATE records SET seq = 5 WHERE seq = 9", []).unwrap();
    c.execute("UPDATE records SET seq = 9 WHERE seq = -1", [])
        .unwrap();
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (5, ProblemKind::Moved), "{text}");
    assert!(text.contains("written as seq 9"), "{text}");

    // Swapping only the contents (keeping each row's hashes) is an edit of both; the first is named.
    let t = build(25, 10);
    let c = t.conn();
    let (a, b) = (row(&c, 5).payload, row(&c, 6).payload);
    c.execute("UPDATE records SET payload = ?1 WHERE seq = 5", [&b])
        .unwrap();
    c.execute("UPDATE records SET payload = ?1 WHERE seq = 6", [&a])
        .unwrap();
    assert_eq!(problem(&t).0, 5);
}

#[test]
fn truncating_the_tail_behind_a_checkpoint_is_caught() {
    let t = build(25, 10);
    t.conn()
        .execute("DELETE FROM records WHERE seq >= 18", [])
        .unwrap();
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (18, ProblemKind::Truncated), "{text}");
    assert!(text.contains("records 18..=20 were deleted"), "{text}");
}

#[test]
fn a_tail_cut_together_with_its_checkpoints_is_caught_by_an_exported_copy() {
    let t = build(25, 10);
    let exported = t.dir.path().join("checkpoints.jsonl");
    let mut f = std::fs::File::create(&exported).unwrap();
    assert_eq!(moat_audit::export_checkpoints(&t.url, &mut f).unwrap(), 3);
    let c = t.conn();
    c.execute("DELETE FROM records WHERE seq >= 18", []).unwrap();
    c.execute("DELETE FROM checkpoints WHERE seq >= 18", []).unwrap();
    // The database alone cannot tell (docs/AUDIT.md says so)...
    let alone = t.verify();
    assert!(alone.is_ok(), "{}", alone.summary());
    assert_eq!(alone.records, 17);
    // ...the copy kept elsewhere can.
    let r = t.verify_with(&exported);
    assert_eq!(r.key_source, moat_audit::KeySource::CheckpointFile);
    let p = r.problem.expect("truncation not detected");
    assert_eq!((p.seq, p.kind), (18, ProblemKind::Truncated), "{p}");
}

#[test]
fn an_edit_re_hashed_to_a_consistent_chain_is_caught_by_the_next_checkpoint() {
    let t = build(25, 10);
    let c = t.conn();
    let r = row(&c, 12);
    c.execute(
        "UPDATE records SET payload = ?1 WHERE seq = 12",
        [r.payload.replace("\"status\":200", "\"status\":500")],
    )
    .unwrap();
    rehash_from(&c, 12);
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (20, ProblemKind::Rewritten), "{text}");
    assert!(text.contains("after seq 10"), "{text}");
}

#[test]
fn a_rewritten_chain_with_re_signed_checkpoints_fails_against_the_real_key() {
    // An attacker who rewrites the chain, replaces the log's public key and re-signs every checkpoint
    // with a key of their own fools a verifier that trusts the database, not one holding the real key.
    let t = build(25, 10);
    let c = t.conn();
    let r = row(&c, 3);
    c.execute(
        "UPDATE records SET payload = ?1 WHERE seq = 3",
        [r.payload.replace("\"status\":200", "\"status\":404")],
    )
    .unwrap();
    rehash_from(&c, 3);
    let other = tempfile::tempdir().unwrap();
    let evil = AuditLogKey::new(other.path());
    c.execute(
        "UPDATE meta SET v = ?1 WHERE k = 'public_key'",
        [&evil.public_hex],
    )
    .unwrap();
    c.execute("DELETE FROM checkpoints", []).unwrap();
    drop(c);
    {
        // Re-sign by opening the log with the attacker's key: checkpoints land at the head.
        let log = moat_audit::AuditLog::open(&t.url, &evil.path, settings(10)).unwrap();
        log.checkpoint_now().unwrap();
    }
    let trusting_db = moat_audit::verify(&t.url, None, None).unwrap();
    assert!(trusting_db.is_ok(), "{}", trusting_db.summary());
    let p = t.verify().problem.expect("re-signed chain not detected");
    assert_eq!(p.kind, ProblemKind::BadSignature, "{p}");
}

#[test]
fn a_forged_checkpoint_signature_is_caught() {
    let t = build(25, 10);
    let c = t.conn();
    let mut sig: Vec<u8> = c
        .query_row("SELECT signature FROM checkpoints WHERE seq = 20", [], |r| {
            r.get(0)
        })
        .unwrap();
    sig[5] ^= 0x40;
    c.execute("UPDATE checkpoints SET signature = ?1 WHERE seq = 20", [sig])
        .unwrap();
    let (seq, kind, text) = problem(&t);
    assert_eq!((seq, kind), (20, ProblemKind::BadSignature), "{text}");
}

#[test]
fn a_missing_log_is_an_error_not_an_empty_ok() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("none.db").display());
    assert!(matches!(
        moat_audit::verify(&url, None, None),
        Err(moat_audit::AuditError::Missing(_))
    ));
    assert!(!dir.path().join("none.db").exists());
}

/// A second signing key, as an attacker would make one.
struct AuditLogKey {
    path: std::path::PathBuf,
    public_hex: String,
}

impl AuditLogKey {
    fn new(dir: &std::path::Path) -> AuditLogKey {
        // Creating a throwaway log creates a key file next to it.
        let path = dir.join("evil_key");
        let url = format!("sqlite://{}", dir.join("evil.db").display());
        let log = moat_audit::AuditLog::open(&url, &path, settings(10)).unwrap();
        let public_hex = log.public_key_hex();
        AuditLogKey { path, public_hex }
    }
}
