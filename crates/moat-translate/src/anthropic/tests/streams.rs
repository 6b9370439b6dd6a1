//! Stream translation both ways, including split-anywhere and any-input property tests.

use super::*;

fn anthropic_stream() -> String {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    [
        ev("message_start", json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 20, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 0, "output_tokens": 1}}})),
        ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ev("ping", json!({"type": "ping"})),
        ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking"}})),
        ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " now."}})),
        ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        ev("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {}}})),
        ev("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}})),
        ev("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}})),
        ev("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Oslo\"}"}})),
        ev("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 15}})),
        ev("message_stop", json!({"type": "message_stop"})),
    ]
    .concat()
}

#[test]
fn anthropic_stream_becomes_openai_chunks() {
    let out = run(
        &mut AnthropicToOpenAi::new(7, true),
        &[anthropic_stream().as_bytes()],
    );
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let evs = events(&out);
    let chunks: Vec<&Value> = evs.iter().map(|(_, v)| v).filter(|v| v.is_object()).collect();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == "msg_1" && c["model"] == "claude-x" && c["created"] == 7));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Checking now.");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "toolu_9");
    assert_eq!(calls[0]["function"]["name"], "weather");
    assert_eq!(calls[0]["index"], 0);
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
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 50);
    assert_eq!(usage["completion_tokens"], 15);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 30);
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert_eq!(
        text.matches(": ping\n\n").count(),
        1,
        "the ping is a keep-alive comment"
    );
    // The relay reads usage from this stream to settle budgets.
    let last_data = text.rsplit("data: ").nth(1).unwrap().trim();
    assert_eq!(
        moat_wire::usage::usage_from_chunk(last_data)
            .unwrap()
            .prompt_tokens,
        50
    );
}

#[test]
fn no_usage_chunk_unless_asked_and_errors_end_the_stream() {
    let out = run(
        &mut AnthropicToOpenAi::new(7, false),
        &[anthropic_stream().as_bytes()],
    );
    assert!(!String::from_utf8(out).unwrap().contains("\"usage\""));
    let err = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let out = run(&mut AnthropicToOpenAi::new(7, true), &[err.as_bytes()]);
    let evs = events(&out);
    let last = &evs.last().unwrap().1;
    assert_eq!(last["error"]["message"], "Overloaded");
    assert_eq!(last["error"]["code"], "overloaded_error");
    assert!(!String::from_utf8(out).unwrap().contains("[DONE]"));
    // A stream cut before message_stop ends with an error event, never silently.
    let cut = &anthropic_stream()[..300];
    let out = run(&mut AnthropicToOpenAi::new(7, true), &[cut.as_bytes()]);
    assert!(events(&out).last().unwrap().1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ended before"));
}

fn chunk(delta: Value, finish: Value) -> String {
    let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn openai_stream() -> String {
    [
        ": keep-alive\n\n".to_owned(),
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Let me"}), Value::Null),
        chunk(json!({"content": " look."}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}}]}), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        format!("data: {}\n\n", json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21, "prompt_tokens_details": {"cached_tokens": 2}}})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat()
}

