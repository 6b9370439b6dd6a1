#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_wire::openai::ChatCompletionRequest;
use moat_wire::sse::{SseFrame, SseParser};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::eventstream::{encode, HeaderValue};
use crate::StreamTranslator;

fn run(t: &mut dyn StreamTranslator, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        out.extend(t.feed(p));
    }
    out.extend(t.finish());
    out
}

fn data(bytes: &[u8]) -> Vec<Value> {
    let mut p = SseParser::new();
    let mut frames = Vec::new();
    p.feed(bytes, &mut frames).unwrap();
    frames
        .into_iter()
        .filter_map(|f| match f {
            SseFrame::Event(e) => Some(serde_json::from_str(&e.data).unwrap_or(Value::String(e.data))),
            SseFrame::Comment(_) => None,
        })
        .collect()
}

fn request(v: Value) -> ChatCompletionRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn chat_request_becomes_converse() {
    let req = request(json!({
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}
            ]},
            {"role": "assistant", "content": "Looking.", "tool_calls": [
                {"id": "tooluse_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "{\"temp\": 4}"},
            {"role": "user", "content": "and tomorrow?"}
        ],
        "max_completion_tokens": 200, "temperature": 1.5, "top_p": 0.9, "stop": "END",
        "tools": [{"type": "function", "function": {"name": "weather", "description": "w", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "additionalModelRequestFields": {"top_k": 50},
        "stream_options": {"include_usage": true},
        "unknown_member": true
    }));
    let b = to_converse_request(&req).unwrap();
    assert_eq!(b["system"], json!([{"text": "be brief"}]));
    let msgs = b["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[0]["content"][1],
        json!({"image": {"format": "jpeg", "source": {"bytes": "/9j/"}}})
    );
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(
        msgs[1]["content"][1],
        json!({"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Oslo"}}})
    );
    assert_eq!(
        msgs[2]["content"][0],
        json!({"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"temp": 4}}]}})
    );
    assert_eq!(msgs[2]["content"][1], json!({"text": "and tomorrow?"}));
    assert_eq!(
        b["inferenceConfig"],
        json!({"maxTokens": 200, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"]})
    );
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        json!({"type": "object"})
    );
    assert_eq!(b["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(b["additionalModelRequestFields"], json!({"top_k": 50}));
    assert!(
        b.get("unknown_member").is_none() && b.get("stream_options").is_none() && b.get("model").is_none()
    );
}

#[test]
fn what_converse_cannot_take_is_refused() {
    let base = |extra: Value| {
        let mut v = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        to_converse_request(&request(v))
    };
    assert!(base(json!({"response_format": {"type": "json_object"}}))
        .unwrap_err()
        .to_string()
        .contains("json_object"));
    assert!(base(json!({"n": 2})).is_err());
    assert!(base(json!({"n": 1})).is_ok());
    let http_image = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]});
    assert!(to_converse_request(&request(http_image))
        .unwrap_err()
        .to_string()
        .contains("s3://"));
    let tiff = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]});
    assert!(to_converse_request(&request(tiff)).is_err());
    let empty = json!({"model": "m", "messages": [{"role": "system", "content": "x"}]});
    assert!(to_converse_request(&request(empty)).is_err());
}

#[test]
fn answer_becomes_chat_completion() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_9", "name": "weather", "input": {"city": "Oslo"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 30},
        "metrics": {"latencyMs": 100}
    });
    let r = to_chat_response(body.to_string().as_bytes(), "chatcmpl-r1", "claude", 4).unwrap();
    assert_eq!(
        (r.id.as_str(), r.model.as_str(), r.created),
        ("chatcmpl-r1", "claude", 4)
    );
    let c = &r.choices[0];
    assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(c.message.reasoning.as_deref(), Some("hmm"));
    let call = &c.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.id, "tooluse_9");
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Oslo"})
    );
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.cached_tokens()),
        (40, 5, 30)
    );
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
    ] {
        let body =
            json!({"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop, "usage": {}});
        let r = to_chat_response(body.to_string().as_bytes(), "i", "m", 0).unwrap();
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some(finish));
    }
    assert!(to_chat_response(b"{}", "i", "m", 0).is_err());
}

