//! Requests through the gateway reach a real emulator on loopback and come back intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default()).await.unwrap()
}

#[tokio::test]
async fn non_streamed_chat_matches_direct_and_strips_the_prefix() {
    let http = client();
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let body = json!({
        "model": "local/tiny",
        "messages": [{"role": "user", "content": "hello there"}],
        "x_probe": {"keep": [1, 2, 3]}
    });
    let via: Value = gw.chat(None, &body).await.json().await.unwrap();
    let mut direct_body = body.clone();
    direct_body["model"] = json!("tiny");
    let direct: Value = http
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&direct_body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(via["choices"], direct["choices"]);
    assert_eq!(via["usage"], direct["usage"]);
    assert_eq!(via["choices"][0]["message"]["content"], "You said: hello there");
    // The unknown request field reached the upstream, and its unknown response field came back.
    assert_eq!(via["x_emulator"]["echo_unknown"], json!({"keep": [1, 2, 3]}));
    let seen = emu.requests();
    let forwarded = seen
        .iter()
        .find(|r| r.path == "/v1/chat/completions")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(forwarded["model"], "tiny");
    assert_eq!(forwarded["x_probe"], json!({"keep": [1, 2, 3]}));
}

#[tokio::test]
async fn streamed_chat_relays_every_event() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let body = json!({"model": "local/tiny", "stream": true, "messages": [{"role": "user", "content": "one two three"}]});
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(resp.headers()["x-moat-provider"], "local");
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with(": OPENROUTER PROCESSING"),
        "keep-alive comment relayed: {text}"
    );
    assert_eq!(streamed_text(&text), "You said: one two three");
    let events = data_events(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let usage_event: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(usage_event["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(
        usage_event["x_emulator"].is_object(),
        "unknown fields pass through"
    );
}

#[tokio::test]
async fn first_chunk_arrives_while_the_upstream_still_pauses() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let body = json!({
        "model": "local/tiny", "stream": true,
        "messages": [{"role": "user", "content": "a b c d"}],
        "emulate": {"pause_after_chunks": 1, "pause_ms": 3000}
    });
    let resp = gw.chat(None, &body).await;
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !streamed_text(&seen).contains("You") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("first content chunk must not wait for the pause")
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(emu.completed_streams(), 0, "the upstream is still pausing");
    let mut rest = seen;
    while let Some(chunk) = stream.next().await {
        rest.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert_eq!(streamed_text(&rest), "You said: a b c d");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let body = json!({
        "model": "local/tiny", "stream": true,
        "messages": [{"role": "user", "content": "x"}],
        "emulate": {"chunks": 200, "chunk_delay_ms": 50}
    });
    let resp = gw.chat(None, &body).await;
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    assert!(
        eventually(Duration::from_secs(5), || emu.cancelled_streams() == 1).await,
        "upstream stream was not cancelled"
    );
    assert_eq!(emu.completed_streams(), 0);
}

#[tokio::test]
async fn completions_and_embeddings_are_forwarded() {
    let http = client();
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let c: Value = http
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "local/tiny", "prompt": "say hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["object"], "text_completion");
    assert!(c["choices"][0]["text"].as_str().unwrap().contains("say hi"));
    let e: Value = http
        .post(gw.url("/api/v1/embeddings"))
        .json(&json!({"model": "local/embed-small", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["data"].as_array().unwrap().len(), 2);
    let models: Vec<String> = emu
        .requests()
        .iter()
        .filter_map(|r| r.json())
        .map(|j| j["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(models, ["tiny", "embed-small"]);
}

#[tokio::test]
async fn models_are_merged_prefixed_and_cached() {
    let http = client();
    let a = emulator().await;
    let b = emulator().await;
    let toml = format!(
        "{}{}[[models]]\nname = \"fast\"\nroute = [\"a/tiny\", \"b/tiny\"]\n",
        provider("a", &a.base_url()),
        provider("b", &b.base_url())
    );
    let gw = gateway(&toml).await;
    let list: Value = http
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"a/tiny") && ids.contains(&"b/tiny") && ids.contains(&"fast"),
        "{ids:?}"
    );
    let tiny = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "a/tiny")
        .unwrap();
    assert!(
        tiny["pricing"].is_object(),
        "provider-specific fields are kept: {tiny}"
    );
    let again: Value = http
        .get(gw.url("/api/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, list);
    assert_eq!(
        a.requests()
            .iter()
            .filter(|r| r.path.ends_with("/models"))
            .count(),
        1,
        "second listing came from the cache"
    );
}

#[tokio::test]
async fn health_answers_without_a_key() {
    let gw = gateway("[server]\napi_keys = [\"k\"]\n").await;
    let resp = client().get(gw.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn http2_clients_are_served() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let tls = moat_upstream::tls::client_config(None).unwrap();
    let h2 = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let resp = h2
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": "local/tiny", "messages": [{"role": "user", "content": "h2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn client_credentials_never_reach_the_provider() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("provider-key".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let toml = format!(
        "[server]\napi_keys = [\"client-key\"]\n{}api_key = \"provider-key\"\n",
        provider("local", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("client-key")
        .header("x-title", "my app")
        .json(&json!({"model": "local/tiny", "messages": [{"role": "user", "content": "k"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let req = &emu.requests()[0];
    assert_eq!(req.headers["authorization"], "Bearer provider-key");
    assert_eq!(req.headers["x-title"], "my app");
}

/// POSTs `body` as it is (not re-serialized by the client) to `/v1/chat/completions`, with a member
/// that makes it long enough to be edited in place rather than encoded
/// (`moat_upstream::adapter::EDIT_FROM_BYTES`).
async fn post_raw(gw: &TestGateway, body: &'static str) -> reqwest::Response {
    let pad = "p".repeat(moat_upstream::adapter::EDIT_FROM_BYTES);
    let body = format!(
        r#"{{"x_pad": "{pad}", {}"#,
        body.trim_start().trim_start_matches('{')
    );
    client()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_clients_bytes_go_out_with_only_the_gateways_members_rewritten() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let r = post_raw(
        &gw,
        r#"{"model": "local/tiny", "models": ["local/tiny"], "user": "alice",
            "messages": [{"role": "user", "content": "caf\u00e9", "x_note": {"a" : [1.50, 2e3]}}],
            "x_probe": {"keep" : [1.50, 2e3, "\u00e9"]}, "temperature": 1}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    let forwarded = String::from_utf8(emu.requests().last().unwrap().body.to_vec()).unwrap();
    // Every member moatd does not set, byte for byte.
    for member in [
        r#""messages":[{"role": "user", "content": "caf\u00e9", "x_note": {"a" : [1.50, 2e3]}}]"#,
        r#""x_probe":{"keep" : [1.50, 2e3, "\u00e9"]}"#,
        r#""temperature":1"#,
    ] {
        assert!(forwarded.contains(member), "{member} in {forwarded}");
    }
    // moatd's own: the provider's model, no fallback list, the partition members hashed per tenant.
    let sent: Value = serde_json::from_str(&forwarded).unwrap();
    assert_eq!(sent["model"], "tiny");
    assert!(sent.get("models").is_none(), "{forwarded}");
    assert!(sent["cache_salt"].is_string(), "{forwarded}");
    assert!(
        !forwarded.contains("alice") && sent["user"].is_string(),
        "{forwarded}"
    );
}

#[tokio::test]
async fn of_duplicate_members_only_the_one_moatd_read_is_forwarded() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let r = post_raw(
        &gw,
        r#"{"model": "local/tiny", "x_note": "sk-first-copy-secret", "messages": [{"role": "user", "content": "hi"}],
            "x_note": "second", "x_deep": {"k": "sk-first-deep-secret", "k": "plain"}}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    let forwarded = String::from_utf8(emu.requests().last().unwrap().body.to_vec()).unwrap();
    assert!(!forwarded.contains("sk-first"), "{forwarded}");
    assert_eq!(forwarded.matches("\"x_note\"").count(), 1, "{forwarded}");
    let sent: Value = serde_json::from_str(&forwarded).unwrap();
    assert_eq!(
        (&sent["x_note"], &sent["x_deep"]),
        (&json!("second"), &json!({"k": "plain"}))
    );
}
