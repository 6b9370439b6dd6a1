#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_wire::openai::{ChatCompletionRequest, ChatCompletionResponse};
use moat_wire::sse::{SseFrame, SseParser};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::StreamTranslator;

fn chat(v: Value) -> ChatCompletionRequest {
    serde_json::from_value(v).unwrap()
}

fn run(t: &mut dyn StreamTranslator, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        out.extend(t.feed(p));
    }
    out.extend(t.finish());
    out
}

/// The events of an SSE byte string: (event name, JSON data or the raw text).
fn events(bytes: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut p = SseParser::new();
    let mut frames = Vec::new();
    p.feed(bytes, &mut frames).unwrap();
    p.finish(&mut frames).unwrap();
    frames
        .into_iter()
        .filter_map(|f| match f {
            SseFrame::Event(e) => Some((
                e.event,
                serde_json::from_str(&e.data).unwrap_or(Value::String(e.data)),
            )),
            SseFrame::Comment(_) => None,
        })
        .collect()
}

#[test]
fn openai_request_becomes_messages_request() {
    let req = chat(json!({
        "model": "claude-x",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "really"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
            {"role": "user", "content": "and tomorrow?"}
        ],
        "max_completion_tokens": 77,
        "temperature": 1.5,
        "top_p": 0.9,
        "stop": "END",
        "stream": true,
        "n": 2,
        "seed": 4,
        "user": "u-1",
        "tools": [{"type": "function", "function": {"name": "weather", "description": "d", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": false,
        "x_extra": 1
    }));
    let m = serde_json::to_value(to_messages_request(&req).unwrap()).unwrap();
    assert_eq!(m["model"], "claude-x");
    assert_eq!(m["system"], "be brief\n\nreally");
    assert_eq!(m["max_tokens"], 77);
    assert_eq!(m["temperature"], 1.0);
    assert_eq!(m["stop_sequences"], json!(["END"]));
    assert_eq!(m["stream"], true);
    assert_eq!(m["metadata"], json!({"user_id": "u-1"}));
    assert_eq!(m["x_extra"], 1);
    assert!(m.get("n").is_none() && m.get("seed").is_none());
    assert_eq!(
        m["tool_choice"],
        json!({"type": "tool", "name": "weather", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        m["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
    let msgs = m["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert_eq!(msgs[0]["role"], "user");
    let blocks = msgs[0]["content"].as_array().unwrap();
    assert_eq!(blocks.len(), 3, "audio is dropped");
    assert_eq!(
        blocks[1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}})
    );
    assert_eq!(
        blocks[2]["source"],
        json!({"type": "url", "url": "https://example.com/a.png"})
    );
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}})
    );
    // The tool result and the next user text merge into one user turn, the result first.
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(
        msgs[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "call_1", "content": "rain"})
    );
    assert_eq!(
        msgs[2]["content"][1],
        json!({"type": "text", "text": "and tomorrow?"})
    );
}

#[test]
fn max_tokens_defaults_and_tool_choice_forms() {
    let base = |extra: Value| {
        let mut v = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::to_value(to_messages_request(&chat(v)).unwrap()).unwrap()
    };
    assert_eq!(base(json!({}))["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(base(json!({"max_tokens": 5}))["max_tokens"], 5);
    assert!(base(json!({})).get("tool_choice").is_none());
    assert_eq!(
        base(json!({"tool_choice": "required"}))["tool_choice"],
        json!({"type": "any"})
    );
    assert_eq!(
        base(json!({"tool_choice": "none"}))["tool_choice"],
        json!({"type": "none"})
    );
    assert_eq!(
        base(json!({"tool_choice": "auto"}))["tool_choice"],
        json!({"type": "auto"})
    );
    let err = to_messages_request(&chat(json!({"messages": []}))).unwrap_err();
    assert!(matches!(err, crate::TranslateError::InvalidRequest(_)));
    let bad_args = chat(
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
    );
    assert!(to_messages_request(&bad_args).is_err());
}

#[test]
fn messages_response_becomes_chat_completion() {
    let body = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5}
    });
    let r = to_chat_response(body.to_string().as_bytes(), 42).unwrap();
    assert_eq!(
        (r.id.as_str(), r.object.as_str(), r.created),
        ("msg_01", "chat.completion", 42)
    );
    let c = &r.choices[0];
    assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(c.message.reasoning.as_deref(), Some("hmm"));
    assert_eq!(
        c.message.content.as_ref().unwrap().texts().collect::<String>(),
        "Let me check."
    );
    let call = &c.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call.id.as_str(), call.function.name.as_str()),
        ("toolu_1", "weather")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Oslo"})
    );
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (115, 7, 122)
    );
    assert_eq!(u.cached_tokens(), 100);
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
    ] {
        assert_eq!(finish_reason(stop), finish);
    }
    assert!(to_chat_response(b"<html>", 1).is_err());
}

