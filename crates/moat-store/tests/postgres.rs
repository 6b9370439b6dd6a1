//! The PostgreSQL store against a real PostgreSQL server started for the test: the same behaviour as
//! SQLite (round trips, uniqueness, idempotent usage), migrations run by several nodes at once, key
//! changes seen by another node, and usage spooled while the database is down, replayed once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_store::{
    GroupBy, KeyRecord, Limits, PgOptions, PgStore, Scope, SealedSecret, Store, StoreError, StoredResponse,
    TeamRecord, TeamSealedSecret, UsageRow,
};
use moat_testkit::Postgres;

fn key(id: &str, hash: &[u8]) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        hash: hash.to_vec(),
        prefix: "moat-abc".into(),
        name: id.into(),
        team_id: None,
        limits: Limits {
            budget_nanos: Some(5),
            budget_period: Some("day".into()),
            rpm: Some(3),
            tpm: None,
        },
        models: vec!["local/*".into(), "fast".into()],
        local_only: true,
        expires_at: Some(99),
        revoked_at: None,
        created_at: 1,
    }
}

fn usage(id: &str, key: &str, ts: i64, cost: u64) -> UsageRow {
    UsageRow {
        request_id: id.into(),
        ts,
        key_id: Some(key.into()),
        team_id: Some("t1".into()),
        provider: "p".into(),
        model: "m".into(),
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_nanos: cost,
        status: "ok".into(),
    }
}

fn open(url: &str) -> PgStore {
    PgStore::open(url, PgOptions::default()).unwrap()
}

#[test]
fn keys_teams_usage_and_secrets_round_trip() {
    let pg = Postgres::start().unwrap();
    let s = open(&pg.url());
    let v0 = s.keys_version().unwrap();
    s.insert_team(&TeamRecord::new("t1", "research")).unwrap();
    assert!(matches!(
        s.insert_team(&TeamRecord::new("t2", "research")),
        Err(StoreError::Duplicate(_))
    ));
    s.insert_key(&key("k1", b"h1")).unwrap();
    assert_eq!(s.keys().unwrap(), vec![key("k1", b"h1")]);
    assert!(s.keys_version_fresh().unwrap() > v0);
    assert!(matches!(
        s.insert_key(&key("k2", b"h1")),
        Err(StoreError::Duplicate(_))
    ));
    assert!(s.revoke_key("k1", 50).unwrap());
    assert!(!s.revoke_key("k1", 51).unwrap());
    assert_eq!(s.keys().unwrap()[0].revoked_at, Some(50));
    let limits = Limits {
        budget_nanos: Some(7),
        budget_period: Some("month".into()),
        rpm: None,
        tpm: Some(9),
    };
    s.update_team_limits("t1", &limits).unwrap();
    assert_eq!(s.teams().unwrap()[0].limits, limits);
    assert!(matches!(
        s.update_key_limits("nope", &limits),
        Err(StoreError::NotFound(_))
    ));

    s.record_usage(usage("r1", "k1", 100, 7)).unwrap();
    s.record_usage(usage("r1", "k1", 100, 7)).unwrap();
    s.record_usage(usage("r2", "k1", 200, 3)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.spend_since(&Scope::Key("k1".into()), 0).unwrap(), 10);
    assert_eq!(s.spend_since(&Scope::Key("k1".into()), 150).unwrap(), 3);
    assert_eq!(s.spend_since(&Scope::Team("t1".into()), 0).unwrap(), 10);
    assert_eq!(s.activity_since(&Scope::Key("k1".into()), 0).unwrap(), (2, 30));
    assert_eq!(s.usage_report(GroupBy::Model, 0).unwrap()[0].cost_nanos, 10);
    assert_eq!(s.usage_rows("", 10).unwrap().len(), 2);
    let series: Vec<(i64, String, u64, u64)> = s
        .usage_series(GroupBy::Key, 0, 100, None)
        .unwrap()
        .into_iter()
        .map(|p| (p.start, p.line.group, p.line.requests, p.line.cost_nanos))
        .collect();
    assert_eq!(series, [(100, "k1".into(), 1, 7), (200, "k1".into(), 1, 3)]);
    assert!(s
        .usage_series(GroupBy::Model, 0, 100, Some("t2"))
        .unwrap()
        .is_empty());
    assert_eq!(s.usage_rows("r1", 10).unwrap()[0].request_id, "r2");

    s.put_provider_secret("openrouter", b"nonce", b"cipher", 1)
        .unwrap();
    s.put_provider_secret("openrouter", b"nonce2", b"cipher2", 2)
        .unwrap();
    assert_eq!(
        s.provider_secrets().unwrap(),
        vec![SealedSecret {
            provider: "openrouter".into(),
            nonce: b"nonce2".to_vec(),
            ciphertext: b"cipher2".to_vec()
        }]
    );
    let sealed = TeamSealedSecret {
        team_id: "t1".into(),
        provider: "openrouter".into(),
        nonce: vec![1; 12],
        ciphertext: b"a".to_vec(),
    };
    s.put_team_provider_secret(&sealed, 5).unwrap();
    assert_eq!(s.team_provider_secrets().unwrap(), vec![sealed]);
    assert!(matches!(
        s.put_team_provider_secret(
            &TeamSealedSecret {
                team_id: "nope".into(),
                provider: "x".into(),
                nonce: vec![],
                ciphertext: vec![]
            },
            1
        ),
        Err(StoreError::NotFound(_))
    ));
    assert!(s.delete_team_provider_secret("t1", "openrouter").unwrap());
    assert!(!s.delete_team_provider_secret("t1", "openrouter").unwrap());

    // Responses state: scoped to its tenant, gone when expired or deleted.
    let turn = |id: &str, tenant: &str, expires_at: i64| StoredResponse {
        id: id.into(),
        tenant: tenant.into(),
        nonce: vec![2; 12],
        ciphertext: b"sealed".to_vec(),
        created_at: 10,
        expires_at,
    };
    s.put_response(&turn("resp_1", "team:a", 100), 10).unwrap();
    s.put_response(&turn("resp_old", "team:a", 20), 10).unwrap();
    assert_eq!(
        s.get_response("resp_1", "team:a", 50).unwrap(),
        Some(turn("resp_1", "team:a", 100))
    );
    assert_eq!(
        s.get_response("resp_1", "team:b", 50).unwrap(),
        None,
        "another tenant's"
    );
    assert_eq!(s.get_response("resp_1", "team:a", 100).unwrap(), None, "expired");
    s.put_response(&turn("resp_2", "team:a", 200), 30).unwrap();
    assert_eq!(
        pg.psql("postgres", "SELECT COUNT(*) FROM responses WHERE id = 'resp_old'")
            .unwrap(),
        "0",
        "expired turns are dropped on the next write"
    );
    assert!(!s.delete_response("resp_1", "team:b").unwrap());
    assert!(s.delete_response("resp_1", "team:a").unwrap());
    assert_eq!(s.get_response("resp_1", "team:a", 50).unwrap(), None);
}

