#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_wire::openai::ChatCompletionRequest;
use moat_wire::sse::{SseFrame, SseParser};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::StreamTranslator;

fn run(t: &mut dyn StreamTranslator, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        out.extend(t.feed(p));
    }
    out.extend(t.finish());
    out
}

fn data(bytes: &[u8]) -> Vec<String> {
    let mut p = SseParser::new();
    let mut frames = Vec::new();
    p.feed(bytes, &mut frames).unwrap();
    frames
        .into_iter()
        .filter_map(|f| match f {
            SseFrame::Event(e) => Some(e.data),
            SseFrame::Comment(_) => None,
        })
        .collect()
}

#[test]
fn chat_request_becomes_api_chat_body() {
    let req: ChatCompletionRequest = serde_json::from_value(json!({
        "model": "llama3.2",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}
            ]},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "rain"}
        ],
        "max_tokens": 50, "temperature": 0.2, "top_p": 0.8, "stop": "END", "seed": 7,
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"},
        "n": 3
    }))
    .unwrap();
    let b = to_chat_body(&req).unwrap();
    assert_eq!(b["model"], "llama3.2");
    assert_eq!(b["stream"], false, "always explicit: Ollama streams by default");
    assert_eq!(
        b["options"],
        json!({"temperature": 0.2, "top_p": 0.8, "num_predict": 50, "stop": ["END"], "seed": 7})
    );
    assert_eq!(b["format"], "json");
    assert!(b.get("n").is_none());
    assert_eq!(b["tools"][0]["function"]["name"], "weather");
    let m = b["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        m[1],
        json!({"role": "user", "content": "what is this", "images": ["iVBOR"]})
    );
    assert_eq!(
        m[2]["tool_calls"][0],
        json!({"function": {"name": "weather", "arguments": {"city": "Oslo"}}})
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "content": "rain", "tool_name": "weather"})
    );
    let streamed: ChatCompletionRequest =
        serde_json::from_value(json!({"model": "m", "stream": true, "messages": []})).unwrap();
    assert_eq!(to_chat_body(&streamed).unwrap()["stream"], true);
    assert!(to_chat_body(&ChatCompletionRequest::default()).is_err());
}

#[test]
fn final_object_becomes_chat_completion() {
    let body = json!({
        "model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z",
        "message": {"role": "assistant", "content": "Hello there"},
        "done": true, "done_reason": "length", "total_duration": 5191566416u64,
        "load_duration": 2154458, "prompt_eval_count": 26, "prompt_eval_duration": 383809000,
        "eval_count": 298, "eval_duration": 4799921000u64
    });
    let r = to_chat_response(body.to_string().as_bytes(), "chatcmpl-x", 1).unwrap();
    assert_eq!(r.id, "chatcmpl-x");
    assert_eq!(r.created, 1_691_176_965);
    assert_eq!(r.model, "llama3.2");
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("length"));
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (26, 298, 324)
    );
    let tools = json!({"model": "m", "message": {"role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}]},
        "done": true, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 2});
    let r = to_chat_response(tools.to_string().as_bytes(), "id", 1).unwrap();
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let call = &r.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.id, "call_0");
    assert_eq!(call.function.arguments, "{\"city\":\"Oslo\"}");
    assert!(r.choices[0].message.content.is_none());
}

fn ndjson() -> String {
    [
        json!({"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": "The"}, "done": false}),
        json!({"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": " sky"}, "done": false}),
        json!({"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}]}, "done": false}),
        json!({"model": "llama3.2", "created_at": "2024-01-01T00:00:01Z", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "total_duration": 10, "prompt_eval_count": 26, "eval_count": 3}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect()
}

#[test]
fn ndjson_stream_becomes_openai_chunks_with_usage() {
    let out = run(
        &mut OllamaToOpenAi::new("chatcmpl-o", 5, true),
        &[ndjson().as_bytes()],
    );
    let d = data(&out);
    assert_eq!(d.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = d[..d.len() - 1]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == "chatcmpl-o" && c["model"] == "llama3.2"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "The sky");
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .unwrap();
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Oslo\"}");
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        (usage["prompt_tokens"].clone(), usage["completion_tokens"].clone()),
        (json!(26), json!(3))
    );
    let no_usage = run(&mut OllamaToOpenAi::new("c", 5, false), &[ndjson().as_bytes()]);
    assert!(!String::from_utf8(no_usage).unwrap().contains("usage"));
}

#[test]
fn errors_and_cut_streams_end_with_an_error_event() {
    let out = run(
        &mut OllamaToOpenAi::new("c", 5, true),
        &[b"{\"error\":\"model 'x' not found\"}\n"],
    );
    let d = data(&out);
    let v: Value = serde_json::from_str(d.last().unwrap()).unwrap();
    assert_eq!(v["error"]["message"], "model 'x' not found");
    let first_line = ndjson().lines().next().unwrap().to_owned() + "\n";
    let out = run(&mut OllamaToOpenAi::new("c", 5, true), &[first_line.as_bytes()]);
    assert!(String::from_utf8(out).unwrap().contains("ended before"));
    let (status, body) = error_to_openai(404, br#"{"error":"model 'x' not found"}"#);
    assert_eq!(status, 404);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["message"], "model 'x' not found");
    assert_eq!(v["error"]["code"], "model_not_found");
}

#[test]
fn tags_become_model_list() {
    let body = json!({"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2024-05-01T12:00:00.5-07:00", "size": 1, "digest": "d", "details": {}}]});
    let l = tags_to_openai(body.to_string().as_bytes()).unwrap();
    assert_eq!(l.data[0].id, "llama3.2:latest");
    assert_eq!(l.data[0].owned_by.as_deref(), Some("ollama"));
    assert_eq!(l.data[0].created, Some(1_714_590_000));
    assert!(tags_to_openai(b"[]").is_err());
}

#[test]
fn rfc3339_times() {
    assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(unix_seconds("2000-02-29T12:34:56+01:00"), Some(951_824_096));
    assert_eq!(unix_seconds("2024-13-01T00:00:00Z"), None);
    assert_eq!(unix_seconds("yesterday"), None);
    assert_eq!(unix_seconds("2024-01-01T00:00:00Q"), None);
    for t in [0, 951_782_400, 1_739_923_200, 4_102_444_799] {
        assert_eq!(unix_seconds(&rfc3339(t)), Some(t), "{}", rfc3339(t));
    }
    assert_eq!(rfc3339(951_824_096), "2000-02-29T11:34:56Z");
}

proptest! {
    #[test]
    fn ndjson_split_anywhere_gives_the_same_output(cuts in proptest::collection::vec(0usize..2000, 0..10)) {
        let s = ndjson();
        let bytes = s.as_bytes();
        let whole = run(&mut OllamaToOpenAi::new("c", 1, true), &[bytes]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for c in cuts {
            pieces.push(&bytes[start..c]);
            start = c;
        }
        pieces.push(&bytes[start..]);
        prop_assert_eq!(run(&mut OllamaToOpenAi::new("c", 1, true), &pieces), whole);
    }
}

proptest! {
    /// Garbled NDJSON never panics and always ends with `[DONE]` or an error event.
    #[test]
    fn any_input_ends_properly(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let out = run(&mut OllamaToOpenAi::new("c", 1, true), &[&bytes]);
        let last = data(&out).pop().unwrap();
        prop_assert!(last == "[DONE]" || last.contains("\"error\""), "{}", last);
    }
}
