//! Streams over plain HTTP/1.1: framing, timing directives, mid-stream failures and the counters.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use moat_testkit::{Emulator, EmulatorOptions, KEEPALIVE_COMMENT};
use serde_json::{json, Value};

use crate::{chat, eventually, plain_client, sse_payloads};

/// Every body chunk as the client received it, with its arrival time, and the error that ended the
/// body if it did not end cleanly.
pub async fn read_chunks(mut resp: reqwest::Response) -> (Vec<(Instant, Bytes)>, Option<reqwest::Error>) {
    let mut chunks = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => chunks.push((Instant::now(), chunk)),
            Ok(None) => return (chunks, None),
            Err(e) => return (chunks, Some(e)),
        }
    }
}

fn joined(chunks: &[(Instant, Bytes)]) -> String {
    chunks
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect()
}

async fn start_stream(emu: &Emulator, body: Value) -> reqwest::Response {
    let resp = plain_client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp
}

#[tokio::test]
async fn frames_arrive_split_and_end_with_usage_and_done() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let resp = start_stream(
        &emu,
        chat(
            "one two three",
            json!({"stream": true, "emulate": {"chunk_delay_ms": 30}}),
        ),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (chunks, err) = read_chunks(resp).await;
    assert!(err.is_none());
    // comment+role, 5 words, finish, usage, [DONE]: the delays keep most of them apart.
    assert!(chunks.len() >= 8, "only {} chunks", chunks.len());
    assert!(chunks[0].1.starts_with(KEEPALIVE_COMMENT.as_bytes()));
    assert_eq!(chunks.last().unwrap().1, Bytes::from_static(b"data: [DONE]\n\n"));
    let usage_chunk = &chunks[chunks.len() - 2].1;
    let usage: Value =
        serde_json::from_slice(usage_chunk.strip_prefix(b"data: ").unwrap().trim_ascii()).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["cost"].as_f64().unwrap() > 0.0);
    assert_eq!(usage["usage"]["completion_tokens"], 5);

    let payloads = sse_payloads(&joined(&chunks));
    assert_eq!(payloads[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = payloads
        .iter()
        .filter_map(|p| p["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "You said: one two three");
    for p in &payloads {
        assert_eq!(p["object"], "chat.completion.chunk");
        assert_eq!(p["model"], "tiny");
        assert_eq!(p["id"], payloads[0]["id"]);
        assert!(p["created"].is_u64());
        assert!(p.get("x_emulator").is_some());
    }
    let finish = &payloads[payloads.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(eventually(|| emu.completed_streams() == 1).await);
    assert_eq!(emu.cancelled_streams(), 0);
}

#[tokio::test]
async fn pause_sends_keepalives_and_first_chunk_comes_first() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let directive = json!({"pause_after_chunks": 1, "pause_ms": 800, "keepalive_every_ms": 100});
    let resp = start_stream(&emu, chat("go", json!({"stream": true, "emulate": directive}))).await;
    let (chunks, err) = read_chunks(resp).await;
    assert!(err.is_none());
    let arrival = |needle: &str| {
        chunks
            .iter()
            .find(|(_, b)| String::from_utf8_lossy(b).contains(needle))
            .map(|(t, _)| *t)
            .unwrap()
    };
    let first = arrival("\"content\":\"You\"");
    let after_pause = arrival("\"content\":\" said:\"");
    // Loose: the pause is 800 ms; the first word must not have waited for it.
    assert!(after_pause.duration_since(first) >= Duration::from_millis(400));
    let text = joined(&chunks);
    let comments = text.matches(KEEPALIVE_COMMENT).count();
    assert!(
        comments >= 3,
        "expected keep-alive comments during the pause, got {comments}"
    );
}

#[tokio::test]
async fn chunks_directive_sets_the_count() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let body = chat(
        "x",
        json!({"stream": true, "emulate": {"chunks": 20, "content": "short"}}),
    );
    let (chunks, _) = read_chunks(start_stream(&emu, body).await).await;
    let payloads = sse_payloads(&joined(&chunks));
    let pieces: Vec<&str> = payloads
        .iter()
        .filter_map(|p| p["choices"][0]["delta"]["content"].as_str())
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(pieces.len(), 20);
    assert!(pieces.concat().starts_with("short short"));
}

#[tokio::test]
async fn error_after_chunks_sends_openrouter_error_chunk() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let body = chat(
        "a b c d",
        json!({"stream": true, "emulate": {"error_after_chunks": 2}}),
    );
    let (chunks, err) = read_chunks(start_stream(&emu, body).await).await;
    assert!(err.is_none(), "the stream ends cleanly, only without [DONE]");
    let text = joined(&chunks);
    assert!(!text.contains("[DONE]"));
    let last = sse_payloads(&text).pop().unwrap();
    assert_eq!(last["error"]["code"], "server_error");
    assert_eq!(last["error"]["message"], "Emulated mid-stream failure");
    assert_eq!(last["provider"], "Emu");
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    let content: String = sse_payloads(&text)
        .iter()
        .filter_map(|p| p["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "You said:");
    assert_eq!((emu.completed_streams(), emu.cancelled_streams()), (0, 0));
}

#[tokio::test]
async fn reset_after_chunks_breaks_the_connection() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let body = chat(
        "a b c",
        json!({"stream": true, "emulate": {"reset_after_chunks": 2}}),
    );
    let (chunks, err) = read_chunks(start_stream(&emu, body).await).await;
    assert!(err.is_some(), "the client must see a broken body");
    let text = joined(&chunks);
    assert!(text.contains("\"said:\"") || text.contains("\" said:\""));
    assert!(!text.contains("[DONE]") && !text.contains("\"finish_reason\":\"stop\""));
    assert_eq!(emu.cancelled_streams(), 0);

    // Without streaming the headers go out, then the body breaks.
    let resp = plain_client()
        .post(format!("{}/chat/completions", emu.base_url()))
        .json(&chat("a", json!({"emulate": {"reset_after_chunks": 0}})))
        .send()
        .await
        .unwrap();
    assert!(resp.bytes().await.is_err());
}

#[tokio::test]
async fn dropped_stream_counts_as_cancelled() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let body = chat(
        "x",
        json!({"stream": true, "emulate": {"chunks": 200, "chunk_delay_ms": 20}}),
    );
    let mut resp = start_stream(&emu, body).await;
    for _ in 0..3 {
        resp.chunk().await.unwrap().unwrap();
    }
    drop(resp);
    assert!(
        eventually(|| emu.cancelled_streams() == 1).await,
        "cancel not seen"
    );
    assert_eq!(emu.completed_streams(), 0);
}

#[tokio::test]
async fn text_completion_stream() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let resp = plain_client()
        .post(format!("{}/completions", emu.base_url()))
        .json(&json!({"model": "tiny", "prompt": "abc", "stream": true}))
        .send()
        .await
        .unwrap();
    let (chunks, err) = read_chunks(resp).await;
    assert!(err.is_none());
    let text = joined(&chunks);
    assert!(text.starts_with(KEEPALIVE_COMMENT) && text.ends_with("data: [DONE]\n\n"));
    let payloads = sse_payloads(&text);
    assert!(payloads.iter().all(|p| p["object"] == "text_completion"));
    let content: String = payloads
        .iter()
        .filter_map(|p| p["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(content, "You said: abc");
    assert!(payloads.last().unwrap()["usage"]["cost"].is_f64());
}

#[tokio::test]
async fn hanging_request_ends_on_shutdown() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let url = format!("{}/chat/completions", emu.base_url());
    let pending = tokio::spawn(async move {
        plain_client()
            .post(url)
            .json(&chat("x", json!({"emulate": {"hang": true}})))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished());
    assert_eq!(emu.requests().len(), 1);
    emu.shutdown().await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.is_err(), "a hung request fails once the emulator is gone");
}
