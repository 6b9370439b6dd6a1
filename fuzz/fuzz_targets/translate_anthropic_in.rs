//! The stream translator for Anthropic's Messages stream → OpenAI chunks over arbitrary bytes split anywhere: no
//! panic, whole events out, nothing after it stopped, and the same output whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_translate::StreamTranslator;

/// A small bound, so the fuzzer reaches it often.
const MAX: usize = 512;

fn translate(pieces: &[&[u8]]) -> Vec<u8> {
    let mut t = moat_translate::anthropic::AnthropicToOpenAi::new(1, true).with_max_event(MAX);
    let mut out = Vec::new();
    for piece in pieces {
        let stopped = t.stopped().is_some();
        let more = t.feed(piece);
        assert!(!stopped || more.is_empty(), "output after the translator stopped");
        assert!(more.is_empty() || more.ends_with(b"\n\n"), "not whole events");
        out.extend(more);
    }
    let stopped = t.stopped().is_some();
    let last = t.finish();
    assert!(!stopped || last.is_empty(), "output after the translator stopped");
    assert!(last.is_empty() || last.ends_with(b"\n\n"), "not whole events");
    assert!(t.stopped().is_some(), "finish leaves the translator stopped");
    out.extend(last);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize * 7).min(bytes.len());
    let (a, b) = bytes.split_at(cut);
    assert_eq!(
        translate(&[bytes]),
        translate(&[a, b]),
        "the split changed the output"
    );
});
