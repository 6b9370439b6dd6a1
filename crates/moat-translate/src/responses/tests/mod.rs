//! Requests and whole answers through the Responses bridge; streams are in `streams`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_wire::openai::ChatCompletionResponse;
use serde_json::{json, Value};

use super::*;

mod streams;

fn req(v: Value) -> ResponsesRequest {
    serde_json::from_value(v).unwrap()
}

fn bridge(v: Value, history: &[Value]) -> Result<Bridged, crate::TranslateError> {
    to_chat_request(&req(v), history, &mut ItemIds::new("resp_t1"))
}

fn chat_json(b: &Bridged) -> Value {
    serde_json::to_value(&b.chat).unwrap()
}

#[test]
fn a_string_input_with_instructions_becomes_system_and_user_messages() {
    let b = bridge(
        json!({"model": "emu/tiny", "instructions": "Be brief.", "input": "hello", "max_output_tokens": 50,
               "temperature": 0.2, "reasoning": {"effort": "low"}, "store": false, "metadata": {"a": "b"}}),
        &[],
    )
    .unwrap();
    let chat = chat_json(&b);
    assert_eq!(
        chat["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}])
    );
    assert_eq!(chat["model"], "emu/tiny");
    assert_eq!(chat["max_tokens"], 50);
    assert_eq!(chat["reasoning_effort"], "low");
    assert_eq!(chat["temperature"], 0.2);
    assert!(
        chat.get("metadata").is_none() && chat.get("store").is_none(),
        "{chat}"
    );
    let passed = bridge(
        json!({"model": "m", "input": "x", "truncation": "auto", "include": [], "safety_identifier": "u", "min_p": 0.1}),
        &[],
    )
    .unwrap();
    let passed = chat_json(&passed);
    assert_eq!(passed["min_p"], 0.1, "unknown members pass through: {passed}");
    for member in ["truncation", "include", "safety_identifier", "input"] {
        assert!(passed.get(member).is_none(), "{member}: {passed}");
    }
    // The stored input is the item list, with an id, in OpenAI's listing shape.
    assert_eq!(b.input_items.len(), 1);
    assert_eq!(b.input_items[0]["type"], "message");
    assert_eq!(b.input_items[0]["id"], "msg_t1_0");
    assert_eq!(
        b.input_items[0]["content"],
        json!([{"type": "input_text", "text": "hello"}])
    );
}

#[test]
fn function_calls_and_outputs_become_tool_calls_and_tool_messages() {
    let b = bridge(
        json!({"model": "m", "input": [
            {"role": "user", "content": "weather in Oslo?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "rainy"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "noon"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "d", "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": false}),
        &[],
    )
    .unwrap();
    let chat = chat_json(&b);
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(m.len(), 4, "{chat}");
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(m[1]["tool_calls"][1]["function"]["name"], "get_time");
    assert_eq!(
        m[2],
        json!({"role": "tool", "content": "rainy", "tool_call_id": "call_1"})
    );
    assert_eq!(m[3]["content"], "noon");
    assert_eq!(
        chat["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(b.input_items.len(), 6);
}

#[test]
fn history_is_replayed_first_and_item_references_resolve_against_it() {
    let history = vec![
        json!({"type": "message", "id": "msg_a", "role": "user", "content": [{"type": "input_text", "text": "first"}]}),
        json!({"type": "function_call", "id": "fc_a", "call_id": "call_9", "name": "f", "arguments": "{}", "status": "completed"}),
    ];
    let b = bridge(
        json!({"model": "m", "input": [
            {"type": "item_reference", "id": "fc_a"},
            {"type": "function_call_output", "call_id": "call_9", "output": "42"}
        ]}),
        &history,
    )
    .unwrap();
    let chat = chat_json(&b);
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(m[0]["content"], "first");
    assert_eq!(m[1]["tool_calls"][0]["id"], "call_9");
    // The referenced call is in the replayed conversation already: it is not repeated.
    assert_eq!(m[1]["tool_calls"].as_array().unwrap().len(), 1);
    assert_eq!(m[2]["role"], "tool");
    assert_eq!(b.input_items.len(), 3);
    assert_eq!(b.input_items[0]["id"], "msg_a");
    let unknown = bridge(
        json!({"model": "m", "input": [{"type": "item_reference", "id": "nope"}]}),
        &history,
    );
    assert!(unknown.unwrap_err().to_string().contains("item_reference `nope`"));
}

#[test]
fn text_format_json_schema_becomes_response_format() {
    let b = bridge(
        json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "pt", "schema": {"type": "object"}, "strict": true}}}),
        &[],
    )
    .unwrap();
    assert_eq!(
        chat_json(&b)["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "pt", "schema": {"type": "object"}, "strict": true}})
    );
    let plain = bridge(
        json!({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}),
        &[],
    )
    .unwrap();
    assert!(chat_json(&plain).get("response_format").is_none());
}

#[test]
fn what_has_no_chat_form_is_refused_by_name() {
    let cases = [
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
            "web_search",
        ),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
        ),
        (
            json!({"model": "m", "input": "x", "conversation": "conv_1"}),
            "conversation",
        ),
        (
            json!({"model": "m", "input": [{"type": "computer_call_output", "call_id": "c"}]}),
            "computer_call_output",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
            "file_id",
        ),
        (json!({"model": "m"}), "input"),
        (
            json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
            "role `tool`",
        ),
    ];
    for (body, word) in cases {
        let err = bridge(body.clone(), &[]).unwrap_err().to_string();
        assert!(err.contains(word), "{body}: {err}");
    }
}

#[test]
fn images_and_files_become_chat_parts() {
    let b = bridge(
        json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,aGk="}
        ]}]}),
        &[],
    )
    .unwrap();
    let parts = chat_json(&b)["messages"][0]["content"].clone();
    assert_eq!(parts[0], json!({"type": "text", "text": "what is this?"}));
    assert_eq!(
        parts[1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}})
    );
    assert_eq!(parts[2]["file"]["filename"], "a.txt");
}

