//! Virtual keys, teams, budgets and rate limits through the real request path, on a real SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use moat_gateway::admin::{self, LimitSpec, NewKey, NewTeam};
use moat_policy::budget::{usd_to_nanos, NANOS_PER_USD};
use moat_store::{Scope, SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

fn now() -> i64 {
    moat_gateway::ledger::now()
}

/// An emulator whose `tiny` costs $0.0001 per token, prompt and completion (the price moatd learns
/// from its `/models`, and the cost the emulator reports in `usage.cost`).
async fn priced_emulator() -> Emulator {
    let models = json!([{"id": "tiny", "object": "model", "created": 1, "owned_by": "emu", "context_length": 4096,
        "pricing": {"prompt": "0.0001", "completion": "0.0001"}}]);
    Emulator::start(EmulatorOptions {
        models: Some(models),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn memory_store() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_memory().unwrap())
}

fn key(store: &dyn Store, name: &str, team: Option<&str>, limits: LimitSpec) -> String {
    let new = NewKey {
        name: name.into(),
        team: team.map(str::to_string),
        limits,
        ..Default::default()
    };
    admin::create_key(store, &secret(), &new, now()).unwrap().key
}

fn budget(b: &str) -> LimitSpec {
    LimitSpec {
        budget: Some(b.into()),
        ..Default::default()
    }
}

/// ~400 characters of prompt and a 10-word answer: about 110 tokens, $0.011 actual, $0.017 reserved.
fn costly_request() -> Value {
    json!({
        "model": "emu/tiny",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "lorem ipsum dolor sit amet ".repeat(15)}],
        "emulate": {"content": "one two three four five six seven eight nine ten"}
    })
}

struct Burst {
    ok: usize,
    refused: usize,
    reported_cost: u64,
    max_hold_usd: f64,
}

