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
fn chat_request_becomes_generate_content() {
    let req = request(json!({
        "model": "gemini-2.0-flash",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "use metric"},
            {"role": "user", "content": [
                {"type": "text", "text": "weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.webp?x=1"}}
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "fc-77", "type": "function", "function": {"name": "time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp\": 4}"},
            {"role": "tool", "tool_call_id": "fc-77", "content": "noon"},
            {"role": "user", "content": "thanks"}
        ],
        "max_tokens": 100, "temperature": 0.3, "top_p": 0.9, "top_k": 40, "stop": ["END"], "n": 2,
        "seed": 5, "presence_penalty": 0.1,
        "tools": [{"type": "function", "function": {"name": "weather", "description": "w",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        "some_unknown_member": 1,
        "user": "u1"
    }));
    let b = to_generate_request(&req).unwrap();
    assert_eq!(
        b["systemInstruction"],
        json!({"parts": [{"text": "be brief"}, {"text": "use metric"}]})
    );
    let contents = b["contents"].as_array().unwrap();
    assert_eq!(
        contents.len(),
        3,
        "tool results and the next user text share one user turn: {b}"
    );
    assert_eq!(contents[0]["role"], "user");
    assert_eq!(
        contents[0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBOR"}})
    );
    assert_eq!(
        contents[0]["parts"][2],
        json!({"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/a.webp?x=1"}})
    );
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(contents[1]["parts"][0], json!({"text": "Checking."}));
    assert_eq!(
        contents[1]["parts"][1],
        json!({"functionCall": {"name": "weather", "args": {"city": "Oslo"}}})
    );
    assert_eq!(
        contents[1]["parts"][2],
        json!({"functionCall": {"name": "time", "args": {}, "id": "fc-77"}})
    );
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"][0],
        json!({"functionResponse": {"name": "weather", "response": {"temp": 4}}})
    );
    assert_eq!(
        contents[2]["parts"][1],
        json!({"functionResponse": {"name": "time", "response": {"content": "noon"}, "id": "fc-77"}})
    );
    assert_eq!(contents[2]["parts"][2], json!({"text": "thanks"}));
    assert_eq!(
        b["generationConfig"],
        json!({"temperature": 0.3, "topP": 0.9, "topK": 40, "maxOutputTokens": 100, "stopSequences": ["END"],
               "candidateCount": 2, "seed": 5, "presencePenalty": 0.1,
               "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}})
    );
    assert_eq!(b["tools"][0]["functionDeclarations"][0]["name"], "weather");
    assert_eq!(
        b["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["additionalProperties"],
        false
    );
    assert_eq!(
        b["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
    );
    assert_eq!(b["safetySettings"][0]["threshold"], "BLOCK_NONE");
    assert!(
        b.get("some_unknown_member").is_none(),
        "Gemini refuses unknown members"
    );
    assert!(b.get("model").is_none(), "the model is in the path");
}

#[test]
fn requests_gemini_cannot_take_are_refused_clearly() {
    let no_turns = request(json!({"model": "g", "messages": [{"role": "system", "content": "x"}]}));
    assert!(to_generate_request(&no_turns)
        .unwrap_err()
        .to_string()
        .contains("at least one"));
    let audio = request(json!({"model": "g", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "..", "format": "wav"}}]}]}));
    assert!(to_generate_request(&audio)
        .unwrap_err()
        .to_string()
        .contains("input_audio"));
    let orphan = request(
        json!({"model": "g", "messages": [{"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
    );
    assert!(to_generate_request(&orphan)
        .unwrap_err()
        .to_string()
        .contains("nope"));
    let bad_args = request(
        json!({"model": "g", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
    );
    assert!(to_generate_request(&bad_args).is_err());
    for (choice, mode) in [("none", "NONE"), ("required", "ANY"), ("auto", "AUTO")] {
        let r = request(
            json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "tool_choice": choice}),
        );
        assert_eq!(
            to_generate_request(&r).unwrap()["toolConfig"]["functionCallingConfig"]["mode"],
            mode
        );
    }
}

fn answer() -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "thinking it over", "thought": true},
                {"text": "Let me check."},
                {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
            ]},
            "finishReason": "STOP", "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 7, "thoughtsTokenCount": 3,
                          "cachedContentTokenCount": 4, "totalTokenCount": 22},
        "modelVersion": "gemini-2.0-flash-001",
        "responseId": "abc"
    })
}

#[test]
fn answer_becomes_chat_completion() {
    let r = to_chat_response(
        answer().to_string().as_bytes(),
        "chatcmpl-r1",
        "gemini-2.0-flash",
        9,
    )
    .unwrap();
    assert_eq!(r.id, "chatcmpl-abc");
    assert_eq!(r.model, "gemini-2.0-flash-001");
    assert_eq!(r.created, 9);
    let c = &r.choices[0];
    assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        c.message.content.as_ref().unwrap().texts().collect::<String>(),
        "Let me check."
    );
    assert_eq!(c.message.reasoning.as_deref(), Some("thinking it over"));
    let call = &c.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call.id.as_str(), call.function.name.as_str()),
        ("call_0", "weather")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Oslo"})
    );
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (12, 10, 22)
    );
    assert_eq!(u.cached_tokens(), 4);
    assert_eq!(u.reasoning_tokens(), 3);
}