#[test]
fn nodes_starting_together_migrate_once_and_see_each_others_key_changes() {
    let pg = Postgres::start().unwrap();
    let url = pg.url();
    let nodes: Vec<Arc<PgStore>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| Arc::new(open(&url)))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT COUNT(*) = COUNT(DISTINCT version) AND COUNT(*) = MAX(version) FROM moat_schema"
        )
        .unwrap(),
        "t",
        "every migration ran exactly once"
    );
    let before = nodes[1].keys_version().unwrap();
    nodes[0].insert_key(&key("k1", b"h1")).unwrap();
    // Node 1 hears of the change without asking (notification, or the polling fallback).
    let deadline = Instant::now() + Duration::from_secs(1);
    while nodes[1].keys_version().unwrap() == before {
        assert!(
            Instant::now() < deadline,
            "the change did not reach the other node within 1 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(nodes[1].keys().unwrap().len(), 1);
}

#[test]
fn usage_written_while_postgres_is_down_is_spooled_and_replayed_once() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool.jsonl");
    let options = PgOptions {
        spool_file: Some(spool.clone()),
        timeout: Duration::from_millis(500),
        ..PgOptions::default()
    };
    let s = PgStore::open(&pg.url(), options.clone()).unwrap();
    s.record_usage(usage("before", "k1", 100, 1)).unwrap();
    s.flush().unwrap();
    pg.stop().unwrap();
    for i in 0..50 {
        s.record_usage(usage(&format!("down-{i}"), "k1", 200, 2)).unwrap();
    }
    // The same row twice: idempotent on replay too.
    s.record_usage(usage("down-0", "k1", 200, 2)).unwrap();
    assert!(s.flush().is_err(), "rows are spooled, not committed");
    assert!(s.status().unreachable);
    assert_eq!(s.status().spooled, 51);
    assert!(std::fs::metadata(&spool).unwrap().len() > 0);
    pg.start_again().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.flush().is_err() {
        assert!(Instant::now() < deadline, "spool not replayed: {:?}", s.status());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.spend_since(&Scope::Key("k1".into()), 0).unwrap(), 1 + 50 * 2);
    assert_eq!(s.status().spooled, 0);
    assert!(!s.status().unreachable);
    assert!(!spool.exists(), "an emptied spool is removed");
}

#[test]
fn a_spool_left_by_a_crashed_node_is_replayed_at_its_next_start() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool.jsonl");
    let row = serde_json::to_string(&usage("left-behind", "k9", 5, 42)).unwrap();
    std::fs::write(&spool, format!("{row}\n{row}\n")).unwrap();
    let s = PgStore::open(
        &pg.url(),
        PgOptions {
            spool_file: Some(spool.clone()),
            ..PgOptions::default()
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.spend_since(&Scope::Key("k9".into()), 0).unwrap() == 0 {
        assert!(Instant::now() < deadline, "spool not replayed at start");
        s.record_usage(usage("nudge", "k8", 5, 0)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.spend_since(&Scope::Key("k9".into()), 0).unwrap(), 42);
}
