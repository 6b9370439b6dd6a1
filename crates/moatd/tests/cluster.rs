//! moatd as a cluster: real `moatd` processes sharing a real PostgreSQL and a real Valkey (or Redis),
//! started by the test. Budgets stay exact across nodes (spend never passes a limit by more than one
//! request's estimate, and what was admitted is exactly what the provider saw), and keys created or
//! revoked through one node are accepted or refused by the others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster_support;
mod common;

use std::time::{Duration, Instant};

use cluster_support::*;
use common::{client, moatd_cmd};
use serde_json::json;

const DOLLAR: u64 = 1_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_over_two_nodes_cannot_overspend_a_one_dollar_key() {
    let c = Cluster::start("").await;
    let (a, b) = (c.node("a").await, c.node("b").await);
    let issued = admin_post(&a, "/admin/keys", json!({"name": "burst", "budget": "1/day"})).await;
    let (key, key_id) = (issued["key"].as_str().unwrap(), issued["id"].as_str().unwrap());
    let targets = [(a.url(""), key.to_string()), (b.url(""), key.to_string())];
    let burst = burst(&targets, 1000, costly_request()).await;
    assert!(burst.other.is_empty(), "unexpected statuses {:?}", burst.other);
    assert_eq!(burst.ok + burst.budget_refused, 1000);
    assert!(
        burst.ok > 50 && burst.ok < 150,
        "about 90 fit in $1, got {}",
        burst.ok
    );
    assert_eq!(
        c.upstream_requests(),
        burst.ok,
        "the admitted requests are exactly those the provider saw"
    );
    let (rows, distinct, spent) = c.wait_for_rows(key_id, burst.ok as u64, Duration::from_secs(10));
    assert_eq!(
        (rows, distinct),
        (burst.ok as u64, burst.ok as u64),
        "one usage row per answer"
    );
    assert!(
        spent <= DOLLAR + one_estimate(),
        "spent {spent} > $1 + one estimate {}",
        one_estimate()
    );
    // The shared counter agrees with the usage rows: nothing counted twice or missed.
    let live: u64 = c
        .valkey
        .cli(&["GET", &format!("moat:k:{key_id}:spent:{}", today())])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(live, spent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_budget_holds_over_three_nodes_and_three_keys() {
    let c = Cluster::start("").await;
    let nodes = [c.node("a").await, c.node("b").await, c.node("c").await];
    let team = admin_post(
        &nodes[0],
        "/admin/teams",
        json!({"name": "research", "budget": "1/day"}),
    )
    .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    let mut targets = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        // Each key is made through a different node; the others learn of it.
        let issued = admin_post(
            node,
            "/admin/keys",
            json!({"name": format!("k{i}"), "team": "research"}),
        )
        .await;
        targets.push((node.url(""), issued["key"].as_str().unwrap().to_string()));
    }
    let burst = burst(&targets, 900, costly_request()).await;
    assert!(burst.other.is_empty(), "unexpected statuses {:?}", burst.other);
    assert!(
        burst.ok > 50 && burst.ok < 150,
        "about 90 fit in $1, got {}",
        burst.ok
    );
    assert_eq!(c.upstream_requests(), burst.ok);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (rows, distinct, spent) = loop {
        let got = c.usage_of_team(&team_id);
        if got.0 >= burst.ok as u64 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((rows, distinct), (burst.ok as u64, burst.ok as u64));
    assert!(spent <= DOLLAR + one_estimate(), "team spent {spent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_or_revoked_through_one_node_are_honoured_by_the_others() {
    let c = Cluster::start("").await;
    let (a, b) = (c.node("a").await, c.node("b").await);
    let http = client();
    let ask = |url: String, key: String| {
        let http = http.clone();
        async move {
            http.post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&costly_request())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Created through A's admin API, used on B at once.
    let issued = admin_post(&a, "/admin/keys", json!({"name": "fresh"})).await;
    let key = issued["key"].as_str().unwrap().to_string();
    assert_eq!(
        ask(b.url(""), key.clone()).await,
        200,
        "a key made on A works on B at once"
    );

    // Revoked through A: refused on B within a second.
    let id = issued["id"].as_str().unwrap();
    admin_post(&a, &format!("/admin/keys/{id}/revoke"), json!({})).await;
    let revoked_at = Instant::now();
    while ask(b.url(""), key.clone()).await != 401 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "B still accepts a key revoked on A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same through the CLI against the shared store.
    let second = admin_post(&b, "/admin/keys", json!({"name": "cli"})).await;
    let key2 = second["key"].as_str().unwrap().to_string();
    assert_eq!(ask(a.url(""), key2.clone()).await, 200);
    let config = c.config("cli");
    let (out, err, ok) = moatd_cmd(
        c.dir.path(),
        &[
            "keys",
            "revoke",
            second["id"].as_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let revoked_at = Instant::now();
    for node in [&a, &b] {
        while ask(node.url(""), key2.clone()).await != 401 {
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "a CLI revocation took over 1 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (list, _, ok) = moatd_cmd(
        c.dir.path(),
        &["keys", "list", "--config", config.to_str().unwrap()],
        None,
    );
    assert!(ok && list.contains("fresh") && list.contains("cli"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_in_postgres_keeps_one_chain_per_node_and_verify_checks_each() {
    let mut c = Cluster::start("").await;
    c.audit = true;
    let (a, b) = (c.node("a").await, c.node("b").await);
    let issued = admin_post(&a, "/admin/keys", json!({"name": "audited"})).await;
    let key = issued["key"].as_str().unwrap().to_string();
    let got = burst(
        &[(a.url(""), key.clone()), (b.url(""), key)],
        20,
        costly_request(),
    )
    .await;
    assert_eq!(got.ok, 20);
    let count = |node: &str| -> u64 {
        c.pg.psql(
            "postgres",
            &format!("SELECT COUNT(*) FROM audit_records WHERE node_id = '{node}'"),
        )
        .unwrap()
        .parse()
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("a") < 11 || count("b") < 10 {
        assert!(Instant::now() < deadline, "audit records did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let config = c.config("a");
    let verify = || {
        moatd_cmd(
            c.dir.path(),
            &["audit", "verify", "--config", config.to_str().unwrap()],
            None,
        )
    };
    let (out, err, ok) = verify();
    assert!(ok, "{out}{err}");
    assert!(out.contains("node a: OK") && out.contains("node b: OK"), "{out}");
    let (export, _, ok) = moatd_cmd(
        c.dir.path(),
        &["audit", "export", "--config", config.to_str().unwrap()],
        None,
    );
    assert!(ok);
    assert!(export.lines().any(|l| l.contains("\"node\":\"b\"")), "{export}");

    // Tamper with node b's chain: verify names the chain and the record, and fails.
    c.pg.psql(
        "postgres",
        "UPDATE audit_records SET payload = replace(payload, '200', '201') WHERE node_id = 'b' AND seq = 2",
    )
    .unwrap();
    let (out, err, ok) = verify();
    assert!(!ok, "{out}{err}");
    assert!(err.contains("node b") && err.contains("record 2"), "{err}");
    assert!(out.contains("node a: OK"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_moves_a_sqlite_node_to_postgres_with_keys_usage_and_sealed_keys() {
    let pg = tokio::task::spawn_blocking(|| moat_testkit::Postgres::start().unwrap())
        .await
        .unwrap();
    let emu = moat_testkit::Emulator::start(moat_testkit::EmulatorOptions {
        api_key: Some("sk-provider".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let provider = format!(
        "[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\nprices = {{ \"*\" = [1.0, 1.0] }}\n[audit]\nenabled = false\n",
        emu.base_url()
    );
    let sqlite_cfg = data.path().join("single.toml");
    std::fs::write(&sqlite_cfg, &provider).unwrap();
    let secret_file = data.path().join("moat/secret");
    let pg_cfg = data.path().join("cluster.toml");
    std::fs::write(
        &pg_cfg,
        format!(
            "{provider}[store]\nurl = \"{}\"\nsecret_file = \"{}\"\n",
            pg.url(),
            secret_file.display()
        ),
    )
    .unwrap();
    let (sq, pgc) = (sqlite_cfg.to_str().unwrap(), pg_cfg.to_str().unwrap());
    let run = |args: &[&str], stdin: Option<&str>| {
        let (out, err, ok) = moatd_cmd(data.path(), args, stdin);
        assert!(ok, "{args:?}: {out}{err}");
        out
    };
    run(
        &[
            "teams", "create", "--config", sq, "--name", "research", "--budget", "20/month",
        ],
        None,
    );
    let key = run(
        &[
            "keys", "create", "--config", sq, "--name", "alice", "--team", "research", "--budget", "5/day",
        ],
        None,
    )
    .trim()
    .to_string();
    run(
        &["providers", "set-key", "emu", "--config", sq],
        Some("sk-provider"),
    );
    // One request on the single node, so there is usage to carry over.
    let single = common::Daemon::start_in(
        data.path(),
        &["serve", "--config", sq, "--listen", "127.0.0.1:0"],
        &[],
    );
    let r = client()
        .post(single.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&costly_request())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    single.stop();

    let out = run(&["store", "migrate", "--config", sq, "--to", &pg.url()], None);
    assert!(
        out.contains("keys: 1 new") && out.contains("usage rows: 1"),
        "{out}"
    );
    let again = run(&["store", "migrate", "--config", sq, "--to", &pg.url()], None);
    assert!(
        again.contains("keys: 0 new, 1 already there"),
        "copying twice is harmless: {again}"
    );

    // A node on PostgreSQL serves the old key with the migrated (sealed) provider key...
    let node = common::Daemon::start_in(
        data.path(),
        &["serve", "--config", pgc, "--listen", "127.0.0.1:0"],
        &[],
    );
    let r = client()
        .post(node.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&costly_request())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // ...and the CLI reads keys, teams and usage from it with the same flags.
    let keys = run(&["keys", "list", "--config", pgc, "--json"], None);
    assert!(keys.contains("alice") && keys.contains("research"), "{keys}");
    let teams = run(&["teams", "list", "--config", pgc], None);
    assert!(teams.contains("research"), "{teams}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let usage = run(&["usage", "--config", pgc, "--by", "model", "--csv"], None);
        if usage.contains("emu/tiny,2,") {
            break;
        }
        assert!(Instant::now() < deadline, "{usage}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
