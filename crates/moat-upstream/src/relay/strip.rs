//! Usage the client did not ask for. A metered stream always asks its provider for usage (to settle
//! at the real cost), even when the client sent `include_usage: false` or nothing; what the client
//! receives must then look as if moatd had not asked: no usage-only chunk (`"choices": []`), which
//! breaks clients that read `chunk.choices[0]`, and no `usage` member on the other chunks.

use bytes::Bytes;
use moat_wire::sse::{self, SseFrame, SseParser};
use serde_json::Value;

use super::Transform;

/// A [`Transform`] that takes usage out of whole SSE events. Usage is read for settlement before
/// transforms run, so this changes only what the client sees.
pub fn usage_stripper() -> Transform {
    Box::new(strip_usage)
}

/// Whole events with their usage taken out. Almost every chunk has no `"usage"` member: it is
/// handed back as it came, neither copied nor parsed. In one that has, the events before the first
/// event with usage are copied as they are; only the rest is parsed, and only events that carry
/// usage are rewritten.
pub fn strip_usage(bytes: Bytes) -> Bytes {
    let Some(at) = moat_wire::usage::usage_key_at(&bytes) else {
        return bytes;
    };
    let start = sse::event_start(&bytes, at);
    let mut frames = Vec::new();
    let mut parser = SseParser::new();
    if parser.feed(&bytes[start..], &mut frames).is_err() || parser.finish(&mut frames).is_err() {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..start]);
    for frame in frames {
        match frame {
            SseFrame::Comment(c) => {
                out.extend_from_slice(sse::encode_comment(&c).as_bytes());
                out.push(b'\n');
            }
            SseFrame::Event(mut e) => {
                // OpenAI's `"usage": null` on every chunk but the last: taken out without a parse.
                if let Some(data) = moat_wire::edit::without_null_member(&e.data, "usage") {
                    e.data = data;
                    out.extend_from_slice(sse::encode_event(&e).as_bytes());
                    continue;
                }
                let parsed = moat_wire::usage::usage_key_at(e.data.as_bytes())
                    .and_then(|_| serde_json::from_str::<Value>(&e.data).ok());
                if let Some(Value::Object(mut chunk)) = parsed {
                    if let Some(usage) = chunk.remove("usage") {
                        let no_choices = chunk
                            .get("choices")
                            .and_then(Value::as_array)
                            .is_some_and(Vec::is_empty);
                        if no_choices && !usage.is_null() {
                            continue;
                        }
                        e.data = Value::Object(chunk).to_string();
                    }
                }
                out.extend_from_slice(sse::encode_event(&e).as_bytes());
            }
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_chunk_goes_and_usage_members_go() {
        let stream = concat!(
            ": OPENROUTER PROCESSING\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"total_tokens\":3}}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
            "data: [DONE]\n\n",
        );
        let out = String::from_utf8(strip_usage(Bytes::from_static(stream.as_bytes())).to_vec()).unwrap();
        assert!(!out.contains("usage"), "{out}");
        assert!(out.contains("\"content\":\"hi\"") && out.contains("finish_reason"));
        assert!(out.starts_with(": OPENROUTER PROCESSING\n\n") && out.ends_with("data: [DONE]\n\n"));
        assert_eq!(out.matches("data: ").count(), 3);
    }

    #[test]
    fn a_null_usage_is_taken_out_and_the_rest_of_the_chunk_kept_as_it_came() {
        // OpenAI, asked for usage, puts `"usage": null` in every chunk but the last.
        let stream = concat!(
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a \\\"usage\\\": b\"},  \"logprobs\":null}],\"usage\":null}\n\n",
            "data: {\"usage\": null, \"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n",
            "data: [DONE]\n\n",
        );
        let out = String::from_utf8(strip_usage(Bytes::from_static(stream.as_bytes())).to_vec()).unwrap();
        assert_eq!(
            out,
            concat!(
                "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a \\\"usage\\\": b\"},  \"logprobs\":null}]}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
                "data: [DONE]\n\n",
            )
        );
    }

    #[test]
    fn events_before_the_usage_event_are_kept_as_they_came() {
        let before = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n: note\r\rdata: x\n\n";
        let stream =
            format!("{before}data: {{\"choices\":[],\"usage\":{{\"total_tokens\":3}}}}\n\ndata: [DONE]\n\n");
        let out = strip_usage(Bytes::from(stream));
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            format!("{before}data: [DONE]\n\n")
        );
    }

    #[test]
    fn events_without_usage_pass_byte_for_byte() {
        let stream = b"data: {\"choices\":[],\"prompt_filter_results\":[]}\n\ndata: {\"choices\":[{\"delta\":{}}]}\n\n";
        assert_eq!(strip_usage(Bytes::from_static(stream)), stream.to_vec());
        // An empty `choices` without usage (Azure's filter results) stays too.
        let azure = b"data: {\"choices\":[],\"prompt_filter_results\":[],\"usage\":null}\n\n";
        let out = String::from_utf8(strip_usage(Bytes::from_static(azure)).to_vec()).unwrap();
        assert!(
            out.contains("prompt_filter_results") && !out.contains("usage"),
            "{out}"
        );
    }
}