#[test]
fn errors_become_openai_errors() {
    let read = |status, exc: Option<&str>, body: Value| {
        let (s, b) = error_to_openai(status, exc, body.to_string().as_bytes());
        (s, serde_json::from_slice::<Value>(&b).unwrap())
    };
    let (s, v) = read(
        400,
        Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        json!({"message": "Input is too long for requested model."}),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("context_length_exceeded"))
    );
    let (s, v) = read(
        429,
        None,
        json!({"message": "Too many requests, please wait before trying again."}),
    );
    assert_eq!((s, v["error"]["type"].as_str()), (429, Some("rate_limit_error")));
    let (s, v) = read(
        403,
        None,
        json!({"Message": "The security token included in the request is invalid."}),
    );
    assert_eq!((s, v["error"]["type"].as_str()), (403, Some("permission_error")));
    assert!(v["error"]["message"].as_str().unwrap().contains("security token"));
    let (s, _) = read(
        424,
        None,
        json!({"message": "model error", "__type": "ModelErrorException"}),
    );
    assert_eq!(s, 502);
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    encode(
        &[
            (":event-type", HeaderValue::String(kind.into())),
            (":content-type", HeaderValue::String("application/json".into())),
            (":message-type", HeaderValue::String("event".into())),
        ],
        payload.to_string().as_bytes(),
    )
}

fn converse_stream() -> Vec<u8> {
    [
        event("messageStart", json!({"role": "assistant", "p": "abcd"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Check"}, "p": "ab"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "ing."}})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_5", "name": "weather"}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Oslo\"}"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event("metadata", json!({"usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18}, "metrics": {"latencyMs": 50}})),
    ]
    .concat()
}

#[test]
fn converse_stream_becomes_openai_chunks() {
    let out = run(
        &mut BedrockToOpenAi::new("chatcmpl-q", "claude", 2, true),
        &[&converse_stream()],
    );
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let evs = data(&out);
    let chunks: Vec<&Value> = evs.iter().filter(|v| v.is_object()).collect();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == "chatcmpl-q" && c["model"] == "claude"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Checking.");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "tooluse_5");
    assert_eq!(calls[0]["function"]["name"], "weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Oslo"})
    );
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let last = chunks.last().unwrap();
    assert_eq!(
        (
            last["usage"]["prompt_tokens"].as_u64(),
            last["usage"]["completion_tokens"].as_u64()
        ),
        (Some(11), Some(7))
    );
}

#[test]
fn exceptions_corruption_and_early_ends_are_final_error_events() {
    let exception = encode(
        &[
            (
                ":exception-type",
                HeaderValue::String("throttlingException".into()),
            ),
            (":content-type", HeaderValue::String("application/json".into())),
            (":message-type", HeaderValue::String("exception".into())),
        ],
        br#"{"message":"Too many tokens, please wait"}"#,
    );
    let bytes = [event("messageStart", json!({"role": "assistant"})), exception].concat();
    let out = run(&mut BedrockToOpenAi::new("i", "m", 0, true), &[&bytes]);
    let last = data(&out).pop().unwrap();
    assert_eq!(last["error"]["message"], "Too many tokens, please wait");
    assert_eq!(last["error"]["code"], "rate_limit_exceeded");
    let mut corrupt = converse_stream();
    corrupt[30] ^= 0xff;
    let out = run(&mut BedrockToOpenAi::new("i", "m", 0, true), &[&corrupt]);
    let evs = data(&out);
    assert!(evs.last().unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("checksum"));
    assert_eq!(evs.iter().filter(|v| v.get("error").is_some()).count(), 1);
    let whole = converse_stream();
    let out = run(
        &mut BedrockToOpenAi::new("i", "m", 0, true),
        &[&whole[..whole.len() / 2]],
    );
    assert!(data(&out).pop().unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messageStop"));
}

proptest! {
    /// Feeding the binary stream split at arbitrary points gives byte-identical output.
    #[test]
    fn split_points_do_not_matter(cuts in proptest::collection::vec(0usize..3000, 0..12)) {
        let bytes = converse_stream();
        let whole = run(&mut BedrockToOpenAi::new("i", "m", 1, true), &[&bytes]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for c in cuts {
            pieces.push(&bytes[start..c]);
            start = c;
        }
        pieces.push(&bytes[start..]);
        prop_assert_eq!(run(&mut BedrockToOpenAi::new("i", "m", 1, true), &pieces), whole);
    }

    /// Any bytes at all: never a panic, and the output ends in [DONE] or an error event.
    #[test]
    fn any_input_ends_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let out = run(&mut BedrockToOpenAi::new("i", "m", 1, true), &[&bytes]);
        let text = String::from_utf8_lossy(&out);
        prop_assert!(text.ends_with("data: [DONE]\n\n") || text.contains("\"error\""));
    }
}
