//! Routing end to end: real gateways in front of emulated providers. `weighted` shares traffic by
//! its weights; `least_busy` keeps traffic off a slow provider; `latency` moves off a provider that
//! slows down and back once it recovers; a target at its rpm cap is skipped (and when every target
//! is, the client gets 429); a context-window refusal falls through to a target with a larger
//! window, skipping smaller ones; a content-policy refusal falls back only where the route opts in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default()).await.unwrap()
}

fn ask(model: &str) -> Value {
    json!({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
}

fn chats(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

/// Sends `n` requests, `concurrency` at a time, each of which must succeed.
async fn load(gw: &TestGateway, model: &str, n: usize, concurrency: usize) {
    let body = ask(model);
    let per = n / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let url = gw.url("/v1/chat/completions");
            let body = body.clone();
            tokio::spawn(async move {
                let c = client();
                for _ in 0..per {
                    let resp = c.post(&url).json(&body).send().await.unwrap();
                    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

fn providers(emus: &[(&str, &Emulator)]) -> String {
    emus.iter()
        .map(|(name, emu)| format!("{}max_retries = 0\n", provider(name, &emu.base_url())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weighted_shares_traffic_by_its_weights() {
    let (a, b) = (emulator().await, emulator().await);
    let toml = format!(
        "{}[[models]]\nname = \"fast\"\nroute = [\"a/m\", \"b/m\"]\nstrategy = \"weighted\"\nweights = [3, 1]\n",
        providers(&[("a", &a), ("b", &b)])
    );
    let gw = gateway(&toml).await;
    load(&gw, "fast", 2000, 4).await;
    let share = chats(&a) as f64 / 2000.0;
    assert_eq!(chats(&a) + chats(&b), 2000, "every request was answered once");
    eprintln!("weighted [3, 1]: a took {} of 2000 ({share:.3})", chats(&a));
    assert!(
        (share - 0.75).abs() <= 0.05,
        "a took {share:.3} of the traffic, weights say 0.75"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_busy_keeps_traffic_off_a_slow_target() {
    let (slow, fast) = (emulator().await, emulator().await);
    slow.set_directive(Some(json!({"first_byte_delay_ms": 300})));
    let toml = format!(
        "{}[[models]]\nname = \"pool\"\nroute = [\"slow/m\", \"fast/m\"]\nstrategy = \"least_busy\"\n",
        providers(&[("slow", &slow), ("fast", &fast)])
    );
    let gw = gateway(&toml).await;
    load(&gw, "pool", 240, 8).await;
    let (s, f) = (chats(&slow), chats(&fast));
    assert_eq!(s + f, 240);
    eprintln!("least_busy: slow {s}, fast {f} of 240 (8 concurrent clients)");
    // Each slow answer holds a request in flight while the fast target answers many.
    assert!(s * 5 < f, "slow {s}, fast {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_moves_off_a_target_that_slows_and_back_when_it_recovers() {
    let (a, b) = (emulator().await, emulator().await);
    let toml = format!(
        "{}[[models]]\nname = \"quick\"\nroute = [\"a/m\", \"b/m\"]\nstrategy = \"latency\"\n",
        providers(&[("a", &a), ("b", &b)])
    );
    let gw = gateway(&toml).await;
    load(&gw, "quick", 100, 1).await;
    assert!(
        chats(&a) > 0 && chats(&b) > 0,
        "equally fast targets share the load"
    );

    a.set_directive(Some(json!({"first_byte_delay_ms": 120})));
    load(&gw, "quick", 60, 1).await;
    let before = chats(&a);
    load(&gw, "quick", 200, 1).await;
    let slowed = chats(&a) - before;
    // Only exploration (a tenth of requests, half of which land on `a`) reaches the slow target.
    assert!(slowed < 40, "a got {slowed} of 200 while slow");
    eprintln!("latency: the slowed target got {slowed} of 200");

    a.set_directive(None);
    // Exploration samples bring its average back down; then it shares the load again.
    let mut recovered = false;
    for _ in 0..20 {
        let before = chats(&a);
        load(&gw, "quick", 100, 1).await;
        if chats(&a) - before >= 25 {
            eprintln!(
                "latency: recovered target got {} of the last 100",
                chats(&a) - before
            );
            recovered = true;
            break;
        }
    }
    assert!(recovered, "traffic did not come back to the recovered target");
}

/// Waits, when the clock minute is about to turn, for the next one: rpm caps count per minute.
async fn fresh_minute() {
    let secs = moat_gateway::ledger::now().rem_euclid(60);
    if secs > 55 {
        tokio::time::sleep(Duration::from_secs((61 - secs) as u64)).await;
    }
}

#[tokio::test]
async fn a_target_at_its_cap_is_skipped_and_all_capped_is_429() {
    let (a, b) = (emulator().await, emulator().await);
    let toml = format!(
        "{}rpm = {{ \"m\" = 2 }}\n{}rpm = {{ \"*\" = 3 }}\n[[models]]\nname = \"capped\"\nroute = [\"a/m\", \"b/m\"]\n",
        provider("a", &a.base_url()),
        provider("b", &b.base_url())
    );
    let gw = gateway(&toml).await;
    fresh_minute().await;
    for _ in 0..5 {
        let resp = gw.chat(None, &ask("capped")).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(
        (chats(&a), chats(&b)),
        (2, 3),
        "a is skipped once it reached 2 requests"
    );
    let resp = gw.chat(None, &ask("capped")).await;
    assert!(resp.headers().contains_key("retry-after"));
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    assert_eq!(chats(&a) + chats(&b), 5, "nothing was sent");
}

#[tokio::test]
async fn a_context_window_refusal_falls_through_to_a_larger_model() {
    let (small, mid, big) = (emulator().await, emulator().await, emulator().await);
    small.set_directive(Some(json!({"status": 400,
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."})));
    let toml = format!(
        "{}context_window = {{ \"m\" = 8192 }}\n{}context_window = {{ \"m\" = 4096 }}\n{}context_window = {{ \"*\" = 128000 }}\n\
         [[models]]\nname = \"long\"\nroute = [\"small/m\", \"mid/m\", \"big/m\"]\n",
        provider("small", &small.base_url()),
        provider("mid", &mid.base_url()),
        provider("big", &big.base_url())
    );
    let gw = gateway(&toml).await;
    let resp = gw.chat(None, &ask("long")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "big");
    assert_eq!(
        (chats(&small), chats(&mid), chats(&big)),
        (1, 0, 1),
        "the smaller window is skipped"
    );
    // Any other 400 is the request's fault and comes back at once.
    small.set_directive(Some(
        json!({"status": 400, "message": "temperature must be at most 2"}),
    ));
    let (status, err) = error_of(gw.chat(None, &ask("long")).await).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["message"], "temperature must be at most 2");
    assert_eq!(chats(&big), 1, "not fallen back");
}

#[tokio::test]
async fn a_content_policy_refusal_falls_back_only_where_the_route_opts_in() {
    let (azure, other) = (
        Emulator::start(EmulatorOptions {
            api_key: Some("az-key".into()),
            ..Default::default()
        })
        .await
        .unwrap(),
        emulator().await,
    );
    azure.set_directive(Some(json!({"content_filter": true})));
    let root = azure.base_url().trim_end_matches("/v1").to_owned();
    let toml = format!(
        "[[providers]]\nname = \"az\"\nkind = \"azure\"\nbase_url = \"{root}\"\napi_key = \"az-key\"\nmax_retries = 0\n{}\
         [[models]]\nname = \"strict\"\nroute = [\"az/prod\", \"other/m\"]\n\
         [[models]]\nname = \"lenient\"\nroute = [\"az/prod\", \"other/m\"]\ncontent_policy_fallback = true\n",
        provider("other", &other.base_url())
    );
    let gw = gateway(&toml).await;
    let (status, err) = error_of(gw.chat(None, &ask("strict")).await).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], "content_filter");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("content filter refused the prompt: violence (medium)"),
        "{message}"
    );
    assert_eq!(chats(&other), 0);
    let resp = gw.chat(None, &ask("lenient")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "other");
}
