//! Non-streaming endpoints over plain HTTP: shapes, auth, errors and failure directives.

use std::time::{Duration, Instant};

use http::{StatusCode, Version};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

use crate::{chat, plain_client};

#[tokio::test]
async fn models_under_both_prefixes() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = plain_client();
    for base in [emu.base_url(), emu.openrouter_base_url()] {
        let resp = client.get(format!("{base}/models")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.version(), Version::HTTP_11);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "list");
        let tiny = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "tiny")
            .unwrap();
        assert_eq!(tiny["pricing"]["prompt"], "0.000001");
        assert_eq!(tiny["context_length"], 4096);
        assert!(body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "anthropic/claude-sonnet-4"));
    }
    let one: Value = client
        .get(format!("{}/models/anthropic/claude-sonnet-4", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["object"], "model");
    let requests = emu.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].path, "/api/v1/models");
    assert_eq!(requests[0].method, "GET");
}

#[tokio::test]
async fn models_can_be_replaced() {
    let models = json!([{"id": "custom", "object": "model", "pricing": {"prompt": "1", "completion": "2"}}]);
    let emu = Emulator::start(EmulatorOptions {
        models: Some(models.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let client = plain_client();
    let body: Value = client
        .get(format!("{}/models", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"], models);
    // Prices come from the replaced list: 1 prompt token at $1 plus 3 words at $2.
    let body: Value = client
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&json!({"model": "custom", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["usage"]["cost"], 7.0);
}

#[tokio::test]
async fn chat_completion_shape_and_recording() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let request = chat("hello world", json!({"x_probe": {"n": 7}}));
    let resp = plain_client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .header("x-trace", "abc")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-emu-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "tiny");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    let choice = &body["choices"][0];
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": "You said: hello world", "refusal": null})
    );
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 3); // 11 characters
    assert_eq!(usage["completion_tokens"], 4);
    assert_eq!(usage["total_tokens"], 7);
    assert!(usage["cost"].as_f64().unwrap() > 0.0);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
    assert!(usage["cost_details"].is_object());
    assert!(body["system_fingerprint"].is_string());
    assert_eq!(body["x_emulator"]["echo_unknown"], json!({"n": 7}));

    let recorded = emu.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].version, Version::HTTP_11);
    assert_eq!(recorded[0].headers["x-trace"], "abc");
    assert_eq!(recorded[0].json(), Some(request));
}

#[tokio::test]
async fn scripted_content_and_no_probe() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let body: Value = plain_client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("ignored", json!({"emulate": {"content": "exactly this"}})))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "exactly this");
    assert_eq!(body["x_emulator"]["echo_unknown"], Value::Null);
}

#[tokio::test]
async fn text_completions() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let body: Value = plain_client()
        .post(format!("{}/completions", emu.base_url()))
        .json(&json!({"model": "tiny", "prompt": "once upon"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "text_completion");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-emu-"));
    assert_eq!(body["choices"][0]["text"], "You said: once upon");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["completion_tokens"], 4);
}

#[tokio::test]
async fn embeddings() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = plain_client();
    let url = format!("{}/embeddings", emu.base_url());
    let body: Value = client
        .post(&url)
        .json(&json!({"model": "emu-embed", "input": ["alpha", "beta"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "emu-embed");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["object"], "embedding");
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(body["usage"]["prompt_tokens"], body["usage"]["total_tokens"]);
    // The same input gives the same vector.
    let again: Value = client
        .post(&url)
        .json(&json!({"model": "m", "input": "alpha"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["data"][0]["embedding"], data[0]["embedding"]);
}

#[tokio::test]
async fn api_key_is_required_when_set() {
    let opts = EmulatorOptions {
        api_key: Some("sk-emu".to_owned()),
        ..Default::default()
    };
    let emu = Emulator::start(opts).await.unwrap();
    let client = plain_client();
    let url = format!("{}/chat/completions", emu.base_url());
    for auth in [None, Some("Bearer wrong"), Some("sk-emu")] {
        let mut req = client.post(&url).json(&chat("hi", json!({})));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert!(body["error"]["message"].is_string());
        assert_eq!(body["error"]["param"], Value::Null);
    }
    let resp = client
        .post(&url)
        .bearer_auth("sk-emu")
        .json(&chat("hi", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn invalid_json_and_unknown_path() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = plain_client();
    let resp = client
        .post(format!("{}/chat/completions", emu.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    let mut keys: Vec<_> = body["error"].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "param", "type"]);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], Value::Null);

    let resp = client
        .get(format!("{}/nope", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let resp = client
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("hi", json!({"emulate": {"statsu": 500}})))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "a misspelt directive is refused"
    );
    assert_eq!(emu.requests().len(), 3);
}

#[tokio::test]
async fn status_directive_fails_the_first_times() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = plain_client();
    let url = format!("{}/chat/completions", emu.base_url());
    let request = chat(
        "hi",
        json!({"emulate": {"status": 429, "times": 2, "retry_after": 7}}),
    );
    for _ in 0..2 {
        let resp = client.post(&url).json(&request).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "7");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    }
    let resp = client.post(&url).json(&request).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Another directive text has its own counter; without `times` it always fails.
    let always = chat("hi", json!({"emulate": {"status": 503, "message": "down"}}));
    for _ in 0..3 {
        let resp = client.post(&url).json(&always).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["error"],
            json!({"message": "down", "type": "server_error", "param": null, "code": null})
        );
    }
}

#[tokio::test]
async fn openrouter_error_shape() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let resp = plain_client()
        .post(format!("{}/chat/completions", emu.openrouter_base_url()))
        .json(&chat(
            "hi",
            json!({"emulate": {"status": 502, "openrouter_error": true}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 502);
    assert_eq!(body["error"]["metadata"]["provider_name"], "Emu");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn first_byte_delay_holds_the_headers() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let started = Instant::now();
    let resp = plain_client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("hi", json!({"emulate": {"first_byte_delay_ms": 300}})))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn h2c_with_prior_knowledge() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(
            moat_testkit::TestCa::new("unused")
                .unwrap()
                .client_config()
                .unwrap(),
        )
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("hi", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(emu.requests()[0].version, Version::HTTP_2);
}

#[tokio::test]
async fn standalone_serve_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(moat_testkit::serve(
        listener,
        EmulatorOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let body: Value = plain_client()
        .post(format!("http://{addr}/api/v1/chat/completions"))
        .json(&chat("standalone", json!({})))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "You said: standalone");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn restarts_on_the_same_port_after_shutdown() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let addr = emu.addr();
    let base = emu.base_url();
    let client = plain_client();
    let models = format!("{base}/models");
    assert_eq!(client.get(&models).send().await.unwrap().status(), StatusCode::OK);
    emu.shutdown().await;
    let down = client.get(&models).send().await;
    assert!(down.is_err(), "a stopped emulator still answered: {down:?}");
    let again = Emulator::start_on(addr, EmulatorOptions::default())
        .await
        .unwrap();
    assert_eq!(again.base_url(), base);
    assert_eq!(client.get(&models).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(again.requests().len(), 1, "the new emulator's log starts empty");
}