fn answer(v: Value) -> ChatCompletionResponse {
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_whole_answer_becomes_a_response_object_with_the_envelope_id() {
    let r = req(json!({"model": "emu/tiny", "input": "hi", "instructions": "x", "tools": [], "store": true}));
    let env = Envelope::new(&r, "resp_abc", 1_700_000_000);
    let out = to_response(
        &answer(
            json!({"id": "chatcmpl-9", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hello!"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                      "prompt_tokens_details": {"cached_tokens": 1}}}),
        ),
        &env,
    );
    assert_eq!(out["id"], "resp_abc");
    assert_eq!(out["object"], "response");
    assert_eq!(out["status"], "completed");
    assert_eq!(out["model"], "emu/tiny");
    assert_eq!(out["instructions"], "x");
    assert_eq!(out["output"][0]["type"], "message");
    assert_eq!(out["output"][0]["id"], "msg_abc_0");
    assert_eq!(out["output"][0]["content"][0]["text"], "Hello!");
    assert_eq!(out["usage"]["input_tokens"], 5);
    assert_eq!(out["usage"]["output_tokens"], 2);
    assert_eq!(out["usage"]["total_tokens"], 7);
    assert_eq!(out["usage"]["input_tokens_details"]["cached_tokens"], 1);
}

#[test]
fn tool_calls_become_function_call_items_and_length_is_incomplete() {
    let env = Envelope::new(&req(json!({"model": "m", "input": "x"})), "resp_q", 1);
    let out = to_response(
        &answer(
            json!({"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_7", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                           {"id": "", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}}]}),
        ),
        &env,
    );
    let items = out["output"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "a turn that only calls tools has no message item: {out}"
    );
    assert_eq!(
        items[0],
        json!({"type": "function_call", "id": "fc_q_0", "call_id": "call_7", "name": "f", "arguments": "{\"a\":1}", "status": "completed"})
    );
    assert_eq!(items[1]["call_id"], "call_fc_q_1", "a missing call id is made up");
    let cut = to_response(
        &answer(
            json!({"choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": "abc", "reasoning": "hmm"}}]}),
        ),
        &env,
    );
    assert_eq!(cut["status"], "incomplete");
    assert_eq!(cut["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(cut["output"][0]["type"], "reasoning");
    assert_eq!(cut["output"][0]["content"][0]["text"], "hmm");
    assert_eq!(cut["output"][1]["status"], "incomplete");
}

#[test]
fn inlined_history_gives_the_same_chat_request_as_replaying_it() {
    let history = vec![
        json!({"type": "message", "id": "msg_a", "role": "user", "content": [{"type": "input_text", "text": "first"}]}),
        json!({"type": "function_call", "id": "fc_a", "call_id": "call_9", "name": "f", "arguments": "{}"}),
    ];
    let body = json!({"model": "m", "previous_response_id": "resp_x", "input": [
        {"type": "item_reference", "id": "fc_a"},
        {"type": "function_call_output", "call_id": "call_9", "output": "42"}
    ]});
    let replayed = bridge(body.clone(), &history).unwrap();
    let mut inlined = req(body);
    inline_history(&mut inlined, history, &mut ItemIds::new("resp_t1")).unwrap();
    let from_inlined = to_chat_request(&inlined, &[], &mut ItemIds::new("resp_t2")).unwrap();
    assert_eq!(from_inlined, replayed);
    let mut unknown = req(json!({"model": "m", "input": [{"type": "item_reference", "id": "nope"}]}));
    assert!(inline_history(&mut unknown, Vec::new(), &mut ItemIds::new("r")).is_err());
}
