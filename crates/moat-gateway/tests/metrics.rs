//! `/metrics` through the real request path: the GenAI histograms with model, provider, endpoint,
//! status and team labels; spend and budget by team; retries, fallbacks, breaker transitions and
//! response-cache outcomes; in-flight gauges; and label values that stay bounded. The recorder is
//! process-wide, so each test uses its own team, provider and model names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use moat_gateway::admin::{self, LimitSpec, NewKey, NewTeam};
use moat_store::{SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::json;

async fn priced_emulator() -> Emulator {
    let models = json!([{"id": "tiny", "object": "model", "created": 1, "owned_by": "emu",
        "pricing": {"prompt": "0.0001", "completion": "0.0001"}}]);
    Emulator::start(EmulatorOptions {
        models: Some(models),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The value of the sample `name{...}` whose labels include every `k="v"` in `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn genai_histograms_carry_model_provider_endpoint_status_and_team() {
    let emu = priced_emulator().await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let now = moat_gateway::ledger::now();
    let team = NewTeam {
        name: "metrics-team".into(),
        limits: LimitSpec {
            budget: Some("10/month".into()),
            ..Default::default()
        },
    };
    admin::create_team(store.as_ref(), &team, now).unwrap();
    let new = NewKey {
        name: "metered".into(),
        team: Some("metrics-team".into()),
        ..Default::default()
    };
    let issued = admin::create_key(store.as_ref(), &secret(), &new, now).unwrap();
    let gw = gateway_with_store(&provider("memu", &emu.base_url()), store).await;
    let ask = |stream: bool| {
        json!({"model": "memu/tiny", "stream": stream, "max_tokens": 20,
            "messages": [{"role": "user", "content": "count to five"}],
            "emulate": {"content": "one two three four five six"}})
    };
    let r = gw.chat(Some(&issued.key), &ask(false)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-request-id"].to_str().unwrap().starts_with("moat-"));
    r.bytes().await.unwrap();
    // A stream held open: it is in flight until it ends.
    let mut held = ask(true);
    held["emulate"]["pause_after_chunks"] = json!(1);
    held["emulate"]["pause_ms"] = json!(400);
    let mut streaming = gw.chat(Some(&issued.key), &held).await;
    assert_eq!(streaming.status(), 200);
    streaming.chunk().await.unwrap();
    let during = gw.metrics().await;
    assert!(
        sample(&during, "moat_streams_in_flight", &[]).unwrap() >= 1.0,
        "{during}"
    );
    assert!(
        sample(&during, "moat_requests_in_flight", &[]).unwrap() >= 2.0,
        "{during}"
    );
    while streaming.chunk().await.unwrap().is_some() {}

    let text = gw.metrics().await;
    let labels = [
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_request_model", "memu/tiny"),
        ("gen_ai_provider_name", "memu"),
        ("endpoint", "/v1/chat/completions"),
        ("status", "200"),
        ("team", "metrics-team"),
    ];
    let count = |name: &str, extra: &[(&str, &str)]| {
        let mut all = labels.to_vec();
        all.extend_from_slice(extra);
        sample(&text, &format!("{name}_count"), &all).unwrap_or_else(|| panic!("{name} {extra:?}:\n{text}"))
    };
    assert_eq!(count("gen_ai_client_operation_duration_seconds", &[]), 2.0);
    assert_eq!(count("gen_ai_server_time_to_first_token_seconds", &[]), 2.0);
    assert_eq!(
        count("gen_ai_server_time_per_output_token_seconds", &[]),
        1.0,
        "streamed answers only"
    );
    assert_eq!(
        count("gen_ai_client_token_usage", &[("gen_ai_token_type", "input")]),
        2.0
    );
    assert_eq!(
        count("gen_ai_client_token_usage", &[("gen_ai_token_type", "output")]),
        2.0
    );
    let output_tokens = sample(
        &text,
        "gen_ai_client_token_usage_sum",
        &[("team", "metrics-team"), ("gen_ai_token_type", "output")],
    )
    .unwrap();
    assert!(output_tokens >= 12.0, "six words twice: {output_tokens}");
    assert!(
        text.contains("gen_ai_client_operation_duration_seconds_bucket{"),
        "a histogram, not a summary"
    );

    let spent = sample(&text, "moat_spend_usd_total", &[("team", "metrics-team")]).unwrap();
    assert!(spent > 0.0, "{text}");
    assert!(text.contains("# TYPE moat_spend_usd_total counter"), "{text}");
    let left = sample(&text, "moat_budget_remaining_usd", &[("team", "metrics-team")]).unwrap();
    assert!(
        (left - (10.0 - spent)).abs() < 1e-6,
        "remaining {left} after spending {spent}"
    );
    assert_eq!(
        sample(
            &text,
            "moat_requests_total",
            &[("endpoint", "/v1/chat/completions"), ("status", "200")]
        )
        .map(|v| v >= 2.0),
        Some(true)
    );
    // A team, never a key: neither the key nor its id or prefix labels anything.
    assert!(
        !text.contains(&issued.id) && !text.contains(&issued.prefix),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_fallbacks_and_breaker_transitions_are_counted() {
    let emu = priced_emulator().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let config = format!(
        "[[providers]]\nname = \"mdead\"\nkind = \"openai\"\nbase_url = \"{dead_url}\"\nmax_retries = 1\nretry_base_ms = 5\nhealth_check = false\nbreaker_failures = 1\n{}\
         [[models]]\nname = \"mfast\"\nroute = [\"mdead/tiny\", \"mfb/tiny\"]\n",
        provider("mfb", &emu.base_url())
    );
    let gw = gateway(&config).await;
    let r = gw
        .chat(
            None,
            &json!({"model": "mfast", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = gw.metrics().await;
    assert_eq!(
        sample(&text, "moat_upstream_retries_total", &[("provider", "mdead")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "moat_fallbacks_total", &[("provider", "mdead")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "moat_breaker_transitions_total",
            &[("provider", "mdead"), ("from", "healthy"), ("to", "unhealthy")]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn response_cache_outcomes_are_counted() {
    let emu = priced_emulator().await;
    let config = format!(
        "{}[response_cache]\nenabled = true\n",
        provider("mcache", &emu.base_url())
    );
    let gw = gateway(&config).await;
    let body = json!({"model": "mcache/tiny", "messages": [{"role": "user", "content": "same question"}]});
    for want in ["miss", "hit"] {
        let r = gw.chat(None, &body).await;
        assert_eq!(r.headers()["x-moat-cache"], want);
    }
    let text = gw.metrics().await;
    for outcome in ["hit", "miss"] {
        assert!(
            sample(&text, "moat_response_cache_total", &[("outcome", outcome)]).unwrap() >= 1.0,
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn model_labels_stay_bounded_whatever_names_clients_send() {
    let emu = priced_emulator().await;
    let config = format!(
        "[server]\ndefault_provider = \"mbound\"\n{}",
        provider("mbound", &emu.base_url())
    );
    let gw = gateway(&config).await;
    for i in 0..230 {
        let r = gw
            .chat(None, &json!({"model": format!("random-model-{i}"), "messages": [{"role": "user", "content": "x"}]}))
            .await;
        r.bytes().await.unwrap();
    }
    let text = gw.metrics().await;
    let mut models: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("gen_ai_client_operation_duration_seconds_count{"))
        .filter_map(|l| l.split("gen_ai_request_model=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    models.sort_unstable();
    models.dedup();
    assert!(models.len() <= 201, "{} model labels", models.len());
    assert!(models.contains(&"other"), "{models:?}");
    // Unknown paths are one label too, and every answer carries a request id.
    let r = client().get(gw.url("/v1/no-such-path-7")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));
    let text = gw.metrics().await;
    assert!(!text.contains("no-such-path-7"));
}
