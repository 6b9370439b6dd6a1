//! HTTPS with the test CA: h2 by ALPN, http/1.1 when only that is offered, and refusal without trust.

use http::{StatusCode, Version};
use moat_testkit::{Emulator, EmulatorOptions, TestCa};
use serde_json::{json, Value};

use crate::streaming::read_chunks;
use crate::{chat, client_for, eventually, sse_payloads};

async fn tls_emulator(ca: &TestCa) -> Emulator {
    let identity = ca.issue(&["localhost", "127.0.0.1"]).unwrap();
    Emulator::start(EmulatorOptions {
        tls: Some(identity),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn negotiates_h2_over_tls() {
    let ca = TestCa::new("tls test CA").unwrap();
    let emu = tls_emulator(&ca).await;
    assert!(emu.base_url().starts_with("https://localhost:"));
    let resp = client_for(&ca)
        .get(format!("{}/models", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_2);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(emu.requests()[0].version, Version::HTTP_2);
}

#[tokio::test]
async fn http1_when_only_http1_is_offered() {
    let ca = TestCa::new("tls test CA").unwrap();
    let emu = tls_emulator(&ca).await;
    let mut config = ca.client_config().unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("hi", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "You said: hi");
}

#[tokio::test]
async fn ip_address_name_verifies() {
    let ca = TestCa::new("tls test CA").unwrap();
    let emu = tls_emulator(&ca).await;
    let url = format!("https://127.0.0.1:{}/v1/models", emu.addr().port());
    let resp = client_for(&ca).get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn untrusted_ca_is_refused() {
    let ca = TestCa::new("tls test CA").unwrap();
    let emu = tls_emulator(&ca).await;
    let stranger = TestCa::new("another CA").unwrap();
    let result = client_for(&stranger)
        .get(format!("{}/models", emu.base_url()))
        .send()
        .await;
    assert!(result.is_err());
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn h2_stream_and_cancellation() {
    let ca = TestCa::new("tls test CA").unwrap();
    let emu = tls_emulator(&ca).await;
    let client = client_for(&ca);
    let url = format!("{}/chat/completions", emu.base_url());

    let resp = client
        .post(&url)
        .json(&chat("over h2", json!({"stream": true})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    let (chunks, err) = read_chunks(resp).await;
    assert!(err.is_none());
    let text: String = chunks
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(sse_payloads(&text)[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(eventually(|| emu.completed_streams() == 1).await);

    let slow = chat(
        "x",
        json!({"stream": true, "emulate": {"chunks": 200, "chunk_delay_ms": 20}}),
    );
    let mut resp = client.post(&url).json(&slow).send().await.unwrap();
    resp.chunk().await.unwrap().unwrap();
    drop(resp);
    assert!(
        eventually(|| emu.cancelled_streams() == 1).await,
        "h2 reset not seen as cancel"
    );

    let broken = chat(
        "a b c",
        json!({"stream": true, "emulate": {"reset_after_chunks": 1}}),
    );
    let (_, err) = read_chunks(client.post(&url).json(&broken).send().await.unwrap()).await;
    assert!(err.is_some(), "an h2 stream reset reaches the client");
}
