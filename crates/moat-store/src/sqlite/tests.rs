use super::*;

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

#[test]
fn keys_round_trip_and_changes_bump_the_version() {
    let s = SqliteStore::open_memory().unwrap();
    let v0 = s.keys_version().unwrap();
    s.insert_key(&key("k1", b"h1")).unwrap();
    assert_eq!(s.keys().unwrap(), vec![key("k1", b"h1")]);
    assert!(s.keys_version().unwrap() > v0);
    assert!(
        matches!(s.insert_key(&key("k2", b"h1")), Err(StoreError::Duplicate(_))),
        "hashes are unique"
    );
    let v1 = s.keys_version().unwrap();
    assert!(s.revoke_key("k1", 50).unwrap());
    assert!(!s.revoke_key("k1", 51).unwrap(), "already revoked");
    assert!(s.keys_version().unwrap() > v1);
    assert_eq!(s.keys().unwrap()[0].revoked_at, Some(50));
    assert!(
        !s.rotate_key("k1", b"h9", "moat-new").unwrap(),
        "a revoked key cannot be rotated"
    );
}

#[test]
fn teams_are_unique_by_name() {
    let s = SqliteStore::open_memory().unwrap();
    s.insert_team(&TeamRecord::new("t1", "research")).unwrap();
    assert!(matches!(
        s.insert_team(&TeamRecord::new("t2", "research")),
        Err(StoreError::Duplicate(_))
    ));
    let limits = Limits {
        budget_nanos: Some(7),
        budget_period: Some("month".into()),
        rpm: None,
        tpm: Some(9),
    };
    s.update_team_limits("t1", &limits).unwrap();
    assert_eq!(s.teams().unwrap()[0].limits, limits);
    assert!(matches!(
        s.update_team_limits("nope", &limits),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn usage_is_idempotent_by_request_id() {
    let s = SqliteStore::open_memory().unwrap();
    s.record_usage(usage("r1", "k1", 100, 7)).unwrap();
    s.record_usage(usage("r1", "k1", 100, 7)).unwrap();
    s.record_usage(usage("r2", "k1", 200, 3)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.spend_since(&Scope::Key("k1".into()), 0).unwrap(), 10);
    assert_eq!(s.spend_since(&Scope::Key("k1".into()), 150).unwrap(), 3);
    assert_eq!(s.spend_since(&Scope::Team("t1".into()), 0).unwrap(), 10);
    assert_eq!(s.activity_since(&Scope::Key("k1".into()), 0).unwrap(), (2, 30));
    let report = s.usage_report(GroupBy::Model, 0).unwrap();
    assert_eq!(
        report,
        vec![UsageLine {
            group: "p/m".into(),
            requests: 2,
            prompt_tokens: 20,
            completion_tokens: 10,
            cost_nanos: 10
        }]
    );
}

#[test]
fn a_file_store_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/moat.db", dir.path().display());
    {
        let s = SqliteStore::open(&url).unwrap();
        s.insert_key(&key("k1", b"h1")).unwrap();
        s.record_usage(usage("r1", "k1", 100, 7)).unwrap();
        s.put_provider_secret("openrouter", b"nonce", b"cipher", 1)
            .unwrap();
    }
    let s = SqliteStore::open(&url).unwrap();
    assert_eq!(s.keys().unwrap().len(), 1);
    assert_eq!(
        s.spend_since(&Scope::Key("k1".into()), 0).unwrap(),
        7,
        "queued usage was committed on close"
    );
    assert_eq!(
        s.provider_secrets().unwrap(),
        vec![SealedSecret {
            provider: "openrouter".into(),
            nonce: b"nonce".to_vec(),
            ciphertext: b"cipher".to_vec()
        }]
    );
    assert!(matches!(
        SqliteStore::open("postgres://x"),
        Err(StoreError::BadUrl(_))
    ));
}

#[test]
fn team_provider_secrets_are_per_team_replaceable_and_bump_the_version() {
    let store = SqliteStore::open_memory().unwrap();
    store.insert_team(&TeamRecord::new("t1", "one")).unwrap();
    store.insert_team(&TeamRecord::new("t2", "two")).unwrap();
    let sealed = |team: &str, ct: &[u8]| TeamSealedSecret {
        team_id: team.into(),
        provider: "openrouter".into(),
        nonce: vec![1; 12],
        ciphertext: ct.to_vec(),
    };
    let v0 = store.keys_version().unwrap();
    store.put_team_provider_secret(&sealed("t1", b"a"), 5).unwrap();
    assert!(store.keys_version().unwrap() > v0, "gateways must reload");
    store.put_team_provider_secret(&sealed("t2", b"b"), 5).unwrap();
    store.put_team_provider_secret(&sealed("t1", b"c"), 6).unwrap();
    assert_eq!(
        store.team_provider_secrets().unwrap(),
        vec![sealed("t1", b"c"), sealed("t2", b"b")]
    );
    assert!(matches!(
        store.put_team_provider_secret(&sealed("nope", b"x"), 1),
        Err(StoreError::NotFound(_))
    ));
    assert!(store.delete_team_provider_secret("t1", "openrouter").unwrap());
    assert!(!store.delete_team_provider_secret("t1", "openrouter").unwrap());
    assert_eq!(store.team_provider_secrets().unwrap(), vec![sealed("t2", b"b")]);
}

fn stored(id: &str, tenant: &str, expires_at: i64) -> StoredResponse {
    StoredResponse {
        id: id.into(),
        tenant: tenant.into(),
        nonce: vec![1; 12],
        ciphertext: b"sealed".to_vec(),
        created_at: 10,
        expires_at,
    }
}

#[test]
fn responses_are_scoped_to_their_tenant_and_expire() {
    let s = SqliteStore::open_memory().unwrap();
    s.put_response(&stored("resp_1", "team:a", 100), 10).unwrap();
    assert_eq!(
        s.get_response("resp_1", "team:a", 50).unwrap(),
        Some(stored("resp_1", "team:a", 100))
    );
    assert_eq!(
        s.get_response("resp_1", "team:b", 50).unwrap(),
        None,
        "another tenant"
    );
    assert_eq!(s.get_response("resp_1", "team:a", 100).unwrap(), None, "expired");
    assert!(!s.delete_response("resp_1", "team:b").unwrap());
    assert!(s.get_response("resp_1", "team:a", 50).unwrap().is_some());
    // Writing later drops what has expired by then.
    s.put_response(&stored("resp_2", "team:a", 300), 200).unwrap();
    let left: i64 = s
        .conn()
        .query_row("SELECT COUNT(*) FROM responses", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 1);
    assert!(s.delete_response("resp_2", "team:a").unwrap());
    assert_eq!(s.get_response("resp_2", "team:a", 200).unwrap(), None);
}
