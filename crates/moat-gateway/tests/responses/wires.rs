//! The Responses API over each provider wire: bridged onto Anthropic's, Ollama's and OpenAI's chat,
//! and relayed to a provider marked `responses = "native"` with moatd's state and enforcement.

use std::sync::Arc;

use moat_store::{SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

use crate::common::*;
use crate::{get, key, named_events, post};

#[tokio::test]
async fn native_providers_get_the_responses_api_relayed_with_moatds_state_and_enforcement() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let k = key(store.as_ref(), "k", None, Some("5/day"));
    let toml = format!(
        "{}responses = \"native\"\n[providers.prices]\n\"*\" = [1.0, 1.0]\n",
        provider("oai", &emu.base_url())
    );
    let gw = gateway_with_store(&toml, store.clone()).await;

    let first = post(
        &gw,
        Some(&k),
        &json!({"model": "oai/tiny", "input": "hello native", "metadata": {"a": "b"}}),
    )
    .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(
        id.starts_with("resp_") && !id.contains("emu"),
        "moatd's own id: {first}"
    );
    assert_eq!(first["store"], true, "as the client sent it");
    assert_eq!(first["output"][0]["content"][0]["text"], "You said: hello native");
    let sent = emu.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/responses");
    let sent = sent.json().unwrap();
    assert_eq!(sent["store"], false, "the provider keeps nothing");
    assert_eq!(sent["model"], "tiny");

    // Streamed, continuing: moatd replays the conversation; the provider never sees the id.
    let resp = post(
        &gw,
        Some(&k),
        &json!({"model": "oai/tiny", "input": "again", "previous_response_id": id, "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let events = named_events(&resp.text().await.unwrap());
    let done = events.last().unwrap();
    assert_eq!(done.0, "response.completed");
    let second_id = done.1["response"]["id"].as_str().unwrap().to_owned();
    assert!(events
        .iter()
        .filter_map(|(_, d)| d.get("response"))
        .all(|r| r["id"] == second_id.as_str()));
    assert_eq!(done.1["response"]["previous_response_id"], id.as_str());
    let sent = emu.requests().last().unwrap().json().unwrap();
    assert!(sent.get("previous_response_id").is_none(), "{sent}");
    let texts: Vec<&str> = sent["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["content"].as_str().or_else(|| i["content"][0]["text"].as_str()))
        .collect();
    assert_eq!(texts, ["hello native", "You said: hello native", "again"]);
    assert_eq!(
        get(&gw, Some(&k), &format!("/v1/responses/{second_id}"))
            .await
            .status(),
        200
    );

    // The budget settled from the Responses usage of both turns (whole and streamed).
    let mut tokens = 0;
    eventually(std::time::Duration::from_secs(5), || {
        store.flush().unwrap();
        tokens = store
            .usage_report(moat_store::GroupBy::Key, 0)
            .unwrap()
            .iter()
            .map(|l| l.prompt_tokens + l.completion_tokens)
            .sum::<u64>();
        tokens > 0
    })
    .await;
    let expected: u64 = [&first, &done.1["response"]]
        .iter()
        .map(|r| r["usage"]["total_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(tokens, expected);

    // Privacy covers the native body too: a secret keeps it off this (non-local) provider.
    let before = emu.requests().len();
    let (status, _) = error_of(
        post(&gw, Some(&k), &json!({"model": "oai/tiny", "input": [{"role": "user", "content": [{"type": "input_text", "text": "AKIAZ7QW3RT5YU6IJ2PL"}]}]})).await,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(emu.requests().len(), before);
}

#[tokio::test]
async fn the_bridge_works_over_every_chat_wire() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-emu".into()),
        models: Some(json!([{"id": "m"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let root = emu.base_url().trim_end_matches("/v1").to_owned();
    let toml = format!(
        "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"sk-emu\"\nhealth_check = false\n\
         [[providers]]\nname = \"llama\"\nkind = \"ollama\"\nbase_url = \"{root}\"\napi_key = \"sk-emu\"\nhealth_check = false\n\
         [[providers]]\nname = \"plain\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-emu\"\nhealth_check = false\n",
        emu.base_url(),
        emu.base_url()
    );
    let gw = gateway(&toml).await;
    for (provider, path) in [
        ("claude", "/v1/messages"),
        ("llama", "/api/chat"),
        ("plain", "/v1/chat/completions"),
    ] {
        let model = format!("{provider}/m");
        let whole: Value = post(
            &gw,
            None,
            &json!({"model": model, "input": "over the wire", "max_output_tokens": 50}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(
            whole["output"][0]["content"][0]["text"], "You said: over the wire",
            "{provider}: {whole}"
        );
        assert_eq!(emu.requests().last().unwrap().path, path);
        let resp = post(
            &gw,
            None,
            &json!({"model": model, "input": "and streamed", "previous_response_id": whole["id"], "stream": true, "max_output_tokens": 50}),
        )
        .await;
        let events = named_events(&resp.text().await.unwrap());
        let done = &events.last().unwrap().1["response"];
        assert_eq!(events.last().unwrap().0, "response.completed", "{provider}");
        assert_eq!(
            done["output"][0]["content"][0]["text"], "You said: and streamed",
            "{provider}"
        );
        assert!(
            done["usage"]["output_tokens"].as_u64().unwrap() > 0,
            "{provider}: {done}"
        );
    }
}
