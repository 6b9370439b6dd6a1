//! Providers on other wires, through the real request path: `kind = "ollama"` (native NDJSON) and
//! `kind = "anthropic"` (Messages) against the testkit's emulators of those wires, and moatd's own
//! `POST /v1/messages` in front of an OpenAI-compatible upstream. Usage read from translated answers
//! must settle budgets exactly as OpenAI usage does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use moat_gateway::admin::{self, LimitSpec, NewKey};
use moat_store::{GroupBy, SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

fn metered_key(store: &dyn Store) -> String {
    let new = NewKey {
        name: "k".into(),
        limits: LimitSpec {
            budget: Some("5/day".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    admin::create_key(store, &secret(), &new, moat_gateway::ledger::now())
        .unwrap()
        .key
}

/// Settled (prompt, completion) tokens of all requests so far.
async fn settled_tokens(store: &Arc<dyn Store>, want: (u64, u64)) -> (u64, u64) {
    let mut got = (0, 0);
    eventually(Duration::from_secs(5), || {
        store.flush().unwrap();
        let lines = store.usage_report(GroupBy::Key, 0).unwrap();
        got = lines
            .iter()
            .fold((0, 0), |(p, c), l| (p + l.prompt_tokens, c + l.completion_tokens));
        got == want
    })
    .await;
    got
}

fn root(emu: &Emulator) -> String {
    emu.base_url().trim_end_matches("/v1").to_owned()
}

#[tokio::test]
async fn ollama_native_answers_streams_and_lists_models_in_openai_shapes() {
    let emu = Emulator::start(EmulatorOptions {
        models: Some(json!([{"id": "llama3.2:latest"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let key = metered_key(store.as_ref());
    let toml = format!(
        "[[providers]]\nname = \"local\"\nkind = \"ollama\"\nbase_url = \"{}\"\nlocal = true\n[providers.prices]\n\"*\" = [1.0, 2.0]\n",
        root(&emu)
    );
    let gw = gateway_with_store(&toml, store.clone()).await;
    let ask = json!({"model": "local/llama3.2:latest", "max_tokens": 50, "temperature": 0.3,
        "messages": [{"role": "user", "content": "hello there"}]});

    // Whole answer: the final Ollama object as a chat.completion, usage from its counts.
    let resp = gw.chat(Some(&key), &ask).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "You said: hello there");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // 11 characters of prompt → 3 tokens (the emulator's estimate); 4 words of answer.
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(body["usage"]["completion_tokens"], 4);
    let sent = emu.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/api/chat");
    let sent = sent.json().unwrap();
    assert_eq!(sent["model"], "llama3.2:latest");
    assert_eq!(sent["stream"], false);
    assert_eq!(sent["options"], json!({"temperature": 0.3, "num_predict": 50}));

    // Streamed: NDJSON becomes SSE chunks, ending with usage (the client asks for it; moatd asks
    // the provider either way, the key being metered) and [DONE].
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let resp = gw.chat(Some(&key), &streamed).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = resp.text().await.unwrap();
    assert_eq!(streamed_text(&text), "You said: hello there");
    let events = data_events(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 3);
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert_eq!(emu.requests().last().unwrap().json().unwrap()["stream"], true);
    // Both requests settled from the translated usage.
    assert_eq!(settled_tokens(&store, (6, 8)).await, (6, 8));

    // A tool call, and a truncated answer.
    let mut tool = ask.clone();
    tool["emulate"] = json!({"tool_call": {"name": "weather", "arguments": {"city": "Oslo"}}});
    let body: Value = gw.chat(Some(&key), &tool).await.json().await.unwrap();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Oslo"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let mut short = ask.clone();
    short["max_tokens"] = json!(2);
    let body: Value = gw.chat(Some(&key), &short).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "You said:");
    assert_eq!(body["choices"][0]["finish_reason"], "length");

    // Ollama's `{"error": "..."}` comes back in OpenAI's shape with its status.
    let mut failing = ask.clone();
    failing["emulate"] = json!({"status": 404, "message": "model 'nope' not found"});
    let (status, err) = error_of(gw.chat(Some(&key), &failing).await).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["message"], "model 'nope' not found");

    // Embeddings have no translation: a clear 400 before anything is sent.
    let before = emu.requests().len();
    let resp = client()
        .post(gw.url("/v1/embeddings"))
        .bearer_auth(&key)
        .json(&json!({"model": "local/llama3.2:latest", "input": "x"}))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chat completions only"),
        "{err}"
    );
    assert_eq!(emu.requests().len(), before);

    // The model list comes from /api/tags.
    let models: Value = client()
        .get(gw.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "local/llama3.2:latest");
    assert_eq!(models["data"][0]["owned_by"], "ollama");
    assert!(emu.requests().iter().any(|r| r.path == "/api/tags"));
}

#[tokio::test]
async fn anthropic_provider_gets_its_headers_and_its_errors_come_back_as_openai_errors() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-ant-emu".into()),
        models: Some(json!([{"id": "claude-test"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let toml = format!(
        "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"sk-ant-emu\"\nmax_retries = 0\n",
        emu.base_url()
    );
    let gw = gateway(&toml).await;
    let ask = json!({"model": "claude/claude-test", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello claude"}
    ]});
    let resp = gw.chat(None, &ask).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "You said: hello claude");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let sent = emu.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "sk-ant-emu");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(!sent.headers.contains_key("authorization"));
    let sent = sent.json().unwrap();
    assert_eq!(sent["system"], "be brief");
    assert_eq!(
        sent["max_tokens"], 4096,
        "Anthropic requires max_tokens; moat fills in a default"
    );

    // Anthropic's 529 overloaded becomes a 503 in OpenAI's error shape.
    let mut overloaded = ask.clone();
    overloaded["emulate"] = json!({"status": 529});
    let (status, err) = error_of(gw.chat(None, &overloaded).await).await;
    assert_eq!(status, 503);
    assert_eq!(err["error"]["message"], "Overloaded");
    assert_eq!(err["error"]["code"], "overloaded");

    // An `error` event mid-stream becomes a final OpenAI error event.
    let mut broken = ask.clone();
    broken["stream"] = json!(true);
    broken["emulate"] = json!({"error_after_chunks": 1});
    let text = gw.chat(None, &broken).await.text().await.unwrap();
    assert_eq!(streamed_text(&text), "You");
    let last: Value = serde_json::from_str(data_events(&text).last().unwrap()).unwrap();
    assert_eq!(last["error"]["message"], "Overloaded");

    // The model list comes from Anthropic's GET /v1/models.
    let models: Value = client()
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "claude/claude-test");
    assert_eq!(models["data"][0]["name"], "Emulated claude-test");
}

#[tokio::test]
async fn v1_messages_is_admitted_like_chat_and_answers_in_anthropic_shapes() {
    let emu = Emulator::start(EmulatorOptions {
        models: Some(json!([{"id": "tiny", "pricing": {"prompt": "0.0001", "completion": "0.0001"}}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let key = metered_key(store.as_ref());
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store.clone()).await;
    let http = client();
    let post = |key: Option<&str>, body: Value| {
        let mut req = http
            .post(gw.url("/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        req.send()
    };
    let ask =
        json!({"model": "emu/tiny", "max_tokens": 64, "messages": [{"role": "user", "content": "hi there"}]});

    // The key in x-api-key is checked like a bearer key.
    let resp = post(Some("sk-wrong"), ask.clone()).await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    // Anthropic's own validation message for a missing max_tokens.
    let resp = post(Some(&key), json!({"model": "emu/tiny", "messages": []}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}})
    );

    let resp = post(Some(&key), ask.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "emu/tiny");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "You said: hi there"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["output_tokens"], 4);
    let sent = emu.requests().last().unwrap().json().unwrap();
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "hi there"}]));
    assert_eq!(sent["max_tokens"], 64);

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let text = post(Some(&key), streamed).await.unwrap().text().await.unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let deltas: String = data_events(&text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(deltas, "You said: hi there");
    // Both answers settled against the key from the usage the upstream reported: 8 characters of
    // prompt are 2 tokens to the emulator, and 4 words of answer 4.
    assert_eq!(settled_tokens(&store, (4, 8)).await, (4, 8));

    // An upstream failure comes back as Anthropic's error shape, status kept.
    let mut failing = ask.clone();
    failing["emulate"] = json!({"status": 429, "message": "slow down"});
    let resp = post(Some(&key), failing).await.unwrap();
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({"type": "rate_limit_error", "message": "slow down"})
    );
}

#[test]
fn anthropic_and_ollama_kinds_have_their_defaults() {
    let config = moat_gateway::config::Config::from_toml(
        "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\napi_key = \"k\"\n[[providers]]\nname = \"llama\"\nkind = \"ollama\"\n",
        "test",
    )
    .unwrap();
    let (claude, llama) = (&config.providers[0].upstream, &config.providers[1].upstream);
    assert_eq!(claude.base_url, "https://api.anthropic.com/v1");
    assert_eq!(claude.auth_style, moat_upstream::AuthStyle::Anthropic);
    assert_eq!(llama.base_url, "http://127.0.0.1:11434");
    assert_eq!(llama.auth_style, moat_upstream::AuthStyle::Bearer);
    assert!(
        llama.no_proxy,
        "a loopback Ollama is never reached through a proxy"
    );
    let err = moat_gateway::config::Config::from_toml(
        "[[providers]]\nname = \"x\"\nkind = \"grpc\"\nbase_url = \"https://x\"\n",
        "test",
    )
    .unwrap_err();
    assert!(err.to_string().contains("anthropic"), "{err}");
}

#[tokio::test]
async fn a_client_leaving_a_translated_stream_cancels_the_upstream() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "[[providers]]\nname = \"local\"\nkind = \"ollama\"\nbase_url = \"{}\"\n",
        root(&emu)
    );
    let gw = gateway(&toml).await;
    let ask = json!({"model": "local/tiny", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "a b c d e f g h i j k l m n o p"}],
        "emulate": {"chunk_delay_ms": 200}});
    // Through /v1/messages, so both translations (Ollama → OpenAI → Anthropic) are in the chain.
    let mut resp = client()
        .post(gw.url("/v1/messages"))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: message_start"));
    drop(resp);
    assert!(
        eventually(Duration::from_secs(10), || emu.cancelled_streams() == 1).await,
        "the upstream stream was not cancelled"
    );
}

#[tokio::test]
async fn redaction_is_restored_across_both_translations() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "[privacy]\npersonal = \"redact\"\n[[providers]]\nname = \"local\"\nkind = \"ollama\"\nbase_url = \"{}\"\n",
        root(&emu)
    );
    let gw = gateway(&toml).await;
    let ask = json!({"model": "local/tiny", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "write to carol@contoso-mail.net now"}]});
    let text = client()
        .post(gw.url("/v1/messages"))
        .json(&ask)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let streamed: String = data_events(&text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(streamed, "You said: write to carol@contoso-mail.net now");
    let sent = String::from_utf8_lossy(&emu.requests().last().unwrap().body).into_owned();
    assert!(
        !sent.contains("carol@contoso-mail.net") && sent.contains("[EMAIL_1]"),
        "{sent}"
    );
}
