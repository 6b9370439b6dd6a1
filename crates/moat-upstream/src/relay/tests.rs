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

/// Where the relay's framing puts the last event end of `buf`, read in one piece.
fn last_event_end(buf: &[u8]) -> Option<usize> {
    EventBoundaries::new(usize::MAX).scan(buf).unwrap()
}

#[test]
fn event_ends_are_found_for_every_line_ending() {
    assert_eq!(last_event_end(b"data: a\n\ndata: b"), Some(9));
    assert_eq!(last_event_end(b"data: a\r\n\r\n"), Some(11));
    assert_eq!(last_event_end(b"data: a\r\r"), Some(9));
    assert_eq!(last_event_end(b"data: a\n"), None);
    assert_eq!(last_event_end(b"data: a\r\n\r\ndata: b\r\n"), Some(11));
    // A lone `\r` ends a line too, so the trailing `\r` is a third blank line (the relay releases it
    // now; a `\n` arriving next completes its `\r\n`).
    assert_eq!(last_event_end(b"\n\n\r"), Some(3));
    assert_eq!(last_event_end(b""), None);
}

#[tokio::test]
async fn a_transform_sees_whole_events_only() {
    let (_slot, report) = collector();
    let settings = UpstreamSettings::new("emu", "http://127.0.0.1:1/v1");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let transform: Transform = Box::new(move |b: Bytes| {
        log.lock().unwrap().push(String::from_utf8_lossy(&b).into_owned());
        Bytes::from(b.to_ascii_uppercase())
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

/// An endless provider stream of `piece`, counting how many pieces were taken from it.
fn endless(
    piece: &'static [u8],
    taken: Arc<Mutex<usize>>,
) -> impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin {
    futures_util::stream::repeat_with(move || {
        *taken.lock().unwrap() += 1;
        Ok(Bytes::from_static(piece))
    })
}

#[tokio::test]
async fn an_event_without_end_past_the_bound_ends_the_stream_and_the_reading() {
    let (slot, report) = collector();
    let mut settings = UpstreamSettings::new("emu", "http://127.0.0.1:1/v1");
    settings.max_event_bytes = 64 * 1024;
    let taken = Arc::new(Mutex::new(0));
    let body =
        chunks(&["data: {\"ok\":1}\n\n"]).chain(endless(b"data: xxxxxxxxxxxxxxxxxxxxxxxx\n", taken.clone()));
    let out: Vec<Bytes> = relay_byte_stream(body, &settings, None, report)
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(out[0], Bytes::from("data: {\"ok\":1}\n\n"));
    let last = String::from_utf8(out.last().unwrap().to_vec()).unwrap();
    assert!(
        last.starts_with("data: {\"error\":")
            && last.contains("upstream_event_too_large")
            && last.ends_with("\n\n"),
        "{last}"
    );
    assert_eq!(out.len(), 2, "nothing of the over-long event went out");
    // Reading stopped at the bound: about 64 KiB of 31-byte pieces, not the endless rest.
    let taken = *taken.lock().unwrap();
    assert!(taken <= 64 * 1024 / 31 + 2, "{taken} pieces read");
    let outcome = slot.lock().unwrap().clone().unwrap();
    assert!(!outcome.completed && !outcome.cancelled);
    assert!(outcome.error.unwrap().contains("longer than 65536 bytes"));
}

#[tokio::test]
async fn a_translator_stopping_on_its_bound_ends_the_relay_with_its_error() {
    let (slot, report) = collector();
    let settings = UpstreamSettings::new("ollama", "http://127.0.0.1:1");
    let taken = Arc::new(Mutex::new(0));
    // NDJSON that never ends its line.
    let body = endless(
        b"{\"message\":{\"content\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        taken.clone(),
    );
    let translator =
        Box::new(moat_translate::ollama::OllamaToOpenAi::new("id", 1, false).with_max_event(4096));
    let out: Vec<Bytes> = relay_framed(translated(body, translator), &settings, usize::MAX, None, report)
        .map(|r| r.unwrap())
        .collect()
        .await;
    let text: String = out
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        text.contains("upstream_event_too_large") && text.ends_with("\n\n"),
        "{text}"
    );
    assert!(*taken.lock().unwrap() <= 4096 / 50 + 2);
    let outcome = slot.lock().unwrap().clone().unwrap();
    assert!(!outcome.completed && !outcome.cancelled);
    assert!(outcome.error.unwrap().contains("longer than 4096 bytes"));
}

proptest! {
    /// The relay's framing agrees with the plain definition of SSE line ends (LF, CRLF or CR, mixed
    /// freely, as the parser reads them): an event ends after every empty line, and the relay
    /// releases up to the last one.
    #[test]
    fn last_event_end_is_the_last_blank_line(bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a')], 0..40)) {
        let (mut i, mut line_len, mut expected) = (0, 0, None);
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if b == b'\r' && bytes.get(i) == Some(&b'\n') {
                i += 1;
            }
            if b == b'\r' || b == b'\n' {
                if line_len == 0 {
                    expected = Some(i);
                }
                line_len = 0;
            } else {
                line_len += 1;
            }
        }
        prop_assert_eq!(last_event_end(&bytes), expected);
    }
}
