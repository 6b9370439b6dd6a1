//! SSE parser tests: spec line rules, chunk boundaries, limits, and a split-anywhere property.

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

fn parse_whole(bytes: &[u8]) -> Vec<SseFrame> {
    parse_pieces(bytes, &[])
}

/// Feeds `bytes` cut at `cuts` (sorted offsets), then finishes.
fn parse_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<SseFrame> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        parser.feed(&bytes[start..cut], &mut out).unwrap();
        start = cut;
    }
    parser.finish(&mut out).unwrap();
    out
}

fn parse_bytewise(bytes: &[u8]) -> Vec<SseFrame> {
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    parse_pieces(bytes, &cuts)
}

fn event(data: &str) -> SseFrame {
    SseFrame::Event(SseEvent::data(data))
}

fn comment(text: &str) -> SseFrame {
    SseFrame::Comment(text.to_owned())
}

#[test]
fn openrouter_keepalive_comment() {
    let stream = b": OPENROUTER PROCESSING\n\ndata: {\"choices\":[]}\n\n: OPENROUTER PROCESSING\n\n";
    let expected = vec![
        comment("OPENROUTER PROCESSING"),
        event("{\"choices\":[]}"),
        comment("OPENROUTER PROCESSING"),
    ];
    assert_eq!(parse_whole(stream), expected);
    assert_eq!(parse_bytewise(stream), expected);
}

#[test]
fn done_sentinel() {
    let frames = parse_whole(b"data: {}\n\ndata: [DONE]\n\n");
    let SseFrame::Event(done) = &frames[1] else {
        panic!("not an event: {frames:?}")
    };
    assert!(done.is_done());
    let SseFrame::Event(other) = &frames[0] else {
        panic!("not an event: {frames:?}")
    };
    assert!(!other.is_done());
    assert!(!SseEvent::data("[DONE] ").is_done());
    assert_eq!(parse_whole(DONE.as_bytes()), vec![event("[DONE]")]);
}

#[test]
fn field_without_colon() {
    // A bare `data` is a data line with an empty value.
    assert_eq!(parse_whole(b"data\n\n"), vec![event("")]);
    assert_eq!(parse_whole(b"data\ndata\n\n"), vec![event("\n")]);
    // A bare `event` resets the name; unknown bare fields are ignored.
    assert_eq!(
        parse_whole(b"event: a\nevent\nfoo\ndata: x\n\n"),
        vec![event("x")]
    );
}

#[test]
fn one_leading_space_is_stripped() {
    assert_eq!(parse_whole(b"data:x\n\n"), vec![event("x")]);
    assert_eq!(parse_whole(b"data:  x \n\n"), vec![event(" x ")]);
    assert_eq!(parse_whole(b":c\n:  c\n"), vec![comment("c"), comment(" c")]);
    assert_eq!(parse_whole(b"data: a:b: c\n\n"), vec![event("a:b: c")]);
}

#[test]
fn named_event_with_id_and_retry() {
    let frames = parse_whole(b"event: message_start\nid: 7\nretry: 3000\ndata: {}\n\n");
    let expected = SseEvent {
        event: Some("message_start".to_owned()),
        data: "{}".to_owned(),
        id: Some("7".to_owned()),
        retry: Some(3000),
    };
    assert_eq!(frames, vec![SseFrame::Event(expected)]);
}

#[test]
fn bad_retry_and_nul_id_are_ignored() {
    let frames = parse_whole(b"retry: 30a\nretry: 99999999999999999999999\nretry:\nid: a\0b\ndata: x\n\n");
    assert_eq!(frames, vec![event("x")]);
}

#[test]
fn events_without_data_are_not_dispatched() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser
        .feed(b"event: ping\n\nid: 5\n\nretry: 10\n\n\n\n", &mut out)
        .unwrap();
    parser.finish(&mut out).unwrap();
    assert_eq!(out, vec![]);
    assert_eq!(parser.last_event_id(), Some("5"));
}

#[test]
fn last_event_id_persists_but_event_id_does_not() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser.feed(b"id: 1\ndata: a\n\ndata: b\n\n", &mut out).unwrap();
    let SseFrame::Event(second) = &out[1] else {
        panic!("not an event")
    };
    assert_eq!(second.id, None);
    assert_eq!(parser.last_event_id(), Some("1"));
}

