//! Usage extraction tests, including agreement with a full parse of the chunk.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::openai::proptests::{chat_chunk, usage as usage_json};
use crate::openai::ChatCompletionChunk;

#[test]
fn chunk_without_usage_gives_none() {
    let data = r#"{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
    assert_eq!(usage_from_chunk(data), None);
    // The key appears, but as text inside content, not as a member.
    let data = r#"{"choices":[{"index":0,"delta":{"content":"\"usage\""}}]}"#;
    assert_eq!(usage_from_chunk(data), None);
    // A `usage` member that is not the chunk's own.
    let data = r#"{"choices":[{"index":0,"delta":{"usage":{"prompt_tokens":1}}}]}"#;
    assert_eq!(usage_from_chunk(data), None);
}

#[test]
fn null_usage_gives_none() {
    let data = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":null}"#;
    assert_eq!(usage_from_chunk(data), None);
}

#[test]
fn final_openrouter_chunk_gives_usage_with_cost() {
    let data = r#"{"id":"gen-1744","provider":"Google","model":"google/gemini-2.5-flash","object":"chat.completion.chunk","created":1744,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":12,"completion_tokens":301,"total_tokens":313,"cost":0.0007561,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":null},"completion_tokens_details":{"reasoning_tokens":0}}}"#;
    let usage = usage_from_chunk(data).unwrap();
    assert_eq!(usage.total_tokens, 313);
    assert_eq!(usage.cost, Some(0.0007561));
    assert_eq!(usage.cost_details.unwrap().upstream_inference_cost, None);
    assert_eq!(usage.extra["is_byok"], false);
}

#[test]
fn non_json_payloads_give_none() {
    assert_eq!(usage_from_chunk("[DONE]"), None);
    assert_eq!(usage_from_chunk(""), None);
    assert_eq!(usage_from_chunk(r#"{"usage": {"prompt_tokens": 1"#), None);
    assert_eq!(usage_from_chunk(r#"{"usage": "lots"}"#), None);
    assert_eq!(usage_from_chunk(r#"["usage"]"#), None);
}

#[test]
fn response_bodies() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6,"prompt_tokens_details":{"cached_tokens":4}}}"#;
    let usage = usage_from_response(body).unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens()
        ),
        (5, 1, 4)
    );

    let body = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"e","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    assert_eq!(
        usage_from_response(body),
        Some(Usage {
            prompt_tokens: 8,
            total_tokens: 8,
            ..Usage::default()
        })
    );
    assert_eq!(usage_from_response(b"not json \"usage\""), None);
}

proptest! {
    /// The shortcut must agree with parsing the whole chunk.
    #[test]
    fn agrees_with_full_parse(mut chunk in chat_chunk(), usage in proptest::option::of(usage_json()), null in any::<bool>()) {
        let map = chunk.as_object_mut().unwrap();
        match (usage, null) {
            (Some(usage), _) => { map.insert("usage".to_owned(), usage); }
            (None, true) => { map.insert("usage".to_owned(), Value::Null); }
            (None, false) => { map.remove("usage"); }
        }
        let text = chunk.to_string();
        let full: ChatCompletionChunk = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(usage_from_chunk(&text), full.usage.clone());
        prop_assert_eq!(usage_from_response(text.as_bytes()), full.usage);
    }
}

#[test]
fn usage_reexport_is_the_openai_type() {
    let usage: Usage = serde_json::from_value(json!({"prompt_tokens": 1})).unwrap();
    let _same: crate::openai::Usage = usage;
}

#[test]
fn responses_api_usage_is_read_whole_and_from_the_terminal_stream_event() {
    let whole = br#"{"id":"resp_1","object":"response","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":19}}"#;
    let u = usage_from_response(whole).unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (12, 7, 19)
    );
    assert_eq!((u.cached_tokens(), u.reasoning_tokens()), (4, 2));
    let event = r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","usage":{"input_tokens":3,"output_tokens":5,"total_tokens":8}}}"#;
    let u = usage_from_chunk(event).unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 5));
    assert_eq!(
        usage_from_chunk(r#"{"type":"response.created","response":{"id":"r","usage":null}}"#),
        None
    );
}
