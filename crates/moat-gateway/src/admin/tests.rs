use moat_store::SqliteStore;

use super::*;

const NOW: i64 = 1_795_435_200;

fn setup() -> (SqliteStore, ServerSecret) {
    (
        SqliteStore::open_memory().unwrap(),
        ServerSecret::from_text("admin tests"),
    )
}

#[test]
fn keys_are_issued_once_and_stored_hashed() {
    let (store, secret) = setup();
    create_team(
        &store,
        &NewTeam {
            name: "research".into(),
            limits: LimitSpec {
                budget: Some("50/month".into()),
                ..Default::default()
            },
        },
        NOW,
    )
    .unwrap();
    let new = NewKey {
        name: "alice".into(),
        team: Some("research".into()),
        limits: LimitSpec {
            budget: Some("5/day".into()),
            rpm: Some(10),
            tpm: None,
        },
        models: vec!["local/*".into()],
        local_only: true,
        expires: Some("30d".into()),
    };
    let issued = create_key(&store, &secret, &new, NOW).unwrap();
    assert!(issued.key.starts_with("moat-") && issued.key.starts_with(&issued.prefix));
    let stored = &store.keys().unwrap()[0];
    assert_eq!(stored.hash, secret.hash_key(&issued.key).to_vec());
    assert!(
        !format!("{stored:?}").contains(&issued.key[13..]),
        "the store never holds the key"
    );
    assert_eq!(stored.expires_at, Some(NOW + 30 * 86_400));
    let listed = list_keys(&store, NOW).unwrap();
    assert_eq!(listed[0].team.as_deref(), Some("research"));
    assert_eq!(listed[0].budget.as_deref(), Some("$5/day"));
    assert_eq!(listed[0].status, "active");
    assert_eq!(
        list_teams(&store, NOW).unwrap()[0].budget.as_deref(),
        Some("$50/month")
    );
}

#[test]
fn revoke_and_rotate_by_prefix_or_name() {
    let (store, secret) = setup();
    let a = create_key(
        &store,
        &secret,
        &NewKey {
            name: "a".into(),
            ..Default::default()
        },
        NOW,
    )
    .unwrap();
    let rotated = rotate_key(&store, &secret, &a.prefix).unwrap();
    assert_eq!(rotated.id, a.id);
    assert_ne!(rotated.key, a.key);
    assert_eq!(
        store.keys().unwrap()[0].hash,
        secret.hash_key(&rotated.key).to_vec()
    );
    revoke_key(&store, &secret, "a", NOW).unwrap();
    assert!(matches!(
        revoke_key(&store, &secret, &a.id, NOW),
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        rotate_key(&store, &secret, &a.id),
        Err(AdminError::Invalid(_))
    ));
    assert_eq!(list_keys(&store, NOW).unwrap()[0].status, "revoked");
    assert!(matches!(
        revoke_key(&store, &secret, "nobody", NOW),
        Err(AdminError::NotFound(_))
    ));
}

#[test]
fn bad_input_is_explained() {
    let (store, secret) = setup();
    let bad = |new: NewKey| create_key(&store, &secret, &new, NOW).unwrap_err().to_string();
    assert!(bad(NewKey {
        name: "".into(),
        ..Default::default()
    })
    .contains("name"));
    assert!(bad(NewKey {
        name: "x".into(),
        limits: LimitSpec {
            budget: Some("5/week".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .contains("5/week"));
    assert!(bad(NewKey {
        name: "x".into(),
        team: Some("ghost".into()),
        ..Default::default()
    })
    .contains("ghost"));
    assert!(bad(NewKey {
        name: "x".into(),
        expires: Some("soon".into()),
        ..Default::default()
    })
    .contains("soon"));
    assert!(bad(NewKey {
        name: "x".into(),
        models: vec!["[".into()],
        ..Default::default()
    })
    .contains("pattern"));
    assert!(bad(NewKey {
        name: "x".into(),
        limits: LimitSpec {
            rpm: Some(0),
            ..Default::default()
        },
        ..Default::default()
    })
    .contains("rpm"));
    create_team(
        &store,
        &NewTeam {
            name: "t".into(),
            ..Default::default()
        },
        NOW,
    )
    .unwrap();
    assert!(matches!(
        create_team(
            &store,
            &NewTeam {
                name: "t".into(),
                ..Default::default()
            },
            NOW
        ),
        Err(AdminError::Conflict(_))
    ));
}

#[test]
fn provider_keys_are_sealed() {
    let (store, secret) = setup();
    set_provider_key(&store, &secret, "openrouter", "sk-or-v1-secret\n", NOW).unwrap();
    let sealed = store.provider_secrets().unwrap().remove(0);
    let (name, nonce, ct) = (sealed.provider, sealed.nonce, sealed.ciphertext);
    assert_eq!(name, "openrouter");
    assert!(!String::from_utf8_lossy(&ct).contains("sk-or"));
    assert_eq!(secret.open(&name, &nonce, &ct).unwrap(), "sk-or-v1-secret");
    assert!(set_provider_key(&store, &secret, "x", "  ", NOW).is_err());
}

#[test]
fn dates_and_groupings() {
    assert_eq!(parse_date("2026-11-01").unwrap(), 1_793_491_200);
    assert!(parse_date("2026-13-01").is_err());
    assert!(parse_date("yesterday").is_err());
    assert!(group_by("model").is_ok() && group_by("user").is_err());
}
