//! What real clients hit beyond chat: per-kind upstream hygiene against a strict server, a `models`
//! fallback list covering an unknown first model, `GET /v1/models/{id}`, `/api/v1/models` in
//! OpenRouter's shape, CORS preflights, and `POST /v1/messages/count_tokens`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

async fn strict() -> Emulator {
    Emulator::start(EmulatorOptions {
        strict: true,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn each_kind_gets_only_the_members_it_accepts() {
    let emu = strict().await;
    let toml = format!(
        "{}{}kind = \"openrouter\"\n",
        provider("plain", &emu.base_url()),
        provider("router", &emu.openrouter_base_url()).replace("kind = \"openai\"\n", "")
    );
    let gw = gateway(&toml).await;
    let openrouter_members = json!({
        "messages": [{"role": "user", "content": "hi"}],
        "provider": {"order": ["a"]}, "transforms": ["middle-out"], "route": "fallback",
        "usage": {"include": true}, "reasoning": {"effort": "high"}, "models": ["plain/tiny"],
    });
    let mut body = openrouter_members.clone();
    body["model"] = json!("plain/tiny");
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = emu.requests().last().unwrap().json().unwrap();
    assert_eq!(sent["reasoning_effort"], "high");
    for member in ["provider", "transforms", "route", "usage", "reasoning", "models"] {
        assert!(
            sent.get(member).is_none(),
            "{member} reached a plain OpenAI server: {sent}"
        );
    }
    // The same members go to an OpenRouter provider as sent.
    body["model"] = json!("router/tiny");
    body["models"] = json!(["router/tiny"]);
    assert_eq!(gw.chat(None, &body).await.status(), 200);
    let sent = emu.requests().last().unwrap().json().unwrap();
    assert_eq!(sent["reasoning"], json!({"effort": "high"}));
    assert_eq!(sent["transforms"], json!(["middle-out"]));
    assert!(sent.get("reasoning_effort").is_none());

    // The default config works against the strict server on every endpoint moatd bridges onto it.
    let responses = client()
        .post(gw.url("/v1/responses"))
        .json(
            &json!({"model": "plain/tiny", "input": "hi", "instructions": "x", "store": true,
                      "max_output_tokens": 20, "reasoning": {"effort": "low"}, "truncation": "auto",
                      "text": {"format": {"type": "text"}}, "metadata": {"k": "v"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(responses.status(), 200, "{}", responses.text().await.unwrap());
    let messages = client()
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": "plain/tiny", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 200, "{}", messages.text().await.unwrap());
    // And the strict server does refuse what it does not know.
    let (status, err) = error_of(
        gw.chat(None, &json!({"model": "plain/tiny", "messages": [], "bogus": 1}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("bogus"),
        "{err}"
    );
}

#[tokio::test]
async fn a_fallback_list_covers_an_unknown_first_model() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let gw = gateway(&provider("emu", &emu.base_url())).await;
    let body = json!({"model": "gpt-nowhere", "models": ["nowhere/x", "emu/tiny"],
                      "messages": [{"role": "user", "content": "hi"}]});
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "emu");
    let (status, err) = error_of(
        gw.chat(None, &json!({"model": "gpt-nowhere", "messages": []}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert!(err["error"]["message"].as_str().unwrap().contains("gpt-nowhere"));
}

#[tokio::test]
async fn models_retrieve_and_openrouter_shape() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "{}[providers.prices]\ntiny = [1.0, 2.0]\n{}local = true\n",
        provider("emu", &emu.base_url()),
        provider("home", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let get = |path: &str| client().get(gw.url(path)).send();
    let one: Value = get("/v1/models/emu/tiny").await.unwrap().json().await.unwrap();
    assert_eq!(one["id"], "emu/tiny");
    assert_eq!(one["object"], "model");
    let (status, _) = error_of(get("/v1/models/emu/nope").await.unwrap()).await;
    assert_eq!(status, 404);
    let list: Value = get("/api/v1/models").await.unwrap().json().await.unwrap();
    let find = |id: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap()
    };
    let tiny = find("emu/tiny");
    assert_eq!(tiny["pricing"]["prompt"], "0.000001", "configured price: {tiny}");
    assert_eq!(tiny["pricing"]["completion"], "0.000002");
    assert_eq!(tiny["context_length"], 4096);
    assert_eq!(tiny["name"], "Tiny");
    assert_eq!(
        find("home/tiny")["pricing"]["prompt"],
        "0",
        "local models are free"
    );
    let embed = find("emu/emu-embed");
    assert!(
        embed["pricing"]["prompt"].is_string(),
        "the provider's own price: {embed}"
    );
    let one: Value = get("/api/v1/models/home/tiny")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["pricing"]["completion"], "0");
}

#[tokio::test]
async fn cors_preflights_are_answered_for_configured_origins_only() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let closed = gateway(&provider("emu", &emu.base_url())).await;
    let preflight = |gw: &TestGateway, origin: &str| {
        client()
            .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    assert_eq!(
        preflight(&closed, "https://app.example").await.unwrap().status(),
        405
    );
    let open = gateway(&format!(
        "[server]\ncors_origins = [\"https://app.example\"]\n{}",
        provider("emu", &emu.base_url())
    ))
    .await;
    let ok = preflight(&open, "https://app.example").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example");
    assert!(ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        ok.headers()["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert_eq!(
        preflight(&open, "https://evil.example").await.unwrap().status(),
        403
    );
    let resp = client()
        .post(open.url("/v1/chat/completions"))
        .header("origin", "https://app.example")
        .json(&json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
}

#[tokio::test]
async fn count_tokens_is_exact_for_anthropic_and_estimated_elsewhere() {
    let anthropic = Emulator::start(EmulatorOptions {
        api_key: Some("sk-ant-emu".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let openai = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "[server]\napi_keys = [\"k\"]\n[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"sk-ant-emu\"\nhealth_check = false\n{}",
        anthropic.base_url(),
        provider("emu", &openai.base_url())
    );
    let gw = gateway(&toml).await;
    let count = |model: &str, key: &str| {
        client()
            .post(gw.url("/v1/messages/count_tokens"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "system": "be brief",
                          "messages": [{"role": "user", "content": "count these words please"}]}))
            .send()
    };
    let exact: Value = count("claude/claude-x", "k").await.unwrap().json().await.unwrap();
    let sent = anthropic.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert_eq!(sent.json().unwrap()["model"], "claude-x");
    // The emulator counts a token per four characters of every string: "be brief", "user" and the
    // message, 35 characters.
    assert_eq!(exact, json!({"input_tokens": 9}));
    let before = openai.requests().len();
    let estimated: Value = count("emu/tiny", "k").await.unwrap().json().await.unwrap();
    // The same 35 bytes of text → ⌈35/3⌉ + 4 per message + 3.
    assert_eq!(estimated, json!({"input_tokens": 12 + 4 + 3}));
    assert_eq!(openai.requests().len(), before, "an estimate sends nothing");
    let refused = count("emu/tiny", "wrong").await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "error", "Anthropic's error shape: {body}");
    assert_eq!(body["error"]["type"], "authentication_error");
}
