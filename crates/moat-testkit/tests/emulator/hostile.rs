//! The fault-injection side of the emulator: floods, trickles and the raw upstream below HTTP.

use std::time::Duration;

use http::StatusCode;
use moat_testkit::{Emulator, EmulatorOptions, RawScript, RawUpstream};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{chat, plain_client};

async fn stream_bytes(emu: &Emulator, emulate: serde_json::Value) -> (usize, usize, Vec<u8>) {
    let mut resp = plain_client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("hi", json!({"stream": true, "emulate": emulate})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (mut total, mut chunks, mut head) = (0, 0, Vec::new());
    while let Ok(Some(chunk)) = resp.chunk().await {
        total += chunk.len();
        chunks += 1;
        if head.len() < 4096 {
            head.extend_from_slice(&chunk);
        }
    }
    (total, chunks, head)
}

#[tokio::test]
async fn floods_have_the_asked_size_and_shape() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let (total, _, head) = stream_bytes(&emu, json!({"flood": "lines", "flood_bytes": 3_000_000})).await;
    assert_eq!(total, 3_000_000);
    assert!(head.starts_with(b"data: xxx") && !head.windows(2).any(|w| w == b"\n\n"));
    let (total, _, head) = stream_bytes(&emu, json!({"flood": "events", "flood_bytes": 1_000_000})).await;
    assert!(total >= 1_000_000 && head.starts_with(b"data: {\"id\":\"chatcmpl-flood\""));
    assert!(plain_client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("hi", json!({"stream": true, "emulate": {"flood": "lots"}})))
        .send()
        .await
        .unwrap()
        .status()
        .is_client_error());
}

#[tokio::test]
async fn a_trickle_arrives_in_many_small_pieces() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let (total, chunks, _) = stream_bytes(&emu, json!({"byte_delay_ms": 1})).await;
    // Every byte is its own frame, a millisecond apart; the client sees far more pieces than events.
    assert!(chunks > total / 4, "{chunks} chunks for {total} bytes");
}

async fn raw_request(up: &RawUpstream) -> tokio::net::TcpStream {
    let addr = up
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn the_raw_upstream_misbehaves_below_http() {
    let garbage = RawUpstream::start(RawScript::Garbage(1000)).await.unwrap();
    let mut got = Vec::new();
    raw_request(&garbage).await.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 1000);
    assert!(!got.starts_with(b"HTTP/"));

    let reset = RawUpstream::start(RawScript::Reset).await.unwrap();
    let mut buf = [0u8; 16];
    let read = raw_request(&reset).await.read(&mut buf).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    let silent = RawUpstream::start(RawScript::Silent).await.unwrap();
    let mut s = raw_request(&silent).await;
    let waited = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
    assert!(waited.is_err(), "a silent upstream answers nothing");
    assert_eq!(silent.connections(), 1);

    let slow = RawUpstream::start(RawScript::SlowHead(Duration::from_millis(10)))
        .await
        .unwrap();
    let mut s = raw_request(&slow).await;
    let mut head = vec![0u8; 17];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head, b"HTTP/1.1 200 OK\r\n");
}
