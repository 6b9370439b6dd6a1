//! Chat streams → Responses events, including split-anywhere and any-input property tests.

use moat_wire::sse::{SseFrame, SseParser};
use proptest::prelude::*;

use super::*;
use crate::StreamTranslator;

fn chunk(delta: Value, finish: Value) -> String {
    let c = json!({"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "tiny",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn chat_stream() -> String {
    [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        ": keep-alive\n\n".to_owned(),
        chunk(json!({"reasoning": "thinking"}), Value::Null),
        chunk(json!({"content": "Hel"}), Value::Null),
        chunk(json!({"content": "lo"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": "{}"}}]}), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-x", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})
        ),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat()
}

fn translator() -> ChatToResponses {
    let r: ResponsesRequest = serde_json::from_value(json!({"model": "emu/tiny", "input": "x"})).unwrap();
    ChatToResponses::new(Envelope::new(&r, "resp_s1", 7))
}

fn run(t: &mut ChatToResponses, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        out.extend(t.feed(p));
    }
    out.extend(t.finish());
    out
}

/// (event name, data) of every event.
fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut p = SseParser::new();
    let mut frames = Vec::new();
    p.feed(bytes, &mut frames).unwrap();
    p.finish(&mut frames).unwrap();
    frames
        .into_iter()
        .filter_map(|f| match f {
            SseFrame::Event(e) => Some((
                e.event.unwrap_or_default(),
                serde_json::from_str(&e.data).unwrap(),
            )),
            SseFrame::Comment(_) => None,
        })
        .collect()
}

#[test]
fn a_chat_stream_becomes_the_documented_event_sequence() {
    let mut t = translator();
    let out = run(&mut t, &[chat_stream().as_bytes()]);
    let evs = events(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i as u64, "{name}");
        if let Some(r) = data.get("response") {
            assert_eq!(r["id"], "resp_s1", "one id throughout");
        }
    }
    assert_eq!(evs[0].1["response"]["status"], "in_progress");
    let done = &evs.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["usage"]["input_tokens"], 9);
    assert_eq!(done["usage"]["output_tokens"], 4);
    let output = done["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[1]["content"][0]["text"], "Hello");
    assert_eq!(output[2]["call_id"], "call_1");
    assert_eq!(output[2]["arguments"], "{\"city\":\"Oslo\"}");
    assert_eq!(output[3]["name"], "get_time");
    assert_eq!(t.final_response(), Some(done));
    // The final object equals what the whole-answer path would have built from the same answer.
    assert_eq!(evs[14].1["item"], output[1]);
    assert!(String::from_utf8(out).unwrap().contains(": keep-alive\n\n"));
}

#[test]
fn errors_and_early_ends_fail_the_response() {
    let mut t = translator();
    let broken = [
        chunk(json!({"content": "Hi"}), Value::Null),
        "data: {\"error\":{\"message\":\"upstream died\",\"type\":\"upstream_error\",\"code\":\"upstream_error\"}}\n\n".to_owned(),
    ]
    .concat();
    let evs = events(&run(&mut t, &[broken.as_bytes()]));
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[names.len() - 2..], ["error", "response.failed"]);
    let failed = &evs.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["message"], "upstream died");
    assert_eq!(failed["output"][0]["status"], "incomplete");

    let mut cut = translator();
    let evs = events(&run(
        &mut cut,
        &[chunk(json!({"content": "Hi"}), Value::Null).as_bytes()],
    ));
    assert_eq!(evs.last().unwrap().0, "response.failed");

    let mut long = translator();
    let evs = events(&run(
        &mut long,
        &[[
            chunk(json!({"content": "Hi"}), json!("length")),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat()
        .as_bytes()],
    ));
    let last = &evs.last().unwrap();
    assert_eq!(last.0, "response.incomplete");
    assert_eq!(
        last.1["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[test]
fn a_stream_that_never_stops_fails_at_the_output_bound() {
    let r: ResponsesRequest = serde_json::from_value(json!({"model": "m", "input": "x"})).unwrap();
    let mut t = ChatToResponses::with_max_output(Envelope::new(&r, "resp_b", 1), 10_000);
    let piece = chunk(json!({"content": "x".repeat(1000)}), Value::Null);
    let mut fed = 0;
    while t.final_response().is_none() {
        t.feed(piece.as_bytes());
        fed += piece.len();
        assert!(fed < 20_000, "never bounded");
    }
    // Whatever comes after is ignored, and nothing more is kept.
    assert!(t.feed(piece.as_bytes()).is_empty());
    let done = t.final_response().unwrap();
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["code"], "response_too_large");
}

fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for c in cuts {
        pieces.push(bytes[start..c].to_vec());
        start = c;
    }
    pieces.push(bytes[start..].to_vec());
    pieces
}

proptest! {
    #[test]
    fn a_chat_stream_split_anywhere_gives_the_same_events(cuts in proptest::collection::vec(0usize..5000, 0..12)) {
        let whole = run(&mut translator(), &[chat_stream().as_bytes()]);
        let pieces = cut(chat_stream().as_bytes(), &cuts);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(run(&mut translator(), &refs), whole);
    }

    #[test]
    fn streamed_text_arrives_whole(pieces in proptest::collection::vec("[^\u{0}]{0,12}", 1..6)) {
        let mut stream: String = pieces.iter().map(|p| chunk(json!({"content": p}), Value::Null)).collect();
        stream.push_str(&chunk(json!({}), json!("stop")));
        stream.push_str("data: [DONE]\n\n");
        let mut t = translator();
        let evs = events(&run(&mut t, &[stream.as_bytes()]));
        let deltas: String = evs
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
            .collect();
        prop_assert_eq!(&deltas, &pieces.concat());
        let text = t.final_response().unwrap()["output"][0]["content"][0]["text"].as_str().unwrap_or("").to_owned();
        prop_assert_eq!(text, pieces.concat());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_input_ends_with_exactly_one_terminal_event(bytes in proptest::collection::vec(any::<u8>(), 0..400), at in 0usize..400) {
        let pieces = cut(&bytes, &[at]);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let out = run(&mut translator(), &refs);
        let evs = events(&out);
        let terminal = evs
            .iter()
            .filter(|(n, _)| matches!(n.as_str(), "response.completed" | "response.incomplete" | "response.failed"))
            .count();
        prop_assert_eq!(terminal, 1);
        prop_assert_eq!(evs.first().map(|e| e.0.as_str()), Some("response.created"));
    }
}
