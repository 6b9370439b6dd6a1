//! The SSE parser and the relay's event framing over arbitrary bytes split anywhere: no panic, bounded
//! state, and the same result whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_wire::sse::{EventBoundaries, SseFrame, SseParser};

/// Small bounds, so the fuzzer reaches the limits often.
const MAX: usize = 512;

fn parse(pieces: &[&[u8]]) -> (Vec<SseFrame>, bool) {
    let mut parser = SseParser::with_max_line(MAX);
    let mut frames = Vec::new();
    let mut ok = true;
    for piece in pieces {
        ok &= parser.feed(piece, &mut frames).is_ok();
    }
    ok &= parser.finish(&mut frames).is_ok();
    (frames, ok)
}

fn boundaries(pieces: &[&[u8]]) -> (Option<usize>, usize, bool) {
    let mut b = EventBoundaries::new(MAX);
    let (mut offset, mut last) = (0, None);
    for piece in pieces {
        match b.scan(piece) {
            Ok(Some(end)) => last = Some(offset + end),
            Ok(None) => {}
            Err(_) => return (last, b.pending(), false),
        }
        offset += piece.len();
    }
    (last, b.pending(), true)
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where to split the rest.
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize).min(bytes.len());
    let (a, b) = bytes.split_at(cut);
    let whole = parse(&[bytes]);
    let split = parse(&[a, b]);
    if whole.1 && split.1 {
        assert_eq!(whole.0, split.0, "the split changed the events");
    }
    for frame in &whole.0 {
        if let SseFrame::Event(e) = frame {
            assert!(e.data.len() <= MAX);
        }
    }
    let (whole_end, whole_pending, whole_ok) = boundaries(&[bytes]);
    let (split_end, split_pending, split_ok) = boundaries(&[a, b]);
    assert_eq!(whole_ok, split_ok, "the split changed the bound");
    if whole_ok {
        // A blank `\r\n` line split between its `\r` and `\n` may be reported one byte early.
        let close = |x: Option<usize>, y: Option<usize>| {
            x == y || x.zip(y).is_some_and(|(x, y)| x + 1 == y || y + 1 == x)
        };
        assert!(close(whole_end, split_end), "{whole_end:?} vs {split_end:?}");
        assert_eq!(whole_end.unwrap_or(0) + whole_pending, bytes.len());
        assert!(split_pending <= MAX && whole_pending <= MAX);
    }
});
