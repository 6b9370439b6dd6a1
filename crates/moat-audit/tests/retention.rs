//! Retention: pruning deletes only a checkpointed prefix, the remainder still verifies from the
//! anchor, tampering after a prune is still caught, and a moved or forged anchor is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_audit::{AuditRecord, AuditSettings, ProblemKind};

const DAY: i64 = 86_400_000;

/// `old` records 100 days old, then `new` records from today; checkpoints every 10.
fn aged_log(old: u64, new: u64) -> (TestLog, i64) {
    let now = moat_audit::now_ms();
    let t = build(0, 10);
    {
        let log = t.open(settings(10));
        for i in 1..=old {
            log.append_request(request(i, now - 100 * DAY + i as i64))
                .unwrap();
        }
        for i in old + 1..=old + new {
            log.append_request(request(i, now - 1000 + i as i64)).unwrap();
        }
    }
    (t, now)
}

fn with_retention(days: u64) -> AuditSettings {
    AuditSettings {
        retention_days: Some(days),
        ..settings(10)
    }
}

#[test]
fn pruning_keeps_a_verifiable_remainder_anchored_at_a_checkpoint() {
    let (t, now) = aged_log(55, 30);
    let report = {
        let log = t.open(with_retention(30));
        log.prune(now).unwrap()
    };
    // Record 55 is old too, but the last checkpoint before the first new record (56) is at 50.
    assert_eq!(report.through_seq, Some(50));
    assert_eq!(report.deleted, 50);
    let r = t.verify();
    assert!(r.is_ok(), "{}", r.summary());
    assert_eq!(r.anchor_seq, Some(50));
    assert_eq!(r.first_seq, Some(51));
    // 35 kept, plus the prune's own admin record.
    assert_eq!(r.records, 36);
    assert_eq!(r.last_seq, Some(86));
    let last = row(&t.conn(), 86).payload;
    let AuditRecord::Admin(a) = serde_json::from_str(&last).unwrap() else {
        panic!("{last}")
    };
    assert_eq!(a.action, "audit.prune");
    assert_eq!(a.details["through_seq"], 50);

    // Appending after a prune continues the chain; a second prune with nothing new to cut is a no-op.
    {
        let log = t.open(with_retention(30));
        log.append_request(request(1000, now)).unwrap();
        assert_eq!(log.prune(now).unwrap().deleted, 0);
    }
    let r = t.verify();
    assert!(r.is_ok(), "{}", r.summary());
    assert_eq!(r.last_seq, Some(87));
}

#[test]
fn tampering_after_a_prune_is_still_caught() {
    let (t, now) = aged_log(50, 20);
    t.open(with_retention(30)).prune(now).unwrap();
    t.conn()
        .execute("DELETE FROM records WHERE seq = 51", [])
        .unwrap();
    let p = t.verify().problem.expect("deletion after prune not detected");
    assert_eq!((p.seq, p.kind), (51, ProblemKind::Deleted), "{p}");
}

#[test]
fn a_moved_or_forged_anchor_is_caught() {
    let (t, now) = aged_log(50, 20);
    t.open(with_retention(30)).prune(now).unwrap();
    // Deleting more and moving the anchor to a later checkpoint without its hash:
    let c = t.conn();
    c.execute("DELETE FROM records WHERE seq <= 60", []).unwrap();
    c.execute("UPDATE meta SET v = '60' WHERE k = 'anchor_seq'", [])
        .unwrap();
    let p = t.verify().problem.expect("moved anchor not detected");
    assert_eq!((p.seq, p.kind), (60, ProblemKind::BadAnchor), "{p}");

    let (t, now) = aged_log(50, 20);
    t.open(with_retention(30)).prune(now).unwrap();
    t.conn()
        .execute(
            "UPDATE meta SET v = ?1 WHERE k = 'anchor_hash'",
            [hex(&[9u8; 32])],
        )
        .unwrap();
    let p = t.verify().problem.expect("forged anchor not detected");
    assert_eq!((p.seq, p.kind), (50, ProblemKind::BadAnchor), "{p}");
}

#[test]
fn pruning_refuses_a_log_that_does_not_verify_and_does_nothing_without_retention() {
    let (t, now) = aged_log(50, 20);
    assert_eq!(t.open(settings(10)).prune(now).unwrap().deleted, 0);
    t.conn()
        .execute("UPDATE records SET ts_ms = ts_ms + 1 WHERE seq = 5", [])
        .unwrap();
    let err = t.open(with_retention(30)).prune(now).unwrap_err();
    assert!(err.to_string().contains("record 5"), "{err}");
    assert_eq!(max_seq(&t.conn()), 70);
    assert_eq!(
        t.conn()
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        70
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
