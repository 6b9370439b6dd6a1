//! Restoring placeholders in a streamed answer. A placeholder can arrive split across chunks
//! (`"[EMA"` in one, `"IL_1]"` in the next), so each choice's text — and each of its tool calls'
//! arguments — is held back from the last `[` that could still grow into a placeholder until the next
//! chunk (or the end of that choice) decides it.
//! Events are re-encoded only when they carry text; everything else passes through unchanged.

use std::collections::BTreeMap;

use moat_wire::sse::{self, SseEvent, SseFrame, SseParser};
use serde_json::Value;

use super::Redactions;

/// Rewrites complete SSE events of one stream.
pub struct StreamRestorer {
    redactions: Redactions,
    parser: SseParser,
    frames: Vec<SseFrame>,
    /// Text held back per (choice index, 0 for its text or 1 + a tool call's index).
    pending: BTreeMap<(u64, u64), String>,
}

impl StreamRestorer {
    pub fn new(redactions: Redactions) -> StreamRestorer {
        StreamRestorer {
            redactions,
            parser: SseParser::new(),
            frames: Vec::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Transforms whole events (the relay only hands over complete events).
    pub fn transform(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.parser.feed(bytes, &mut self.frames).is_err() {
            // Too large to inspect: pass it on as is rather than break the stream.
            self.parser = SseParser::new();
            return bytes.to_vec();
        }
        let frames = std::mem::take(&mut self.frames);
        let mut out = String::with_capacity(bytes.len() + 32);
        for frame in frames {
            match frame {
                SseFrame::Comment(c) => {
                    out.push_str(": ");
                    out.push_str(&c);
                    out.push_str("\n\n");
                }
                SseFrame::Event(e) if e.is_done() => {
                    self.flush_pending(&mut out);
                    out.push_str(&sse::encode_event(&e));
                }
                SseFrame::Event(mut e) => {
                    if let Ok(mut v) = serde_json::from_str::<Value>(&e.data) {
                        if self.rewrite(&mut v) {
                            e.data = v.to_string();
                        }
                    }
                    out.push_str(&sse::encode_event(&e));
                }
            }
        }
        out.into_bytes()
    }

    /// Restores the text of each choice in a chunk (its content or text, and its tool calls'
    /// arguments); true when something changed.
    fn rewrite(&mut self, v: &mut Value) -> bool {
        let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else {
            return false;
        };
        let mut changed = false;
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            // Chat streams put text in delta.content, legacy completions in text.
            let slot = if choice.get("text").is_some_and(Value::is_string) {
                choice.get_mut("text")
            } else {
                choice
                    .get_mut("delta")
                    .and_then(|d| d.as_object_mut())
                    .map(|d| d.entry("content").or_insert(Value::Null))
            };
            if let Some(slot) = slot {
                changed |= self.restore_slot(slot, (index, 0), finished, false);
            }
            // Tool-call arguments are JSON text inside a string: originals go in JSON-escaped.
            let calls = choice
                .get_mut("delta")
                .and_then(|d| d.get_mut("tool_calls"))
                .and_then(Value::as_array_mut);
            for call in calls.into_iter().flatten() {
                let n = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(slot) = call.get_mut("function").and_then(|f| f.get_mut("arguments")) {
                    changed |= self.restore_slot(slot, (index, n + 1), finished, true);
                }
            }
            if finished {
                // Arguments of calls that sent nothing in this last chunk are due now too.
                let held: Vec<(u64, u64)> = self
                    .pending
                    .keys()
                    .filter(|k| k.0 == index && k.1 > 0)
                    .copied()
                    .collect();
                for key in held {
                    let text = self.pending.remove(&key).unwrap_or_default();
                    let args = self.redactions.restore_escaped(&text);
                    if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                        let calls = delta
                            .entry("tool_calls")
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if let Some(calls) = calls.as_array_mut() {
                            calls.push(
                                serde_json::json!({"index": key.1 - 1, "function": {"arguments": args}}),
                            );
                            changed = true;
                        }
                    }
                }
            }
        }
        changed
    }

    /// Restores one text slot, holding back a trailing partial placeholder under `key` until the
    /// next chunk (or the end of the choice) decides it; true when the slot changed.
    fn restore_slot(&mut self, slot: &mut Value, key: (u64, u64), finished: bool, escaped: bool) -> bool {
        let incoming = slot.as_str().unwrap_or_default();
        let held = self.pending.remove(&key).unwrap_or_default();
        if held.is_empty() && !incoming.contains('[') && !finished {
            return false;
        }
        let mut text = held;
        text.push_str(incoming);
        let keep = if finished { None } else { self.partial_tail(&text) };
        let emit = match keep {
            Some(at) => {
                self.pending.insert(key, text[at..].to_string());
                &text[..at]
            }
            None => &text[..],
        };
        let restored = if escaped {
            self.redactions.restore_escaped(emit)
        } else {
            self.redactions.restore_text(emit)
        };
        if slot.is_null() && restored.is_empty() {
            return false;
        }
        *slot = Value::String(restored);
        true
    }