#[test]
fn openai_stream_becomes_anthropic_events_in_documented_order() {
    let out = run(
        &mut OpenAiToAnthropic::new("claude-alias"),
        &[openai_stream().as_bytes()],
    );
    let evs = events(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // The keep-alive before the first chunk is dropped (nothing may precede message_start).
    // Every data payload's `type` matches its event name.
    assert!(evs.iter().all(|(n, v)| v["type"] == n.as_deref().unwrap()));
    let start = &evs[0].1["message"];
    assert_eq!(start["model"], "claude-alias");
    assert_eq!(start["id"], "msg_chatcmpl-1");
    assert_eq!(evs[1].1["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(evs[4].1["delta"], json!({"type": "text_delta", "text": " look."}));
    assert_eq!(
        evs[6].1["content_block"],
        json!({"type": "tool_use", "id": "call_a", "name": "weather", "input": {}})
    );
    assert_eq!(evs[6].1["index"], 1);
    let args: String = [&evs[7].1, &evs[8].1]
        .iter()
        .map(|e| e["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(args, "{\"city\":\"Oslo\"}");
    assert_eq!(evs[10].1["index"], 2);
    assert_eq!(evs[13].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(evs[13].1["usage"]["input_tokens"], 10);
    assert_eq!(evs[13].1["usage"]["cache_read_input_tokens"], 2);
    assert_eq!(evs[13].1["usage"]["output_tokens"], 9);
}

#[test]
fn keep_alives_after_message_start_become_pings() {
    let s = format!(
        "{}: OPENROUTER PROCESSING\n\n{}data: [DONE]\n\n",
        chunk(json!({"content": "a"}), Value::Null),
        chunk(json!({}), json!("stop"))
    );
    let evs = events(&run(&mut OpenAiToAnthropic::new("m"), &[s.as_bytes()]));
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "ping",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}

#[test]
fn openai_error_events_become_anthropic_error_events() {
    let s = format!(
        "{}data: {}\n\n",
        chunk(json!({"content": "partial"}), Value::Null),
        json!({"error": {"message": "upstream timed out (mid-stream)", "type": "upstream_error", "code": "upstream_timeout"}})
    );
    let evs = events(&run(&mut OpenAiToAnthropic::new("m"), &[s.as_bytes()]));
    let (name, last) = evs.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(last["error"]["message"], "upstream timed out (mid-stream)");
    assert_eq!(last["error"]["type"], "api_error");
    // An OpenRouter-style error chunk with a numeric code maps by status.
    let s = format!(
        "data: {}\n\n",
        json!({"id": "x", "choices": [], "error": {"message": "slow down", "code": 429}})
    );
    let evs = events(&run(&mut OpenAiToAnthropic::new("m"), &[s.as_bytes()]));
    assert_eq!(evs.last().unwrap().1["error"]["type"], "rate_limit_error");
    // A stream that stops without [DONE] or a finish reason ends with an error.
    let s = chunk(json!({"content": "partial"}), Value::Null);
    let evs = events(&run(&mut OpenAiToAnthropic::new("m"), &[s.as_bytes()]));
    assert_eq!(evs.last().unwrap().0.as_deref(), Some("error"));
}

fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(bytes[start..c].to_vec());
        start = c;
    }
    out.push(bytes[start..].to_vec());
    out
}

proptest! {
    #[test]
    fn anthropic_stream_split_anywhere_gives_the_same_output(cuts in proptest::collection::vec(0usize..5000, 0..12)) {
        let s = anthropic_stream();
        let whole = run(&mut AnthropicToOpenAi::new(1, true), &[s.as_bytes()]);
        let pieces = cut(s.as_bytes(), &cuts);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(run(&mut AnthropicToOpenAi::new(1, true), &refs), whole);
    }

    #[test]
    fn openai_stream_split_anywhere_gives_the_same_output(cuts in proptest::collection::vec(0usize..5000, 0..12)) {
        let s = openai_stream();
        let whole = run(&mut OpenAiToAnthropic::new("m"), &[s.as_bytes()]);
        let pieces = cut(s.as_bytes(), &cuts);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(run(&mut OpenAiToAnthropic::new("m"), &refs), whole);
    }

    /// Whatever text the model streams, the concatenated deltas on the other side are that text.
    #[test]
    fn text_survives_both_directions(pieces in proptest::collection::vec("[^\u{0}]{0,12}", 1..6)) {
        let mut s = String::new();
        for p in &pieces {
            s.push_str(&chunk(json!({"content": p}), Value::Null));
        }
        s.push_str(&chunk(json!({}), json!("stop")));
        s.push_str("data: [DONE]\n\n");
        let anthropic = run(&mut OpenAiToAnthropic::new("m"), &[s.as_bytes()]);
        let back = run(&mut AnthropicToOpenAi::new(1, false), &[&anthropic]);
        let text: String = events(&back)
            .iter()
            .filter_map(|(_, v)| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
            .collect();
        prop_assert_eq!(text, pieces.concat());
    }
}

proptest! {
    /// Hostile or garbled input never panics, and the client always gets a proper ending: `[DONE]`
    /// or an error event on the OpenAI side, `message_stop` or `error` on the Anthropic side.
    #[test]
    fn any_input_ends_properly(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400) {
        let cut = cut.min(bytes.len());
        let (a, b) = bytes.split_at(cut);
        let out = run(&mut AnthropicToOpenAi::new(1, true), &[a, b]);
        let text = String::from_utf8(out).unwrap();
        prop_assert!(text.ends_with("data: [DONE]\n\n") || text.contains("\"error\""), "{}", text);
        let out = run(&mut OpenAiToAnthropic::new("m"), &[a, b]);
        let last = events(&out).pop().map(|(n, _)| n);
        prop_assert!(matches!(last.flatten().as_deref(), Some("message_stop" | "error")));
    }
}
