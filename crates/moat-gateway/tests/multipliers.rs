//! Budgets hold for every output a request can make a provider produce: `n` and `best_of`, the
//! largest of the max-token members (0 is no cap), and members an endpoint does not model (an `n`
//! sent to `/v1/messages` passes through to the provider, so it is reserved for too). The provider
//! here bills every output it generates, as real ones do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use moat_gateway::admin::{self, LimitSpec, NewKey};
use moat_policy::budget::usd_to_nanos;
use moat_store::{Scope, SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

/// $0.0001 per token, prompt and completion.
const PRICE: f64 = 0.0001;

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

/// A gateway in front of the emulator, and a key with `budget` (dollars per day).
async fn setup(budget: &str) -> (Emulator, TestGateway, Arc<dyn Store>, String) {
    let emu = priced_emulator().await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let new = NewKey {
        name: "k".into(),
        limits: LimitSpec {
            budget: Some(format!("{budget}/day")),
            ..Default::default()
        },
        ..Default::default()
    };
    let key = admin::create_key(store.as_ref(), &secret(), &new, moat_gateway::ledger::now())
        .unwrap()
        .key;
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    (emu, gw, store, key)
}

/// `words` words: an answer that uses every token `max_tokens = words` allows.
fn words(n: usize) -> String {
    vec!["word"; n].join(" ")
}

/// Sends `count` copies of `body` to `path` at once; (answered, refused with 402).
async fn burst(gw: &TestGateway, key: &str, path: &str, body: &Value, count: usize) -> (usize, usize) {
    let http = client();
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let req = http
                .post(gw.url(path))
                .bearer_auth(key)
                .header("x-api-key", key)
                .json(body);
            tokio::spawn(async move { req.send().await })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        match resp.status().as_u16() {
            200 => {
                ok += 1;
                resp.bytes().await.unwrap();
            }
            402 => refused += 1,
            other => panic!("unexpected status {other}: {}", resp.text().await.unwrap()),
        }
    }
    (ok, refused)
}

/// What the key spent, once every settlement is written.
async fn spent(store: &Arc<dyn Store>) -> u64 {
    let id = store.keys().unwrap()[0].id.clone();
    let mut last = u64::MAX;
    // Settlements of answered requests land in the background; wait until the figure is stable.
    for _ in 0..50 {
        store.flush().unwrap();
        let now = store.spend_since(&Scope::Key(id.clone()), 0).unwrap();
        if now == last {
            return now;
        }
        last = now;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    last
}

/// One request's estimate: (body bytes / 3, rounded up, + 3) prompt tokens and `output` tokens.
fn estimate(body: &Value, output: u64) -> u64 {
    let bytes = serde_json::to_vec(body).unwrap().len() as f64;
    usd_to_nanos(((bytes / 3.0).ceil() + 3.0 + output as f64) * PRICE)
}

async fn assert_bounded(budget_usd: f64, path: &str, body: Value, output: u64) {
    let (emu, gw, store, key) = setup(&budget_usd.to_string()).await;
    let (ok, refused) = burst(&gw, &key, path, &body, 50).await;
    let spent = spent(&store).await;
    let limit = usd_to_nanos(budget_usd);
    let allowance = estimate(&body, output);
    assert!(
        ok >= 1 && refused >= 1,
        "{path}: the budget admitted some ({ok}) and refused some ({refused})"
    );
    assert!(
        spent <= limit + allowance,
        "{path}: spent {spent} > budget {limit} + one estimate {allowance} ({ok} answered) for {body}"
    );
    assert!(
        emu.requests().len() >= ok,
        "the answered requests reached the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_n_10_requests_never_spend_past_the_budget() {
    let body = json!({
        "model": "emu/tiny", "n": 10, "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "emulate": {"content": words(10)},
    });
    assert_bounded(0.1, "/v1/chat/completions", body, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_of_is_reserved_for_every_output_it_generates() {
    let body = json!({
        "model": "emu/tiny", "best_of": 8, "n": 1, "max_tokens": 10, "prompt": "hi",
        "emulate": {"content": words(10)},
    });
    assert_bounded(0.1, "/v1/completions", body, 80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_max_completion_tokens_does_not_hide_max_tokens() {
    let body = json!({
        "model": "emu/tiny", "max_tokens": 400, "max_completion_tokens": 0,
        "messages": [{"role": "user", "content": "hi"}],
        "emulate": {"content": words(400)},
    });
    assert_bounded(0.5, "/v1/chat/completions", body, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_messages_reserves_max_tokens_and_members_it_passes_through() {
    // Anthropic's wire has no `n`, but unknown members pass through to the provider, which honours it.
    let body = json!({
        "model": "emu/tiny", "max_tokens": 10, "n": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "emulate": {"content": words(10)},
    });
    assert_bounded(0.1, "/v1/messages", body, 100).await;
}

#[tokio::test]
async fn embeddings_hold_for_their_input_and_no_output() {
    // 3,000 token ids take about two bytes each in JSON: estimated from the body's size alone they
    // would count as ~2,000 tokens ($0.20), and fit a $0.29 budget; each id is at least one token
    // ($0.30), so they do not.
    let ids: Vec<u32> = (0..3000).map(|i| i % 10).collect();
    let body = json!({"model": "emu/tiny", "input": [ids]});
    for (budget, status) in [("0.29", 402), ("1", 200)] {
        let (_emu, gw, _store, key) = setup(budget).await;
        let resp = client()
            .post(gw.url("/v1/embeddings"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            status,
            "budget {budget}: {}",
            resp.text().await.unwrap()
        );
    }
}
