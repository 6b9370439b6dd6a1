//! Property: any single-record mutation made in the database — one flipped bit anywhere in a payload,
//! a hash or a prev_hash, a changed time, a changed sequence number, a deleted row — is detected, and
//! the report names exactly that record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use rusqlite::{params, Connection};

const N: u64 = 30;

/// One closed log, copied for every case.
fn base() -> &'static TestLog {
    static BASE: OnceLock<TestLog> = OnceLock::new();
    BASE.get_or_init(|| build(N, 10))
}

#[derive(Debug, Clone)]
enum Mutation {
    PayloadBit { at: usize, bit: u8 },
    HashBit { at: usize, bit: u8 },
    PrevBit { at: usize, bit: u8 },
    Time { delta: i64 },
    Seq { to: i64 },
    Delete,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::PayloadBit { at, bit }),
        (0usize..32, 0u8..8).prop_map(|(at, bit)| Mutation::HashBit { at, bit }),
        (0usize..32, 0u8..8).prop_map(|(at, bit)| Mutation::PrevBit { at, bit }),
        prop_oneof![-1_000_000i64..0, 1i64..1_000_000].prop_map(|delta| Mutation::Time { delta }),
        prop_oneof![-50i64..=0, 100i64..10_000].prop_map(|to| Mutation::Seq { to }),
        Just(Mutation::Delete),
    ]
}

fn flip(bytes: &mut [u8], at: usize, bit: u8) {
    let i = at % bytes.len();
    bytes[i] ^= 1 << bit;
}

fn apply(c: &Connection, seq: u64, m: &Mutation) {
    let r = row(c, seq);
    let s = seq as i64;
    match m {
        Mutation::PayloadBit { at, bit } => {
            let mut p = r.payload.into_bytes();
            flip(&mut p, *at, *bit);
            // Stored as text when still UTF-8, else as a blob: the verifier must read either.
            match String::from_utf8(p) {
                Ok(text) => c.execute("UPDATE records SET payload = ?1 WHERE seq = ?2", params![text, s]),
                Err(e) => c.execute(
                    "UPDATE records SET payload = ?1 WHERE seq = ?2",
                    params![e.into_bytes(), s],
                ),
            }
            .unwrap();
        }
        Mutation::HashBit { at, bit } => {
            let mut h = r.hash;
            flip(&mut h, *at, *bit);
            c.execute("UPDATE records SET hash = ?1 WHERE seq = ?2", params![h, s])
                .unwrap();
        }
        Mutation::PrevBit { at, bit } => {
            let mut h = r.prev;
            flip(&mut h, *at, *bit);
            c.execute("UPDATE records SET prev_hash = ?1 WHERE seq = ?2", params![h, s])
                .unwrap();
        }
        Mutation::Time { delta } => {
            c.execute(
                "UPDATE records SET ts_ms = ?1 WHERE seq = ?2",
                params![r.ts_ms + delta, s],
            )
            .unwrap();
        }
        Mutation::Seq { to } => {
            c.execute("UPDATE records SET seq = ?1 WHERE seq = ?2", params![to, s])
                .unwrap();
        }
        Mutation::Delete => {
            c.execute("DELETE FROM records WHERE seq = ?1", [s]).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_single_record_mutation_is_detected_and_named(seq in 1..=N, m in mutation()) {
        let base = base();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        std::fs::copy(base.db_path(), &db).unwrap();
        let url = format!("sqlite://{}", db.display());
        {
            let c = Connection::open(&db).unwrap();
            // The attacker needs no durability; skipping fsyncs keeps 256 cases fast.
            c.pragma_update(None, "synchronous", "OFF").unwrap();
            apply(&c, seq, &m);
        }
        let report = moat_audit::verify(&url, None, Some(&base.key_file)).unwrap();
        let problem = report.problem.clone();
        prop_assert!(problem.is_some(), "{m:?} on record {seq} not detected: {}", report.summary());
        let p = problem.unwrap();
        prop_assert_eq!(p.seq, seq, "{:?}: {}", m, p);
    }
}

#[test]
fn the_unmutated_copy_verifies() {
    let base = base();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    std::fs::copy(base.db_path(), &db).unwrap();
    let url = format!("sqlite://{}", db.display());
    let r = moat_audit::verify(&url, None, Some(&base.key_file)).unwrap();
    assert!(r.is_ok(), "{}", r.summary());
    assert_eq!(r.records, N);
}
