//! Every stream translator holds at most one bounded input event (or line): past the bound it ends its
//! output with one error event in its own wire's shape, says so through `stopped`, and takes nothing
//! more.

use crate::anthropic::{AnthropicToOpenAi, OpenAiToAnthropic};
use crate::bedrock::BedrockToOpenAi;
use crate::gemini::GeminiToOpenAi;
use crate::ollama::OllamaToOpenAi;
use crate::responses::{ChatToResponses, Envelope, ResponsesRequest};
use crate::StreamTranslator;

const BOUND: usize = 256;

fn translators() -> Vec<(&'static str, Box<dyn StreamTranslator>, &'static [u8])> {
    vec![
        (
            "anthropic→openai",
            Box::new(AnthropicToOpenAi::new(1, true).with_max_event(BOUND)),
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"",
        ),
        (
            "openai→anthropic",
            Box::new(OpenAiToAnthropic::new("m").with_max_event(BOUND)),
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
        ),
        (
            "ollama→openai",
            Box::new(OllamaToOpenAi::new("id", 1, true).with_max_event(BOUND)),
            b"{\"message\":{\"content\":\"",
        ),
        (
            "gemini→openai",
            Box::new(GeminiToOpenAi::new("id", "m", 1, true).with_max_event(BOUND)),
            b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"",
        ),
        (
            "openai→responses",
            Box::new(
                ChatToResponses::new(Envelope::new(&ResponsesRequest::default(), "resp_1", 1))
                    .with_max_event(BOUND),
            ),
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
        ),
    ]
}

#[test]
fn a_bedrock_message_past_the_bound_is_refused_from_its_prelude() {
    let big = crate::eventstream::encode(
        &[(
            ":event-type",
            crate::eventstream::HeaderValue::String("contentBlockDelta".into()),
        )],
        &[b'x'; 4 * BOUND],
    );
    let mut t = BedrockToOpenAi::new("id", "m", 1, true).with_max_event(BOUND);
    // The prelude alone says how long the message is: nothing of it is buffered.
    let out = String::from_utf8(t.feed(&big[..12])).unwrap();
    assert!(
        out.contains("upstream_event_too_large") && out.ends_with("\n\n"),
        "{out}"
    );
    assert!(t.stopped().unwrap().is_err());
    assert!(t.feed(&big[12..]).is_empty() && t.finish().is_empty());
}

#[test]
fn an_input_event_past_the_bound_ends_the_output_with_one_error_event() {
    for (name, mut t, start) in translators() {
        let mut out = t.feed(start);
        assert!(t.stopped().is_none(), "{name}");
        // Fed a few bytes at a time, as a slow provider would.
        for _ in 0..BOUND {
            out.extend(t.feed(b"xxxx"));
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("longer than 256 bytes") && text.ends_with("\n\n"),
            "{name}: {text}"
        );
        let why = t.stopped().unwrap().unwrap_err();
        assert!(why.contains("longer than 256 bytes"), "{name}: {why}");
        assert!(
            t.feed(b"\n\n").is_empty() && t.finish().is_empty(),
            "{name}: nothing after the error"
        );
    }
}

#[test]
fn the_bound_is_per_event_not_per_stream() {
    let event = |i: usize| {
        format!(
            "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"chunk {i} of many\"}}}}]}}\n\n"
        )
    };
    let mut t = OpenAiToAnthropic::new("m").with_max_event(BOUND);
    let mut out = Vec::new();
    for i in 0..100 {
        out.extend(t.feed(event(i).as_bytes()));
    }
    out.extend(t.feed(b"data: [DONE]\n\n"));
    assert_eq!(t.stopped(), Some(Ok(())));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("chunk 99 of many") && !text.contains("\"error\""),
        "{text}"
    );
}