async fn burst(gw: &TestGateway, key: &str, n: usize) -> Burst {
    let http = client();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let http = http.clone();
            let url = gw.url("/v1/chat/completions");
            let key = key.to_string();
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(key)
                    .json(&costly_request())
                    .send()
                    .await
            })
        })
        .collect();
    let mut b = Burst {
        ok: 0,
        refused: 0,
        reported_cost: 0,
        max_hold_usd: 0.0,
    };
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        match resp.status().as_u16() {
            200 => {
                b.ok += 1;
                let body: Value = resp.json().await.unwrap();
                b.reported_cost += usd_to_nanos(body["usage"]["cost"].as_f64().unwrap());
            }
            402 => {
                b.refused += 1;
                assert!(
                    resp.headers().contains_key("retry-after"),
                    "a daily budget says when it resets"
                );
                let (_, body) = error_of(resp).await;
                assert_eq!(body["error"]["code"], "budget_exceeded");
            }
            other => panic!("unexpected status {other}: {}", resp.text().await.unwrap()),
        }
    }
    // The reservation: (body bytes / 3 + 3) prompt tokens + 10 output, at $0.0001 each.
    let body_len = serde_json::to_vec(&costly_request()).unwrap().len() as f64;
    b.max_hold_usd = ((body_len / 3.0).ceil() + 3.0 + 10.0) * 0.0001;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_cannot_overspend_a_key_budget() {
    let emu = priced_emulator().await;
    let store = memory_store();
    let k = key(store.as_ref(), "burst", None, budget("1/day"));
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    let b = burst(&gw, &k, 1000).await;
    store.flush().unwrap();
    let key_id = store.keys().unwrap()[0].id.clone();
    let spent = store.spend_since(&Scope::Key(key_id), 0).unwrap();
    let limit = NANOS_PER_USD;
    let allowance = usd_to_nanos(b.max_hold_usd);
    assert!(b.ok > 50 && b.ok < 150, "about 90 fit, got {}", b.ok);
    assert_eq!(b.ok + b.refused, 1000);
    assert!(
        spent <= limit + allowance,
        "spent {spent} > limit {limit} + one estimate {allowance}"
    );
    assert_eq!(
        spent, b.reported_cost,
        "settled exactly what the provider reported"
    );
    let reached = emu
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(
        reached, b.ok,
        "exactly the admitted requests reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_budget_binds_all_its_keys() {
    let emu = priced_emulator().await;
    let store = memory_store();
    admin::create_team(
        store.as_ref(),
        &NewTeam {
            name: "research".into(),
            limits: budget("1/day"),
        },
        now(),
    )
    .unwrap();
    let a = key(store.as_ref(), "a", Some("research"), LimitSpec::default());
    let b = key(store.as_ref(), "b", Some("research"), LimitSpec::default());
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    let (ra, rb) = tokio::join!(burst(&gw, &a, 500), burst(&gw, &b, 500));
    store.flush().unwrap();
    let team_id = store.teams().unwrap()[0].id.clone();
    let spent = store.spend_since(&Scope::Team(team_id), 0).unwrap();
    assert!(
        spent <= NANOS_PER_USD + usd_to_nanos(ra.max_hold_usd),
        "team spent {spent}"
    );
    assert!(ra.refused + rb.refused > 800, "the team budget bound");
    let reached = emu
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(reached, ra.ok + rb.ok);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let emu = priced_emulator().await;
    let store = memory_store();
    let k = key(
        store.as_ref(),
        "slow",
        None,
        LimitSpec {
            rpm: Some(2),
            ..Default::default()
        },
    );
    let t = key(
        store.as_ref(),
        "tokens",
        None,
        LimitSpec {
            tpm: Some(200),
            ..Default::default()
        },
    );
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store).await;
    let chat = json!({"model": "emu/tiny", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        let r = gw.chat(Some(&k), &chat).await;
        assert_eq!(r.status(), 200);
    }
    let r = gw.chat(Some(&k), &chat).await;
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
    // 200 tokens per minute: a request reserving more than that is refused outright.
    let mut big = chat.clone();
    big["max_tokens"] = json!(500);
    let r = gw.chat(Some(&t), &big).await;
    assert_eq!(error_of(r).await.0, 429);
    let r = gw.chat(Some(&t), &chat).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn revocation_refuses_the_very_next_request_with_the_same_401() {
    let emu = priced_emulator().await;
    let store = memory_store();
    let k = key(store.as_ref(), "short-lived", None, LimitSpec::default());
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    let chat = json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.chat(Some(&k), &chat).await;
    assert_eq!(r.status(), 200);
    admin::revoke_key(store.as_ref(), &secret(), "short-lived", now()).unwrap();
    let revoked = gw.chat(Some(&k), &chat).await;
    let (status, revoked_body) = error_of(revoked).await;
    assert_eq!(status, 401);
    let unknown = gw
        .chat(Some("moat-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), &chat)
        .await;
    let (_, unknown_body) = error_of(unknown).await;
    assert_eq!(
        revoked_body, unknown_body,
        "no oracle: revoked and unknown keys look the same"
    );
    let expired = admin::create_key(
        store.as_ref(),
        &secret(),
        &NewKey {
            name: "e".into(),
            expires: Some("1s".into()),
            ..Default::default()
        },
        now() - 10,
    )
    .unwrap();
    let r = gw.chat(Some(&expired.key), &chat).await;
    assert_eq!(error_of(r).await.1, unknown_body);
    assert!(
        !revoked_body.to_string().contains(&k[5..]),
        "the key is not echoed"
    );
}

#[tokio::test]
async fn a_restart_keeps_keys_spend_and_windows() {
    let emu = priced_emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/moat.db", dir.path().display());
    let toml = provider("emu", &emu.base_url());
    let k;
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).unwrap());
        k = key(
            store.as_ref(),
            "durable",
            None,
            LimitSpec {
                budget: Some("0.05/day".into()),
                rpm: Some(4),
                tpm: None,
            },
        );
        let gw = gateway_with_store(&toml, store.clone()).await;
        for _ in 0..3 {
            let r = gw.chat(Some(&k), &costly_request()).await;
            assert_eq!(r.status(), 200);
        }
        drop(gw);
    }
    // A new gateway on the same file: ~$0.033 already spent of $0.05, so a $0.017 hold no longer fits;
    // and 3 of 4 requests this minute are used (unless the minute turned).
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).unwrap());
    let gw = gateway_with_store(&toml, store).await;
    let r = gw.chat(Some(&k), &costly_request()).await;
    let (status, body) = error_of(r).await;
    assert!(
        status == 402 || status == 429,
        "spend survived the restart: {status} {body}"
    );
    let info: Value = client()
        .get(gw.url("/api/v1/key"))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["data"]["usage"].as_f64().unwrap() > 0.03, "{info}");
}

#[tokio::test]
async fn key_info_speaks_openrouter() {
    let emu = priced_emulator().await;
    let store = memory_store();
    let daily = key(store.as_ref(), "daily", None, budget("5/day"));
    let open = key(store.as_ref(), "unlimited", None, LimitSpec::default());
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store).await;
    let r = gw.chat(Some(&daily), &costly_request()).await;
    assert_eq!(r.status(), 200);
    let info: Value = client()
        .get(gw.url("/api/v1/key"))
        .bearer_auth(&daily)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &info["data"];
    assert_eq!(d["limit"], 5.0);
    assert_eq!(d["limit_reset"], "daily");
    assert!(
        d["usage"].as_f64().unwrap() > 0.0
            && d["usage_daily"] == d["usage"]
            && d["usage_monthly"] == d["usage"]
    );
    assert!((d["limit_remaining"].as_f64().unwrap() - (5.0 - d["usage"].as_f64().unwrap())).abs() < 1e-9);
    assert!(d["label"].as_str().unwrap().starts_with("daily ("));
    let info: Value = client()
        .get(gw.url("/api/v1/key"))
        .bearer_auth(&open)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["data"]["limit"].is_null() && info["data"]["limit_reset"].is_null());
    let r = client()
        .get(gw.url("/api/v1/key"))
        .bearer_auth("moat-nope")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 401);
}