#[test]
fn byte_order_mark() {
    let stream = "\u{FEFF}data: x\n\n".as_bytes();
    assert_eq!(parse_whole(stream), vec![event("x")]);
    assert_eq!(parse_bytewise(stream), vec![event("x")]);
    // Only at the very start: a second one is part of the field name, which is then unknown.
    assert_eq!(parse_whole("\u{FEFF}\u{FEFF}data: x\n\n".as_bytes()), vec![]);
    assert_eq!(
        parse_whole("data: x\n\n\u{FEFF}data: y\n\n".as_bytes()),
        vec![event("x")]
    );
    // A BOM before a blank line or a comment.
    assert_eq!(parse_whole("\u{FEFF}: hi\n".as_bytes()), vec![comment("hi")]);
}

#[test]
fn crlf_split_across_chunks_is_one_line_end() {
    // Were the `\n` taken as a second line end, the blank line would dispatch "a" alone.
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser.feed(b"data: a\r", &mut out).unwrap();
    parser.feed(b"", &mut out).unwrap();
    parser.feed(b"\ndata: b\r", &mut out).unwrap();
    parser.feed(b"\n", &mut out).unwrap();
    assert_eq!(out, vec![]);
    parser.feed(b"\r", &mut out).unwrap();
    assert_eq!(out, vec![event("a\nb")]);
    // The `\n` completing that blank line's `\r\n` is not another blank line (harmless here anyway).
    parser.feed(b"\ndata: c\n\n", &mut out).unwrap();
    assert_eq!(out, vec![event("a\nb"), event("c")]);
}

#[test]
fn lone_cr_line_ends() {
    assert_eq!(
        parse_whole(b"data: a\rdata: b\r\rdata: c\r\r"),
        vec![event("a\nb"), event("c")]
    );
    assert_eq!(
        parse_whole(b"data: a\r\n\rdata: b\n\r\n"),
        vec![event("a"), event("b")]
    );
}

#[test]
fn multibyte_characters_split_across_chunks() {
    let stream = "data: é€😀\n: ü\n\n".as_bytes();
    let expected = vec![comment("ü"), event("é€😀")];
    assert_eq!(parse_bytewise(stream), expected);
    for cut in 0..stream.len() {
        assert_eq!(parse_pieces(stream, &[cut]), expected, "cut at {cut}");
    }
}

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(
        parse_whole(b"data: \xff\xfe ok\n\n"),
        vec![event("\u{FFFD}\u{FFFD} ok")]
    );
    // A truncated character at the end of a line is invalid, not carried into the next line.
    assert_eq!(
        parse_whole(b"data: \xe2\x82\ndata: x\n\n"),
        vec![event("\u{FFFD}\nx")]
    );
}

#[test]
fn unterminated_event_is_dispatched_at_eof() {
    assert_eq!(parse_whole(b"data: partial"), vec![event("partial")]);
    assert_eq!(parse_whole(b"data: a\ndata: b\n"), vec![event("a\nb")]);
    assert_eq!(parse_whole(b"data: a\r"), vec![event("a")]);
    assert_eq!(
        parse_whole(b": trailing comment"),
        vec![comment("trailing comment")]
    );
    assert_eq!(parse_whole(b"event: x\nid: 3\n"), vec![]);
    assert_eq!(parse_whole(b""), vec![]);
}

#[test]
fn finish_readies_the_parser_for_a_new_stream() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser.feed(b"id: 9\ndata: a", &mut out).unwrap();
    parser.finish(&mut out).unwrap();
    parser.feed("\u{FEFF}data: b\n\n".as_bytes(), &mut out).unwrap();
    let a = SseEvent {
        data: "a".to_owned(),
        id: Some("9".to_owned()),
        ..SseEvent::default()
    };
    assert_eq!(out, vec![SseFrame::Event(a), event("b")]);
    assert_eq!(parser.last_event_id(), Some("9"));
}