#[test]
fn finish_reasons_and_blocked_prompts() {
    let one = |reason: &str| {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        to_chat_response(body.to_string().as_bytes(), "i", "m", 0)
            .unwrap()
            .choices[0]
            .finish_reason
            .clone()
            .unwrap()
    };
    assert_eq!(one("MAX_TOKENS"), "length");
    assert_eq!(one("SAFETY"), "content_filter");
    assert_eq!(one("RECITATION"), "content_filter");
    assert_eq!(one("OTHER"), "stop");
    let blocked =
        json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}});
    let r = to_chat_response(blocked.to_string().as_bytes(), "i", "m", 0).unwrap();
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("content_filter"));
    assert_eq!(r.id, "i");
    assert_eq!(r.model, "m");
    assert!(to_chat_response(b"not json", "i", "m", 0).is_err());
}

#[test]
fn errors_become_openai_errors() {
    let body = json!({"error": {"code": 400, "message": "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}});
    let (status, out) = error_to_openai(400, body.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("input token count"));
    let body = json!([{"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}]);
    let (status, out) = error_to_openai(429, body.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (status, v["error"]["type"].as_str()),
        (429, Some("rate_limit_error"))
    );
    let (_, out) = error_to_openai(403, b"<html>nope</html>");
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "permission_error");
    assert_eq!(v["error"]["message"], "provider answered 403");
}

#[test]
fn model_list_keeps_generators_with_context() {
    let body = json!({"models": [
        {"name": "models/gemini-2.0-flash", "displayName": "Gemini 2.0 Flash", "inputTokenLimit": 1048576,
         "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}
    ]});
    let list = models_to_openai(body.to_string().as_bytes()).unwrap();
    assert_eq!(list.data.len(), 1);
    assert_eq!(list.data[0].id, "gemini-2.0-flash");
    assert_eq!(list.data[0].context_length, Some(1048576));
    assert_eq!(list.data[0].name.as_deref(), Some("Gemini 2.0 Flash"));
}

fn gemini_stream() -> String {
    let ev = |v: Value| format!("data: {v}\r\n\r\n");
    [
        ev(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
                  "usageMetadata": {"promptTokenCount": 9}, "modelVersion": "gemini-x", "responseId": "r9"})),
        ev(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hmm", "thought": true}, {"text": "lo"}]}, "index": 0}]})),
        ev(json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}]}, "index": 0}]})),
        ev(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
                  "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 6, "totalTokenCount": 15}})),
    ]
    .concat()
}

#[test]
fn stream_becomes_openai_chunks() {
    let out = run(
        &mut GeminiToOpenAi::new("chatcmpl-x", "asked", 3, true),
        &[gemini_stream().as_bytes()],
    );
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let evs = data(&out);
    let chunks: Vec<&Value> = evs.iter().filter(|v| v.is_object()).collect();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == "chatcmpl-r9" && c["model"] == "gemini-x" && c["created"] == 3));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello");
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, "hmm");
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .unwrap();
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(call["id"], "call_0");
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 9);
    assert_eq!(last["usage"]["completion_tokens"], 6);
    let last_data = text.rsplit("data: ").nth(1).unwrap().trim();
    assert_eq!(
        moat_wire::usage::usage_from_chunk(last_data)
            .unwrap()
            .completion_tokens,
        6
    );
}

#[test]
fn stream_errors_and_early_ends_are_final_error_events() {
    let err = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\ndata: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\n\n";
    let out = run(&mut GeminiToOpenAi::new("i", "m", 0, true), &[err.as_bytes()]);
    let last = data(&out).pop().unwrap();
    assert_eq!(last["error"]["message"], "overloaded");
    assert!(!String::from_utf8(out).unwrap().contains("[DONE]"));
    let cut = gemini_stream();
    let cut = &cut[..cut.len() / 2];
    let out = run(&mut GeminiToOpenAi::new("i", "m", 0, true), &[cut.as_bytes()]);
    let last = data(&out).pop().unwrap();
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("finishReason"));
    // No usage chunk unless asked for.
    let out = run(
        &mut GeminiToOpenAi::new("i", "m", 0, false),
        &[gemini_stream().as_bytes()],
    );
    assert!(!String::from_utf8(out).unwrap().contains("\"usage\""));
    // A blocked prompt: a content_filter finish, then [DONE].
    let blocked = "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}\n\n";
    let out = run(
        &mut GeminiToOpenAi::new("i", "m", 0, false),
        &[blocked.as_bytes()],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\"finish_reason\":\"content_filter\"") && text.ends_with("[DONE]\n\n"));
}

proptest! {
    /// Feeding the stream split at arbitrary points gives byte-identical output.
    #[test]
    fn split_points_do_not_matter(cuts in proptest::collection::vec(0usize..2000, 0..10)) {
        let s = gemini_stream();
        let bytes = s.as_bytes();
        let whole = run(&mut GeminiToOpenAi::new("i", "m", 1, true), &[bytes]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for c in cuts {
            pieces.push(&bytes[start..c]);
            start = c;
        }
        pieces.push(&bytes[start..]);
        prop_assert_eq!(run(&mut GeminiToOpenAi::new("i", "m", 1, true), &pieces), whole);
    }

    /// Any bytes at all: never a panic, and the output always ends in [DONE] or an error event.
    #[test]
    fn any_input_ends_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let out = run(&mut GeminiToOpenAi::new("i", "m", 1, true), &[&bytes]);
        let text = String::from_utf8_lossy(&out);
        prop_assert!(text.ends_with("data: [DONE]\n\n") || text.contains("\"error\""));
    }
}
