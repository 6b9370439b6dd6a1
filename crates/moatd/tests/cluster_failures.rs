//! What a moatd cluster does when a part fails, with real processes and servers: a node killed with
//! SIGKILL mid-burst, and Valkey and PostgreSQL each stopped and restarted under load. Each test
//! checks the behaviour docs/DEPLOY.md states, and that no usage row is lost or written twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster_support;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster_support::*;
use common::client;
use serde_json::json;

const DOLLAR: u64 = 1_000_000_000;

async fn status_of(url: &str, key: &str, body: serde_json::Value) -> u16 {
    client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn live_spend(c: &Cluster, key_id: &str) -> u64 {
    c.valkey
        .cli(&["GET", &format!("moat:k:{key_id}:spent:{}", today())])
        .unwrap()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_strands_no_budget_and_charges_nothing_twice() {
    let c = Cluster::start("hold_ttl_ms = 3000").await;
    let (a, b) = (c.node("a").await, c.node("b").await);
    let issued = admin_post(&a, "/admin/keys", json!({"name": "k", "budget": "0.5/day"})).await;
    let (key, key_id) = (
        issued["key"].as_str().unwrap().to_string(),
        issued["id"].as_str().unwrap().to_string(),
    );
    // Slow answers keep A's requests (and their holds) in flight; together they hold the whole budget.
    let slow = costly_request_with(json!({"content": "slow", "first_byte_delay_ms": 60000}));
    let http = client();
    let in_flight: Vec<_> = (0..40)
        .map(|_| {
            let (http, url, key, body) = (
                http.clone(),
                a.url("/v1/chat/completions"),
                key.clone(),
                slow.clone(),
            );
            tokio::spawn(async move { http.post(url).bearer_auth(key).json(&body).send().await })
        })
        .collect();
    // Wait until A has forwarded what fits (the rest it refused).
    let mut forwarded = 0;
    while forwarded == 0 || forwarded != c.upstream_requests() {
        forwarded = c.upstream_requests();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(forwarded > 20, "A admitted {forwarded}");
    a.crash();
    for t in in_flight {
        let _ = t.await.unwrap();
    }
    assert_eq!(
        status_of(&b.url(""), &key, costly_request()).await,
        402,
        "right after the crash the dead node's holds still count"
    );
    // The holds lapse (nobody renews them) and B serves the key again.
    let mut waited = 0;
    while status_of(&b.url(""), &key, costly_request()).await != 200 {
        waited += 1;
        assert!(waited < 200, "the dead node's holds never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let burst = burst(&[(b.url(""), key.clone())], 100, costly_request()).await;
    assert!(burst.other.is_empty(), "{:?}", burst.other);
    let answered = burst.ok as u64 + 1;
    let (rows, distinct, spent) = c.wait_for_rows(&key_id, answered, Duration::from_secs(10));
    assert_eq!(
        (rows, distinct),
        (answered, answered),
        "A's killed requests left no rows; B's one each"
    );
    assert!(spent <= DOLLAR / 2 + one_estimate(), "spent {spent}");
    assert_eq!(
        live_spend(&c, &key_id),
        spent,
        "the shared counter charged nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_stopped_under_load_refuses_metered_requests_then_rebuilds_spend_from_postgres() {
    let mut c = Cluster::start("").await;
    let (a, b) = (c.node("a").await, c.node("b").await);
    let issued = admin_post(&a, "/admin/keys", json!({"name": "k", "budget": "1/day"})).await;
    let (key, key_id) = (
        issued["key"].as_str().unwrap().to_string(),
        issued["id"].as_str().unwrap().to_string(),
    );
    let targets = vec![(a.url(""), key.clone()), (b.url(""), key.clone())];
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(targets.clone(), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    c.valkey.stop();
    let body = ready_until(&a, Duration::from_secs(10), |s, v| {
        s == 503 && v["limits"]["available"] == false
    })
    .await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(
        status_of(&b.url(""), &key, costly_request()).await,
        503,
        "fail closed"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    c.valkey.start_again().unwrap();
    for node in [&a, &b] {
        ready_until(node, Duration::from_secs(10), |s, v| {
            s == 200 && v["limits"]["available"] == true
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    assert_eq!(seen.errors, 0);
    assert!(
        seen.count(503) > 0,
        "metered requests were refused while Valkey was away"
    );
    assert!(
        seen.statuses.iter().all(|s| matches!(s, 200 | 402 | 503)),
        "{:?}",
        seen.statuses
    );
    // Use up the budget: Valkey came back empty, so this only stops at $1 if the spend so far was
    // rebuilt from PostgreSQL.
    let rest = burst(&targets, 300, costly_request()).await;
    assert!(rest.other.is_empty() && rest.unavailable == 0, "{rest:?}");
    let answered = (seen.count(200) + rest.ok) as u64;
    assert_eq!(
        c.upstream_requests() as u64,
        answered,
        "admitted is what the provider saw"
    );
    let (rows, distinct, spent) = c.wait_for_rows(&key_id, answered, Duration::from_secs(10));
    assert_eq!(
        (rows, distinct),
        (answered, answered),
        "no usage row lost or doubled"
    );
    assert!(spent <= DOLLAR + one_estimate(), "spent {spent}");
    assert!(rest.budget_refused > 0, "the budget ran out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_local_share_each_node_spends_only_its_share_while_valkey_is_away() {
    let mut c = Cluster::start("on_unavailable = \"local_share\"\nnodes = 2").await;
    let (a, b) = (c.node("a").await, c.node("b").await);
    let issued = admin_post(&a, "/admin/keys", json!({"name": "k", "budget": "1/day"})).await;
    let (key, key_id) = (
        issued["key"].as_str().unwrap().to_string(),
        issued["id"].as_str().unwrap().to_string(),
    );
    let targets = vec![(a.url(""), key.clone()), (b.url(""), key.clone())];
    let before = burst(&targets, 10, costly_request()).await;
    assert_eq!(before.ok, 10);
    c.wait_for_rows(&key_id, 10, Duration::from_secs(10));

    c.valkey.stop();
    let during = burst(&targets, 400, costly_request()).await;
    assert_eq!(during.unavailable, 0, "local_share serves instead of refusing");
    assert!(during.ok > 20, "both nodes served their shares: {during:?}");
    assert!(during.budget_refused > 0, "each share ran out");
    let body = ready(&a).await.1;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["limits"]["fallback"], true);
    let answered = (before.ok + during.ok) as u64;
    let (rows, distinct, spent) = c.wait_for_rows(&key_id, answered, Duration::from_secs(10));
    assert_eq!((rows, distinct), (answered, answered));
    assert!(
        spent <= DOLLAR + one_estimate(),
        "the shares together stayed within $1: {spent}"
    );

    c.valkey.start_again().unwrap();
    for node in [&a, &b] {
        ready_until(node, Duration::from_secs(10), |s, v| {
            s == 200 && v["limits"]["fallback"] == false
        })
        .await;
    }
    let after = burst(&targets, 100, costly_request()).await;
    let (_, _, total) = c.wait_for_rows(&key_id, answered + after.ok as u64, Duration::from_secs(10));
    assert!(
        total <= DOLLAR + one_estimate(),
        "shared limits resumed from the real spend: {total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_keeps_known_keys_working_and_loses_no_usage() {
    let c = Cluster::start("").await;
    let (a, b) = (c.node("a").await, c.node("b").await);
    let issued = admin_post(&a, "/admin/keys", json!({"name": "k", "budget": "50/day"})).await;
    let (key, key_id) = (
        issued["key"].as_str().unwrap().to_string(),
        issued["id"].as_str().unwrap().to_string(),
    );
    let targets = vec![(a.url(""), key.clone()), (b.url(""), key.clone())];
    // Both nodes know the key and its spend before the database goes.
    assert_eq!(burst(&targets, 4, costly_request()).await.ok, 4);
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(targets.clone(), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    c.pg.stop().unwrap();
    let body = ready_until(&a, Duration::from_secs(15), |_, v| {
        v["store"]["state"] == "unreachable" && v["store"]["spooled_rows"].as_u64() > Some(0)
    })
    .await;
    assert_eq!(body["status"], "degraded");
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.pg.start_again().unwrap();
    for node in [&a, &b] {
        ready_until(node, Duration::from_secs(30), |_, v| {
            v["store"]["state"] == "ok" && v["store"]["spooled_rows"] == 0
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    assert_eq!(seen.errors, 0);
    assert_eq!(
        seen.count(200),
        seen.statuses.len(),
        "known keys kept working: {:?}",
        seen.statuses
    );
    let answered = seen.count(200) as u64 + 4;
    let (rows, distinct, _) = c.wait_for_rows(&key_id, answered, Duration::from_secs(15));
    assert_eq!(
        (rows, distinct),
        (answered, answered),
        "every row arrived once, spool included"
    );
}