#[test]
fn over_long_line_is_an_error() {
    let limit = 8;
    // Exactly at the limit is fine.
    let mut parser = SseParser::with_max_line(limit);
    let mut out = Vec::new();
    parser.feed(b"data: 12\n\n", &mut out).unwrap();
    assert_eq!(out, vec![event("12")]);

    // Whole line inside one chunk.
    let mut parser = SseParser::with_max_line(limit);
    assert_eq!(
        parser.feed(b"data: 123\n", &mut out),
        Err(SseError::LineTooLong { limit })
    );
    // The parser stays failed.
    assert_eq!(parser.feed(b"\n", &mut out), Err(SseError::LineTooLong { limit }));
    assert_eq!(parser.finish(&mut out), Err(SseError::LineTooLong { limit }));

    // Growing across chunks without a line end: refused before buffering past the limit.
    let mut parser = SseParser::with_max_line(limit);
    parser.feed(b"data: 12", &mut out).unwrap();
    assert_eq!(parser.feed(b"3", &mut out), Err(SseError::LineTooLong { limit }));

    // Completed by a later chunk.
    let mut parser = SseParser::with_max_line(limit);
    parser.feed(b"data:", &mut out).unwrap();
    assert_eq!(
        parser.feed(b" 1234\n", &mut out),
        Err(SseError::LineTooLong { limit })
    );
    assert_eq!(out, vec![event("12")]);
}

#[test]
fn over_large_event_is_an_error() {
    let mut parser = SseParser::with_max_line(12);
    let mut out = Vec::new();
    parser.feed(b"data: 1234\ndata: 5678\n", &mut out).unwrap();
    assert_eq!(
        parser.feed(b"data: 9abc\n", &mut out),
        Err(SseError::EventTooLarge { limit: 12 })
    );
}

#[test]
fn default_limit() {
    assert_eq!(DEFAULT_MAX_LINE, 16 * 1024 * 1024);
    let mut parser = SseParser::default();
    let mut out = Vec::new();
    let line = format!("data: {}\n\n", "x".repeat(1 << 20));
    parser.feed(line.as_bytes(), &mut out).unwrap();
    assert_eq!(out.len(), 1);
}

#[test]
fn encoders() {
    assert_eq!(encode_data("{}"), "data: {}\n\n");
    assert_eq!(encode_data(""), "data: \n\n");
    assert_eq!(
        encode_data("a\nb\r\nc\rd\n"),
        "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
    );
    assert_eq!(
        parse_whole(encode_data("a\nb\r\nc\rd\n").as_bytes()),
        vec![event("a\nb\nc\nd\n")]
    );
    assert_eq!(parse_whole(encode_data("").as_bytes()), vec![event("")]);
    assert_eq!(
        encode_comment("OPENROUTER PROCESSING"),
        ": OPENROUTER PROCESSING\n"
    );
    assert_eq!(encode_comment("a\nb"), ": a\n: b\n");
    let full = SseEvent {
        event: Some("content_block_delta".to_owned()),
        data: "{\"x\":1}".to_owned(),
        id: Some("4\n2".to_owned()),
        retry: Some(500),
    };
    assert_eq!(
        encode_event(&full),
        "event: content_block_delta\nid: 4 2\nretry: 500\ndata: {\"x\":1}\n\n"
    );
    assert_eq!(encode_event(&SseEvent::data("x")), encode_data("x"));
}

// ---- properties ----

/// A generated stream: frames, and how to write each line.
#[derive(Debug, Clone)]
struct Stream {
    frames: Vec<SseFrame>,
    /// Per line, cycled: line end (0 `\n`, 1 `\r\n`, 2 `\r`) and whether to omit the space after `:`.
    styles: Vec<(u8, bool)>,
    /// Unknown-field lines to slip into events, cycled.
    noise: Vec<Option<(String, String)>>,
    bom: bool,
    /// 0: as is; 1: no blank line after the last event; 2: also no line end after the last line.
    truncate: u8,
}

fn line_text() -> impl Strategy<Value = String> {
    "[^\r\n]{0,10}"
}

fn frame() -> impl Strategy<Value = SseFrame> {
    let event = (
        proptest::option::of("[^\r\n]{1,8}"),
        proptest::collection::vec(line_text(), 1..4),
        proptest::option::of("[^\r\n\0]{0,8}"),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(event, lines, id, retry)| {
            SseFrame::Event(SseEvent {
                event,
                data: lines.join("\n"),
                id,
                retry,
            })
        });
    prop_oneof![3 => event, 1 => line_text().prop_map(SseFrame::Comment)]
}

