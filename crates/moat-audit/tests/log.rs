//! The appending side: several writers on one file keep one chain, a full queue blocks or counts its
//! drops, bodies are kept only when asked, time-based checkpoints, the key must match, and exports
//! can be re-hashed by anyone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use moat_audit::{AdminRecord, AuditError, AuditRecord, AuditSettings, Bodies, OnFull};

#[test]
fn two_writers_on_one_file_keep_one_unbroken_chain() {
    // The gateway and a `moatd keys` command append to the same log at once.
    let t = build(0, 100);
    let a = Arc::new(t.open(settings(100)));
    let b = Arc::new(t.open(settings(100)));
    let threads: Vec<_> = [("a", a.clone()), ("b", b.clone())]
        .into_iter()
        .map(|(name, log)| {
            std::thread::spawn(move || {
                for i in 0..2_000u64 {
                    let mut r = request(i, i as i64);
                    r.request_id = format!("{name}{i}");
                    log.append_request(r).unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    drop((a, b));
    let r = t.verify();
    assert!(r.is_ok(), "{}", r.summary());
    assert_eq!(r.records, 4_000);
    // Each writer's records are in the order it appended them.
    let c = t.conn();
    let mut next = [0u64; 2];
    let mut stmt = c.prepare("SELECT payload FROM records ORDER BY seq").unwrap();
    for p in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        let AuditRecord::Request(r) = serde_json::from_str(&p.unwrap()).unwrap() else {
            panic!()
        };
        let w = usize::from(r.request_id.starts_with('b'));
        assert_eq!(r.request_id[1..].parse::<u64>().unwrap(), next[w]);
        next[w] += 1;
    }
}

#[test]
fn verifying_while_records_are_appended_and_pruned_sees_a_consistent_snapshot() {
    let t = build(0, 10);
    let log = Arc::new(t.open(AuditSettings {
        retention_days: Some(1),
        commit_delay: Duration::ZERO,
        ..settings(10)
    }));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..4_000u64 {
                // The first half is old enough to be pruned while verification runs.
                let ts = if i < 2_000 { 0 } else { moat_audit::now_ms() };
                log.append_request(request(i, ts)).unwrap();
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() || checks < 5 {
        let r = t.verify();
        assert!(r.is_ok(), "{}", r.summary());
        if checks == 2 {
            log.prune(moat_audit::now_ms()).unwrap();
        }
        checks += 1;
    }
    writer.join().unwrap();
    drop(log);
    let r = t.verify();
    assert!(r.is_ok(), "{}", r.summary());
}

#[test]
fn a_full_queue_blocks_by_default_and_loses_nothing() {
    let t = build(0, 100);
    let log = t.open(AuditSettings {
        queue_capacity: 4,
        max_batch: 2,
        ..settings(100)
    });
    for i in 1..=3_000 {
        log.append_request(request(i, 0)).unwrap();
    }
    log.flush().unwrap();
    let s = log.stats();
    assert_eq!((s.queued, s.committed, s.dropped), (3_000, 3_000, 0));
    assert!(s.blocked > 0, "{s:?}");
    drop(log);
    assert_eq!(t.verify().records, 3_000);
}

#[test]
fn a_full_queue_with_on_full_drop_counts_every_drop() {
    let t = build(0, 100);
    let log = t.open(AuditSettings {
        queue_capacity: 1,
        max_batch: 1,
        on_full: OnFull::Drop,
        ..settings(100)
    });
    for i in 1..=5_000 {
        log.append_request(request(i, 0)).unwrap();
    }
    log.flush().unwrap();
    let s = log.stats();
    assert!(
        s.dropped > 0,
        "the writer kept up with 5000 appends in a tight loop: {s:?}"
    );
    assert_eq!(s.queued + s.dropped, 5_000);
    assert_eq!(s.committed, s.queued);
    drop(log);
    assert_eq!(t.verify().records, s.queued);
}

#[test]
fn bodies_are_kept_only_when_configured() {
    let t = build(0, 100);
    let with_bodies = |record_bodies| {
        let log = t.open(AuditSettings {
            record_bodies,
            ..settings(100)
        });
        let mut r = request(1, 0);
        r.bodies = Some(Bodies {
            request: "PROMPT-MARKER".into(),
            response: "ANSWER-MARKER".into(),
        });
        log.append_request(r).unwrap();
    };
    with_bodies(false);
    assert!(!row(&t.conn(), 1).payload.contains("MARKER"));
    assert!(row(&t.conn(), 1).payload.contains("\"bodies\":null"));
    with_bodies(true);
    assert!(row(&t.conn(), 2).payload.contains("PROMPT-MARKER"));
}

#[test]
fn checkpoints_are_also_made_by_time_and_on_request() {
    let t = build(0, 0);
    let log = t.open(AuditSettings {
        checkpoint_every: 0,
        checkpoint_interval: Duration::from_millis(200),
        ..AuditSettings::default()
    });
    for i in 1..=3 {
        log.append_request(request(i, 0)).unwrap();
    }
    log.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while moat_audit::list_checkpoints(&t.url).unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no time-based checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(moat_audit::list_checkpoints(&t.url).unwrap()[0].seq, 3);
    log.append_request(request(4, 0)).unwrap();
    log.checkpoint_now().unwrap();
    let seqs: Vec<u64> = moat_audit::list_checkpoints(&t.url)
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(seqs, [3, 4]);
    assert_eq!(log.stats().checkpoints, 2);
}

#[test]
fn the_log_refuses_a_different_key() {
    let t = build(3, 100);
    let other = t.dir.path().join("other_key");
    let err = moat_audit::AuditLog::open(&t.url, &other, settings(100)).unwrap_err();
    assert!(matches!(err, AuditError::KeyMismatch { .. }), "{err}");
}

#[test]
fn exports_can_be_re_hashed_from_the_line_alone() {
    let t = build(0, 100);
    {
        let log = t.open(settings(100));
        for i in 1..=10 {
            log.append_request(request(i, i as i64 * 1000)).unwrap();
        }
        log.append_admin(AdminRecord {
            ts_ms: 20_000,
            actor: "cli".into(),
            action: "key.limits".into(),
            target: "key_0123456789ab".into(),
            details: serde_json::json!({"budget": "5/day", "rpm": 60}),
        })
        .unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(moat_audit::export_records(&t.url, 5_000, &mut out).unwrap(), 7);
    let text = String::from_utf8(out).unwrap();
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        seq: u64,
        prev_hash: String,
        hash: String,
        #[serde(borrow)]
        record: &'a serde_json::value::RawValue,
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7);
    for l in &lines {
        let line: Line = serde_json::from_str(l).unwrap();
        let prev: [u8; 32] = hex_decode(&line.prev_hash).try_into().unwrap();
        let h = moat_audit::entry_hash(line.seq, &prev, line.record.get().as_bytes());
        assert_eq!(hex_encode(&h), line.hash, "seq {}", line.seq);
    }
    let last: serde_json::Value = serde_json::from_str(lines[6]).unwrap();
    assert_eq!(last["record"]["kind"], "admin");
    assert_eq!(last["record"]["details"]["rpm"], 60);
    assert_eq!(last["time"], "1970-01-01T00:00:20.000Z");
}

#[test]
fn checkpoint_exports_read_back() {
    let t = build(25, 10);
    let path = t.dir.path().join("cp.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    moat_audit::export_checkpoints(&t.url, &mut f).unwrap();
    let back = moat_audit::read_checkpoint_file(&path).unwrap();
    assert_eq!(back, moat_audit::list_checkpoints(&t.url).unwrap());
    assert_eq!(
        back[0].public_key,
        moat_audit::public_key_of(&t.key_file).unwrap().to_vec()
    );
    std::fs::write(&path, "{\"seq\":1}\n").unwrap();
    assert!(moat_audit::read_checkpoint_file(&path).is_err());
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
