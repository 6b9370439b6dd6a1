//! Every way a request can fail gets a clear answer in OpenAI's error shape: never a panic or a hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default()).await.unwrap()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn invalid_json_is_400() {
    let http = client();
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
    let resp = gw
        .chat(None, &json!({"model": "local/x", "messages": "no"}))
        .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 400);
    assert!(emu.requests().is_empty(), "nothing reached the provider");
}

#[tokio::test]
async fn unknown_provider_or_model_is_404() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let resp = gw.chat(None, &chat("elsewhere/gpt")).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("elsewhere/gpt"));
    let resp = gw.chat(None, &json!({"messages": []})).await;
    assert_eq!(error_of(resp).await.0, 400, "no model at all");
    let resp = client().get(gw.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(error_of(resp).await.0, 404);
    let resp = client().get(gw.url("/v1/chat/completions")).send().await.unwrap();
    assert_eq!(error_of(resp).await.0, 405);
}

#[tokio::test]
async fn oversized_bodies_get_413_not_a_dropped_connection() {
    let emu = emulator().await;
    // The default limit (8 MiB): a 9 MiB body is answered.
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let big = format!(
        "{{\"model\":\"local/tiny\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "a".repeat(9 << 20)
    );
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 413);
    assert!(body["error"]["message"].as_str().unwrap().contains("8388608"));
    // A configured limit, and a chunked body without Content-Length.
    let gw = gateway(&format!(
        "[server]\nmax_body_bytes = 1000\n{}",
        provider("local", &emu.base_url())
    ))
    .await;
    let chunks = futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 500])));
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 413);
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn missing_or_wrong_client_key_is_401() {
    let emu = emulator().await;
    let gw = gateway(&format!(
        "[server]\napi_keys = [\"right\"]\n{}",
        provider("local", &emu.base_url())
    ))
    .await;
    let http = client();
    let resp = gw.chat(None, &chat("local/tiny")).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let resp = gw.chat(Some("wrong"), &chat("local/tiny")).await;
    assert_eq!(error_of(resp).await.0, 401);
    let resp = http.get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(error_of(resp).await.0, 401);
    let resp = gw.chat(Some("right"), &chat("local/tiny")).await;
    assert_eq!(resp.status(), 200);
}

/// A refused key is still a GenAI request in the metrics: counted under its endpoint's operation,
/// with its 401, though it never reached the pipeline that names the operation for admitted ones.
#[tokio::test]
async fn a_refused_key_is_counted_under_its_operation() {
    let emu = emulator().await;
    let gw = gateway(&format!(
        "[server]\napi_keys = [\"right\"]\n{}",
        provider("local", &emu.base_url())
    ))
    .await;
    let resp = client()
        .post(gw.url("/v1/embeddings"))
        .bearer_auth("wrong")
        .json(&json!({"model": "local/tiny", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 401);
    let text = gw.metrics().await;
    let refused = text.lines().find(|l| {
        l.starts_with("gen_ai_client_operation_duration_seconds_count{")
            && [
                "gen_ai_operation_name=\"embeddings\"",
                "endpoint=\"/v1/embeddings\"",
                "status=\"401\"",
            ]
            .iter()
            .all(|label| l.contains(label))
    });
    assert!(refused.is_some(), "{text}");
}

#[tokio::test]
async fn unreachable_upstream_is_502_naming_the_cause() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let toml = format!(
        "{}max_retries = 1\n",
        provider("local", &format!("http://127.0.0.1:{port}/v1"))
    );
    let gw = gateway(&toml).await;
    let resp = gw.chat(None, &chat("local/tiny")).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_unreachable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{body}"
    );
}