fn stream() -> impl Strategy<Value = Stream> {
    let noise = ("[a-z]{1,6}", line_text()).prop_filter("known field", |(name, _)| {
        !["data", "event", "id", "retry"].contains(&name.as_str())
    });
    (
        proptest::collection::vec(frame(), 0..8),
        proptest::collection::vec((0u8..3, any::<bool>()), 1..16),
        proptest::collection::vec(proptest::option::weighted(0.2, noise), 1..8),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(|(frames, styles, noise, bom, truncate)| Stream {
            frames,
            styles,
            noise,
            bom,
            truncate,
        })
}

/// `name:` + value, with or without the optional space (kept when the value itself starts with one).
fn field_line(name: &str, value: &str, omit_space: bool) -> String {
    let space = if omit_space && !value.starts_with(' ') {
        ""
    } else {
        " "
    };
    format!("{name}:{space}{value}")
}

fn encode_stream(stream: &Stream) -> Vec<u8> {
    // (field, value) per line; `None` is a blank line.
    let mut lines: Vec<Option<(&str, String)>> = Vec::new();
    let mut noise = stream.noise.iter().cycle();
    for frame in &stream.frames {
        match frame {
            SseFrame::Comment(text) => lines.push(Some(("", text.clone()))),
            SseFrame::Event(e) => {
                if let Some(name) = &e.event {
                    lines.push(Some(("event", name.clone())));
                }
                if let Some(Some((name, value))) = noise.next() {
                    lines.push(Some((name, value.clone())));
                }
                if let Some(id) = &e.id {
                    lines.push(Some(("id", id.clone())));
                }
                if let Some(retry) = e.retry {
                    lines.push(Some(("retry", retry.to_string())));
                }
                for data in e.data.split('\n') {
                    lines.push(Some(("data", data.to_owned())));
                }
                lines.push(None);
            }
        }
    }
    if stream.truncate >= 1 && matches!(stream.frames.last(), Some(SseFrame::Event(_))) {
        lines.pop();
    }
    let mut out = Vec::new();
    if stream.bom {
        out.extend_from_slice("\u{FEFF}".as_bytes());
    }
    let mut prev_end = "";
    let count = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let (end, omit_space) = stream.styles[i % stream.styles.len()];
        if let Some((name, value)) = line {
            out.extend_from_slice(field_line(name, value, omit_space).as_bytes());
        }
        if i + 1 == count && stream.truncate == 2 {
            break;
        }
        let mut end = ["\n", "\r\n", "\r"][usize::from(end)];
        // "\r" then an empty line ended by "\n" would read as one "\r\n": the blank line would vanish.
        if prev_end == "\r" && line.is_none() && end == "\n" {
            end = "\r";
        }
        out.extend_from_slice(end.as_bytes());
        prev_end = end;
    }
    out
}

proptest! {
    #[test]
    fn any_split_parses_like_the_whole(stream in stream(), cuts in proptest::collection::vec(any::<Index>(), 0..24)) {
        let bytes = encode_stream(&stream);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = parse_whole(&bytes);
        prop_assert_eq!(&whole, &stream.frames);
        prop_assert_eq!(&parse_pieces(&bytes, &cuts), &stream.frames);
        prop_assert_eq!(&parse_bytewise(&bytes), &stream.frames);
    }

    #[test]
    fn encoded_events_parse_back(
        event in proptest::option::of("[^\r\n]{1,8}"),
        data in "[^\r]{0,24}",
        id in proptest::option::of("[^\r\n\0]{0,8}"),
        retry in proptest::option::of(any::<u64>()),
    ) {
        let event = SseEvent { event, data, id, retry };
        prop_assert_eq!(parse_whole(encode_event(&event).as_bytes()), vec![SseFrame::Event(event.clone())]);
        let plain = SseEvent::data(event.data.clone());
        prop_assert_eq!(parse_whole(encode_data(&event.data).as_bytes()), vec![SseFrame::Event(plain)]);
    }
}