#[tokio::test]
async fn key_rules_limit_models_and_routes() {
    let emu = priced_emulator().await;
    let local = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let store = memory_store();
    let only_local = admin::create_key(
        store.as_ref(),
        &secret(),
        &NewKey {
            name: "l".into(),
            local_only: true,
            ..Default::default()
        },
        now(),
    )
    .unwrap()
    .key;
    let only_tiny = admin::create_key(
        store.as_ref(),
        &secret(),
        &NewKey {
            name: "m".into(),
            models: vec!["emu/tiny".into()],
            ..Default::default()
        },
        now(),
    )
    .unwrap()
    .key;
    let toml = format!(
        "{}{}local = true\n[[models]]\nname = \"any\"\nroute = [\"emu/tiny\", \"home/tiny\"]\n",
        provider("emu", &emu.base_url()),
        provider("home", &local.base_url())
    );
    let gw = gateway_with_store(&toml, store).await;
    let chat = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.chat(Some(&only_local), &chat("emu/tiny")).await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("local_only"))
    );
    let r = gw.chat(Some(&only_local), &chat("any")).await;
    assert_eq!(
        r.headers()["x-moat-provider"],
        "home",
        "local-only skips the cloud target of the route"
    );
    assert!(emu
        .requests()
        .iter()
        .all(|r| !r.path.ends_with("/chat/completions")));
    let r = gw.chat(Some(&only_tiny), &chat("home/tiny")).await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("model_not_allowed"))
    );
    let r = gw.chat(Some(&only_tiny), &chat("emu/tiny")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_budget_needs_a_price() {
    let emu = Emulator::start(EmulatorOptions {
        models: Some(json!([{"id": "free-lunch", "object": "model"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = memory_store();
    let k = key(store.as_ref(), "b", None, budget("1/day"));
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    let chat = json!({"model": "emu/free-lunch", "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.chat(Some(&k), &chat).await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("price_unknown"))
    );
    // With a configured price it goes through.
    let toml = format!(
        "{}[providers.prices]\n\"free-lunch\" = [1.0, 2.0]\n",
        provider("emu", &emu.base_url())
    );
    let gw = gateway_with_store(&toml, store).await;
    let r = gw.chat(Some(&k), &chat).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn streams_settle_to_their_reported_usage() {
    let emu = priced_emulator().await;
    let store = memory_store();
    let k = key(store.as_ref(), "s", None, budget("1/day"));
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    let mut req = costly_request();
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": false});
    let text = gw.chat(Some(&k), &req).await.text().await.unwrap();
    assert!(
        !text.contains("\"usage\""),
        "the client did not ask for usage and gets none: {text}"
    );
    let forwarded: Value = emu.requests().last().unwrap().json().unwrap();
    assert_eq!(
        forwarded["stream_options"]["include_usage"], true,
        "a metered stream asks for usage, whatever the client said"
    );
    // The provider's answers are a function of the request: asked directly, it reports the cost
    // moatd saw in its own copy of the stream.
    let direct = client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&forwarded)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let usage_event: Vec<Value> = data_events(&direct)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["usage"].is_object())
        .collect();
    let reported = usd_to_nanos(usage_event.last().unwrap()["usage"]["cost"].as_f64().unwrap());
    assert!(
        eventually(std::time::Duration::from_secs(5), || {
            store.flush().unwrap();
            store
                .spend_since(&Scope::Key(store.keys().unwrap()[0].id.clone()), 0)
                .unwrap()
                == reported
        })
        .await
    );
}

#[tokio::test]
async fn the_admin_api_manages_keys_with_an_admin_key_only() {
    let emu = priced_emulator().await;
    let toml = format!(
        "[server]\nadmin_keys = [\"root-admin\"]\n{}",
        provider("emu", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let http = client();
    let r = http
        .post(gw.url("/admin/teams"))
        .bearer_auth("root-admin")
        .json(&json!({"name": "ops", "budget": "10/month"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(gw.url("/admin/keys"))
        .bearer_auth("root-admin")
        .json(&json!({"name": "bob", "team": "ops", "budget": "2/day", "rpm": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let issued: Value = r.json().await.unwrap();
    let k = issued["data"]["key"].as_str().unwrap().to_string();
    let chat = json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.chat(Some(&k), &chat).await;
    assert_eq!(r.status(), 200);
    let list: Value = http
        .get(gw.url("/admin/keys"))
        .bearer_auth("root-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["team"], "ops");
    assert!(!list.to_string().contains(&k), "listings never show a key");
    let id = list["data"][0]["id"].as_str().unwrap();
    assert_eq!(
        http.get(gw.url("/admin/keys"))
            .bearer_auth(&k)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "a virtual key is not an admin key"
    );
    let r = http
        .post(gw.url(&format!("/admin/keys/{id}/revoke")))
        .bearer_auth("root-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = gw.chat(Some(&k), &chat).await;
    assert_eq!(r.status(), 401);
    let usage: Value = http
        .get(gw.url("/admin/usage?by=model"))
        .bearer_auth("root-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["data"][0]["group"], "emu/tiny");
    let r = http
        .post(gw.url("/admin/keys"))
        .bearer_auth("root-admin")
        .json(&json!({"name": "x", "budget": "lots"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 400);
}
