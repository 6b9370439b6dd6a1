use std::sync::{Arc, Mutex};

use super::*;
use proptest::prelude::*;

fn chunks(parts: &[&str]) -> impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static {
    let owned: Vec<Result<Bytes, reqwest::Error>> =
        parts.iter().map(|p| Ok(Bytes::from(p.to_string()))).collect();
    futures_util::stream::iter(owned)
}

fn collector() -> (Arc<Mutex<Option<RelayOutcome>>>, Reporter) {
    let slot = Arc::new(Mutex::new(None));
    let s2 = slot.clone();
    (slot, Box::new(move |o| *s2.lock().unwrap() = Some(o)))
}

#[tokio::test]
async fn passes_bytes_through_and_reads_usage() {
    let usage = r#"data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8,"cost":0.25}}"#;
    let parts = [
        ": OPENROUTER PROCESSING\n\n",
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
        usage,
        "\n\n",
        "data: [DONE]\n\n",
    ];
    let (slot, report) = collector();
    let settings = UpstreamSettings::new("emu", "http://127.0.0.1:1/v1");
    let out: Vec<Bytes> = relay_byte_stream(chunks(&parts), &settings, None, report)
        .map(|r| r.unwrap())
        .collect()
        .await;
    let joined: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(String::from_utf8(joined).unwrap(), parts.concat());
    // The usage event arrived in two reads; it was released as one piece once complete.
    assert_eq!(out.len(), 4);
    let outcome = slot.lock().unwrap().clone().unwrap();
    assert!(outcome.completed && !outcome.cancelled);
    let u = outcome.usage.unwrap();
    assert_eq!(u.total_tokens, 8);
    assert_eq!(u.cost, Some(0.25));
    assert_eq!(outcome.bytes, parts.concat().len() as u64);
}

#[tokio::test]
async fn unterminated_tail_is_delivered_at_eof() {
    let parts = ["data: {\"a\":1}\n\n", "data: {\"b\":", "2}"];
    let (slot, report) = collector();
    let settings = UpstreamSettings::new("emu", "http://127.0.0.1:1/v1");
    let out: Vec<Bytes> = relay_byte_stream(chunks(&parts), &settings, None, report)
        .map(|r| r.unwrap())
        .collect()
        .await;
    let joined: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(joined, parts.concat().as_bytes());
    assert!(slot.lock().unwrap().as_ref().unwrap().completed);
}

#[tokio::test]
async fn dropping_the_relay_reports_cancellation() {
    let (slot, report) = collector();
    let settings = UpstreamSettings::new("emu", "http://127.0.0.1:1/v1");
    let body = chunks(&["data: 1\n\n"]).chain(futures_util::stream::pending());
    let mut relay = Box::pin(relay_byte_stream(body, &settings, None, report));
    assert_eq!(relay.next().await.unwrap().unwrap(), Bytes::from("data: 1\n\n"));
    drop(relay);
    let outcome = slot.lock().unwrap().clone().unwrap();
    assert!(outcome.cancelled && !outcome.completed);
}

#[tokio::test(start_paused = true)]
async fn silence_ends_the_stream_with_an_error_event() {
    let (slot, report) = collector();
    let mut settings = UpstreamSettings::new("emu", "http://127.0.0.1:1/v1");
    settings.timeouts.idle = Duration::from_secs(5);
    let body = chunks(&["data: 1\n\n", "data: partial"]).chain(futures_util::stream::pending());
    let out: Vec<Bytes> = relay_byte_stream(body, &settings, None, report)
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(out[0], Bytes::from("data: 1\n\n"));
    let last = String::from_utf8(out[1].to_vec()).unwrap();
    assert!(last.starts_with("data: {\"error\":"), "{last}");
    assert!(
        last.contains("upstream_timeout") && last.ends_with("\n\n"),
        "{last}"
    );
    assert!(!last.contains("partial"));
    let outcome = slot.lock().unwrap().clone().unwrap();
    assert!(!outcome.cancelled && outcome.error.is_some());
}

#[test]
fn event_ends_are_found_for_every_line_ending() {
    assert_eq!(last_event_end(b"data: a\n\ndata: b"), Some(9));
    assert_eq!(last_event_end(b"data: a\r\n\r\n"), Some(11));
    assert_eq!(last_event_end(b"data: a\r\r"), Some(9));
    assert_eq!(last_event_end(b"data: a\n"), None);
    assert_eq!(last_event_end(b"data: a\r\n\r\ndata: b\r\n"), Some(11));
    assert_eq!(last_event_end(b"\n\n\r"), Some(2));
    assert_eq!(last_event_end(b""), None);
}

#[tokio::test]
async fn a_transform_sees_whole_events_only() {
    let (_slot, report) = collector();
    let settings = UpstreamSettings::new("emu", "http://127.0.0.1:1/v1");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let transform: Transform = Box::new(move |b: &[u8]| {
        log.lock().unwrap().push(String::from_utf8_lossy(b).into_owned());
        b.to_ascii_uppercase()
    });
    let parts = ["data: a", "bc\n\nda", "ta: d\n\n"];
    let out: Vec<Bytes> = relay_byte_stream(chunks(&parts), &settings, Some(transform), report)
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["data: abc\n\n".to_string(), "data: d\n\n".to_string()]
    );
    assert_eq!(out.concat(), b"DATA: ABC\n\nDATA: D\n\n");
}

#[tokio::test]
async fn translated_streams_are_relayed_as_openai_with_their_usage_read() {
    let ev = |name: &str, data: &str| format!("event: {name}\ndata: {data}\n\n");
    let anthropic = [
        ev("message_start", r#"{"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":11,"output_tokens":1}}}"#),
        ev("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#),
        ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}"#),
        ev("message_stop", r#"{"type":"message_stop"}"#),
    ]
    .concat();
    // Split mid-event, so the translator and the relay both see partial input.
    let (a, b) = anthropic.split_at(70);
    let (slot, report) = collector();
    let settings = UpstreamSettings::new("claude", "http://127.0.0.1:1/v1");
    let translator = Box::new(moat_translate::anthropic::AnthropicToOpenAi::new(1, true));
    let out: Vec<Bytes> = relay_byte_stream(translated(chunks(&[a, b]), translator), &settings, None, report)
        .map(|r| r.unwrap())
        .collect()
        .await;
    let text: String = out
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(text.contains(r#""content":"Hello""#), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let outcome = slot.lock().unwrap().clone().unwrap();
    assert!(outcome.completed);
    let u = outcome.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (11, 4));
}

proptest! {
    /// The backward walk agrees with the plain definition: the largest end of any of the three
    /// blank-line forms.
    #[test]
    fn last_event_end_is_the_last_blank_line(bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a')], 0..40)) {
        let expected = (1..=bytes.len()).rev().find(|&p| {
            let s = &bytes[..p];
            s.ends_with(b"\n\n") || s.ends_with(b"\r\n\r\n") || s.ends_with(b"\r\r")
        });
        prop_assert_eq!(last_event_end(&bytes), expected);
    }
}