#[test]
fn anthropic_errors_become_openai_errors() {
    let (status, body) = error_to_openai(
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(status, 503);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["message"], "Overloaded");
    assert_eq!(v["error"]["code"], "overloaded");
    let (status, body) = error_to_openai(
        400,
        br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#,
    );
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let (status, body) = error_to_openai(502, b"bad gateway");
    assert_eq!(status, 502);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["message"],
        "provider answered 502"
    );
}

#[test]
fn anthropic_model_list_becomes_openai_list() {
    let body = json!({"data": [{"type": "model", "id": "claude-sonnet-4", "display_name": "Claude Sonnet 4", "created_at": "2025-02-19T00:00:00Z"}], "has_more": false, "first_id": "claude-sonnet-4", "last_id": "claude-sonnet-4"});
    let list = models_to_openai(body.to_string().as_bytes()).unwrap();
    assert_eq!(list.data[0].id, "claude-sonnet-4");
    assert_eq!(list.data[0].created, Some(1_739_923_200));
    assert_eq!(list.data[0].name.as_deref(), Some("Claude Sonnet 4"));
    assert!(models_to_openai(b"{}").is_err());
    let back = models_from_openai(&list);
    assert_eq!(back["data"][0], body["data"][0]);
    assert_eq!(
        (back["first_id"].clone(), back["has_more"].clone()),
        (json!("claude-sonnet-4"), json!(false))
    );
}

/// A documented Anthropic stream with text, a tool call, pings and cache usage.
#[test]
fn messages_request_becomes_openai_request() {
    let req: MessagesRequest = serde_json::from_value(json!({
        "model": "gpt-x",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "rain"}]},
                {"type": "text", "text": "thanks"}
            ]}
        ],
        "stop_sequences": ["X"],
        "stream": true,
        "temperature": 0.5,
        "tools": [{"name": "weather", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "metadata": {"user_id": "u"},
        "thinking": {"type": "enabled", "budget_tokens": 1000},
        "emulate": {"chunks": 2}
    }))
    .unwrap();
    let c = serde_json::to_value(to_chat_request(&req).unwrap()).unwrap();
    assert_eq!(c["model"], "gpt-x");
    assert_eq!(c["max_tokens"], 100);
    assert_eq!(c["stop"], json!(["X"]));
    assert_eq!(c["stream_options"]["include_usage"], true);
    assert_eq!(c["tool_choice"], "required");
    assert_eq!(c["parallel_tool_calls"], false);
    assert_eq!(c["user"], "u");
    assert_eq!(c["emulate"], json!({"chunks": 2}));
    assert!(c.get("thinking").is_none());
    assert_eq!(c["tools"][0]["function"]["parameters"], json!({"type": "object"}));
    let m = c["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        m[1]["content"][1]["image_url"]["url"],
        "data:image/jpeg;base64,AAAA"
    );
    assert_eq!(m[2]["content"], "checking");
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Oslo\"}"
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "content": "rain", "tool_call_id": "toolu_1"})
    );
    assert_eq!(m[4], json!({"role": "user", "content": "thanks"}));
    let no_max: MessagesRequest = serde_json::from_value(json!({"model": "m", "messages": []})).unwrap();
    assert_eq!(
        to_chat_request(&no_max).unwrap_err().to_string(),
        "max_tokens: Field required"
    );
}

#[test]
fn openai_response_becomes_messages_response() {
    let r: ChatCompletionResponse = serde_json::from_value(json!({
        "id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "ok",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    }))
    .unwrap();
    let m = serde_json::to_value(to_messages_response(&r, "alias")).unwrap();
    assert_eq!(m["type"], "message");
    assert_eq!(m["model"], "alias");
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(m["content"][0], json!({"type": "text", "text": "ok"}));
    assert_eq!(
        m["content"][1],
        json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}})
    );
    assert_eq!(m["usage"]["input_tokens"], 10);
    assert_eq!(m["usage"]["output_tokens"], 3);
    assert_eq!(m["stop_sequence"], Value::Null);
    assert_eq!(error_type_for_status(529), "overloaded_error");
    assert_eq!(
        serde_json::from_slice::<Value>(&error_body("not_found_error", "no")).unwrap(),
        json!({"type": "error", "error": {"type": "not_found_error", "message": "no"}})
    );
}

mod streams;