#[tokio::test]
async fn upstream_time_out_is_504() {
    let emu = emulator().await;
    let toml = format!(
        "{}first_byte_timeout_ms = 300\nmax_retries = 0\n",
        provider("local", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let mut body = chat("local/tiny");
    body["emulate"] = json!({"first_byte_delay_ms": 5000});
    let resp = gw.chat(None, &body).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 504);
    assert_eq!(body["error"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn upstream_error_status_passes_through_with_its_message() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let mut body = chat("local/tiny");
    body["emulate"] = json!({"status": 400, "message": "context too long for tiny"});
    let resp = gw.chat(None, &body).await;
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["message"], "context too long for tiny");
    assert_eq!(emu.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn transient_failures_are_retried_honouring_retry_after() {
    let emu = emulator().await;
    let gw = gateway(&provider("local", &emu.base_url())).await;
    let mut body = chat("local/tiny");
    body["emulate"] = json!({"status": 503, "times": 2});
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(emu.requests().len(), 3);

    body["emulate"] = json!({"status": 429, "times": 1, "retry_after": 1});
    let started = Instant::now();
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as Retry-After asked"
    );
}

#[tokio::test]
async fn retries_run_out_into_the_upstream_status() {
    let emu = emulator().await;
    let toml = format!("{}max_retries = 1\n", provider("local", &emu.base_url()));
    let gw = gateway(&toml).await;
    let mut body = chat("local/tiny");
    body["emulate"] = json!({"status": 429, "retry_after": 60});
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.headers()["retry-after"], "60");
    let (status, _) = error_of(resp).await;
    assert_eq!(status, 429);
    assert_eq!(
        emu.requests().len(),
        1,
        "a Retry-After beyond the cap is not sat out"
    );
}

#[tokio::test]
async fn failed_targets_fall_back_in_order() {
    let bad = emulator().await;
    let good = emulator().await;
    let toml = format!(
        "{}max_retries = 0\n{}[[models]]\nname = \"fast\"\nroute = [\"bad/tiny\", \"good/tiny\"]\n",
        provider("bad", &bad.base_url()),
        provider("good", &good.base_url())
    );
    let gw = gateway(&toml).await;
    // The first provider of the route is down.
    bad.shutdown().await;
    let resp = gw.chat(None, &chat("fast")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "good");

    // OpenRouter-style `models` list: the first entry fails, the second answers.
    let mut body = chat("bad/tiny");
    body["models"] = json!(["good/small"]);
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200);
    let forwarded = good.requests().last().unwrap().json().unwrap();
    assert_eq!(forwarded["model"], "small");
    assert!(
        forwarded.get("models").is_none(),
        "the fallback list is moatd's, not the provider's"
    );
}

#[tokio::test]
async fn mid_stream_failures_end_with_an_error_event() {
    let emu = emulator().await;
    let toml = format!("{}idle_timeout_ms = 400\n", provider("local", &emu.base_url()));
    let gw = gateway(&toml).await;
    let stream_body = |emulate: Value| json!({"model": "local/tiny", "stream": true, "messages": [{"role": "user", "content": "a b c d e"}], "emulate": emulate});
    // The provider's own in-band error chunk passes through.
    let text = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&stream_body(json!({"error_after_chunks": 2})))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        data_events(&text)
            .iter()
            .any(|d| d.contains("Emulated mid-stream failure")),
        "{text}"
    );
    // A reset connection: moatd adds a final error event.
    let text = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&stream_body(json!({"reset_after_chunks": 2})))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last: Value = serde_json::from_str(data_events(&text).last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_error", "{text}");
    // Silence beyond the idle time-out.
    let text = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&stream_body(json!({"pause_after_chunks": 1, "pause_ms": 3000})))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last: Value = serde_json::from_str(data_events(&text).last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{text}");
    assert!(
        streamed_text(&text).starts_with("You"),
        "what arrived before the failure was relayed"
    );
}

#[tokio::test]
async fn keep_alive_comments_keep_a_slow_stream_alive() {
    let emu = emulator().await;
    let toml = format!("{}idle_timeout_ms = 500\n", provider("local", &emu.base_url()));
    let gw = gateway(&toml).await;
    let body = json!({"model": "local/tiny", "stream": true, "messages": [{"role": "user", "content": "a b"}],
        "emulate": {"pause_after_chunks": 1, "pause_ms": 1500, "keepalive_every_ms": 100}});
    let text = gw.chat(None, &body).await.text().await.unwrap();
    assert_eq!(streamed_text(&text), "You said: a b");
    assert_eq!(data_events(&text).last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let gw = gateway("").await;
    let resp = client()
        .get(gw.url("/health"))
        .header("x-big", "a".repeat(100 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let gw = gateway("[server]\nheader_read_timeout_ms = 300\nbody_read_timeout_ms = 300\n").await;
    // Headers that never finish: the connection is closed.
    let mut sock = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection with unfinished headers was not closed");
    // A body that never finishes: 408.
    let mut sock = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\"")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let gw = gateway("[server]\nmax_connections = 1\n").await;
    let mut first = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = first.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The first connection is still open (keep-alive): a second is not served yet.
    let second = tokio::spawn({
        let url = gw.url("/health");
        async move { client().get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "second connection was served beyond the limit"
    );
    drop(first);
    let status = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}
