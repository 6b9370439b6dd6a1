//! Broken providers: every way a provider can fail or misbehave, each answered with a clean error
//! (or, when it is only slow, the right answer) within the configured provider time-outs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{chat, ends_with_error_event, tail, within, Case, World, PROVIDER_TIMEOUT};

/// What a client got: status, total bytes, and the last 64 KiB of the body as text.
pub struct Got {
    pub status: u16,
    pub bytes: u64,
    pub tail: String,
}

const KEEP: usize = 64 * 1024;

/// Sends `body` to `path` with `key` and reads the whole answer, keeping only its end.
pub async fn send(http: reqwest::Client, url: String, key: String, body: Value) -> Result<Got, String> {
    let mut resp = http
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let (mut bytes, mut kept) = (0u64, Vec::new());
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                bytes += chunk.len() as u64;
                kept.extend_from_slice(&chunk);
                if kept.len() > 2 * KEEP {
                    kept.drain(..kept.len() - KEEP);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(format!("body broke off instead of ending cleanly: {e}")),
        }
    }
    Ok(Got {
        status,
        bytes,
        tail: String::from_utf8_lossy(&kept).into_owned(),
    })
}

/// A non-streamed failure: `status` with an OpenAI error body.
fn error_status(got: &Got, statuses: &[u16]) -> Result<(), String> {
    if !statuses.contains(&got.status) {
        return Err(format!(
            "status {} (want one of {statuses:?}): {}",
            got.status,
            tail(&got.tail)
        ));
    }
    let v: Value =
        serde_json::from_str(&got.tail).map_err(|e| format!("error body is not JSON ({e}): {}", got.tail))?;
    for member in ["message", "type", "code"] {
        if v["error"].get(member).is_none() {
            return Err(format!("not an OpenAI error body: {}", got.tail));
        }
    }
    Ok(())
}

fn stream_error(got: &Got, code: &str) -> Result<(), String> {
    if got.status != 200 {
        return Err(format!("status {}: {}", got.status, tail(&got.tail)));
    }
    ends_with_error_event(&got.tail, code)
}

fn complete_answer(got: &Got, text: &str) -> Result<(), String> {
    let content: String = crate::data_events(&got.tail)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    if got.status != 200 || content != text || !got.tail.ends_with("data: [DONE]\n\n") {
        return Err(format!(
            "status {}, content {content:?}: {}",
            got.status,
            tail(&got.tail)
        ));
    }
    Ok(())
}

type Check = fn(&Got) -> Result<(), String>;

/// One case: `body` sent with a key of its own; `check` judges what came back within `limit`.
async fn case(world: &World, name: &'static str, limit: Duration, body: Value, check: Check) -> Case {
    let (http, url, key) = (
        world.http.clone(),
        world.url("/v1/chat/completions"),
        world.key(name).await,
    );
    (
        name,
        Box::pin(async move {
            let got = within(limit, name, send(http, url, key, body)).await??;
            check(&got)
        }),
    )
}

pub async fn cases(w: &World) -> Vec<Case> {
    let t = PROVIDER_TIMEOUT;
    let mut cases = vec![
        case(
            w,
            "stall before headers",
            t,
            chat("emu/tiny", true, json!({"hang": true})),
            |g| error_status(g, &[504]),
        )
        .await,
        case(
            w,
            "silent provider",
            t,
            chat("silent/tiny", false, json!({})),
            |g| error_status(g, &[504]),
        )
        .await,
        case(
            w,
            "response head never ends",
            t,
            chat("slowhead/tiny", true, json!({})),
            |g| error_status(g, &[502, 504]),
        )
        .await,
        case(
            w,
            "stall mid-stream",
            t,
            chat(
                "emu/tiny",
                true,
                json!({"pause_after_chunks": 1, "pause_ms": 600_000}),
            ),
            |g| stream_error(g, "upstream_timeout"),
        )
        .await,
        case(
            w,
            "reset mid-stream",
            t,
            chat("emu/tiny", true, json!({"reset_after_chunks": 2})),
            |g| stream_error(g, "upstream_stream_error"),
        )
        .await,
        case(
            w,
            "reset before the answer",
            t,
            chat("reset/tiny", true, json!({})),
            |g| error_status(g, &[502]),
        )
        .await,
        case(
            w,
            "garbage instead of HTTP",
            t,
            chat("garbage/tiny", false, json!({})),
            |g| error_status(g, &[502]),
        )
        .await,
        case(
            w,
            "40 MB without a blank line",
            t,
            chat(
                "emu/tiny",
                true,
                json!({"flood": "lines", "flood_bytes": 40_000_000}),
            ),
            |g| {
                stream_error(g, "upstream_event_too_large")?;
                // Cut off at the 1 MiB event bound: nothing of the endless event went out.
                (g.bytes < 64 * 1024)
                    .then_some(())
                    .ok_or(format!("{} bytes relayed", g.bytes))
            },
        )
        .await,
        case(
            w,
            "NDJSON line that never ends",
            t,
            chat(
                "llama/tiny",
                true,
                json!({"flood": "no_newline", "flood_bytes": 40_000_000}),
            ),
            |g| stream_error(g, "upstream_event_too_large"),
        )
        .await,
        case(
            w,
            "garbage stream through the Anthropic translator",
            t,
            chat(
                "claude/tiny",
                true,
                json!({"flood": "garbage", "flood_bytes": 8_000_000}),
            ),
            |g| stream_error(g, "upstream_stream_error"),
        )
        .await,
        // A gigabyte of well-formed events is relayed whole, at the reader's pace, in bounded memory.
        case(
            w,
            "1 GiB of events",
            Duration::from_secs(600),
            chat(
                "emu/tiny",
                true,
                json!({"flood": "events", "flood_bytes": 1u64 << 30}),
            ),
            |g| {
                if g.status != 200 || g.bytes < 1 << 30 || !g.tail.ends_with("data: [DONE]\n\n") {
                    return Err(format!(
                        "status {}, {} bytes: {}",
                        g.status,
                        g.bytes,
                        tail(&g.tail)
                    ));
                }
                Ok(())
            },
        )
        .await,
    ];
    // Slow is not broken: an answer trickled one byte per frame arrives whole, on every wire.
    for (name, model) in [
        ("one byte at a time (OpenAI)", "emu/tiny"),
        ("one byte at a time (Anthropic)", "claude/tiny"),
        ("one byte at a time (Ollama)", "llama/tiny"),
    ] {
        let body = chat(model, true, json!({"byte_delay_ms": 1}));
        cases.push(
            case(w, name, t, body, |g| {
                complete_answer(g, "You said: fault injection")
            })
            .await,
        );
    }
    cases
}