    /// Where a trailing partial placeholder starts, if the text ends with one.
    fn partial_tail(&self, text: &str) -> Option<usize> {
        let at = text.rfind('[')?;
        self.redactions.could_start_placeholder(&text[at..]).then_some(at)
    }

    /// Emits text still held at the end of the stream as final chunks.
    fn flush_pending(&mut self, out: &mut String) {
        for ((index, part), text) in std::mem::take(&mut self.pending) {
            if text.is_empty() {
                continue;
            }
            let delta = if part == 0 {
                serde_json::json!({"content": self.redactions.restore_text(&text)})
            } else {
                serde_json::json!({"tool_calls": [{"index": part - 1, "function": {"arguments": self.redactions.restore_escaped(&text)}}]})
            };
            let chunk = serde_json::json!({
                "object": "chat.completion.chunk",
                "choices": [{"index": index, "delta": delta, "finish_reason": null}]
            });
            out.push_str(&sse::encode_event(&SseEvent::data(chunk.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactions() -> Redactions {
        let mut r = Redactions::default();
        let mut text = "write to alice@example.com".to_string();
        r.apply(&mut text, &[(9, 26, "email".into())]);
        assert_eq!(text, "write to [EMAIL_1]");
        r
    }

    fn chunk(content: &str, finish: Option<&str>) -> String {
        let v = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "x_keep": 1,
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]});
        format!("data: {v}\n\n")
    }

    fn text_of(out: &[u8]) -> String {
        let mut p = SseParser::new();
        let mut frames = Vec::new();
        p.feed(out, &mut frames).unwrap();
        frames
            .iter()
            .filter_map(|f| match f {
                SseFrame::Event(e) if !e.is_done() => serde_json::from_str::<Value>(&e.data).ok(),
                _ => None,
            })
            .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn a_placeholder_split_across_chunks_is_restored() {
        let mut s = StreamRestorer::new(redactions());
        let mut out = Vec::new();
        for piece in ["Sending to [EM", "AIL", "_1] now", "."] {
            out.extend(s.transform(chunk(piece, None).as_bytes()));
        }
        out.extend(s.transform(chunk("", Some("stop")).as_bytes()));
        out.extend(s.transform(b"data: [DONE]\n\n"));
        assert_eq!(text_of(&out), "Sending to alice@example.com now.");
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"x_keep\":1") && text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn a_bracket_that_is_not_a_placeholder_is_not_held_forever() {
        let mut s = StreamRestorer::new(redactions());
        let out = s.transform(chunk("array[0] and [x]", None).as_bytes());
        assert_eq!(text_of(&out), "array[0] and [x]");
        let out = s.transform(chunk("see [EMAIL", None).as_bytes());
        assert_eq!(text_of(&out), "see ");
        let mut out = s.transform(b"data: [DONE]\n\n");
        out.extend(Vec::<u8>::new());
        assert_eq!(text_of(&out), "[EMAIL", "held text is flushed at the end");
    }

    #[test]
    fn tool_call_arguments_are_restored_escaped_even_when_split() {
        let mut r = Redactions::default();
        let mut text = "key -----BEGIN\n\"x\"".to_string();
        let end = text.len();
        r.apply(&mut text, &[(4, end, "private_key".into())]);
        let mut s = StreamRestorer::new(r);
        let call = |args: &str, finish: Option<&str>| {
            let v = serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": args}}]}, "finish_reason": finish}]});
            format!("data: {v}\n\n")
        };
        let mut out = Vec::new();
        for piece in ["{\"k\": \"[PRIV", "ATE_KEY_1]\"", "}"] {
            out.extend(s.transform(call(piece, None).as_bytes()));
        }
        out.extend(s.transform(b"data: [DONE]\n\n"));
        let mut p = SseParser::new();
        let mut frames = Vec::new();
        p.feed(&out, &mut frames).unwrap();
        let args: String = frames
            .iter()
            .filter_map(|f| match f {
                SseFrame::Event(e) if !e.is_done() => serde_json::from_str::<Value>(&e.data).ok(),
                _ => None,
            })
            .filter_map(|v| {
                v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed["k"], "-----BEGIN\n\"x\"");
    }

    #[test]
    fn untouched_events_pass_through() {
        let mut s = StreamRestorer::new(redactions());
        let usage = "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n";
        let out = s.transform(format!(": OPENROUTER PROCESSING\n\n{usage}").as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(": OPENROUTER PROCESSING\n\n{usage}")
        );
    }
}
