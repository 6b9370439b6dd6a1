//! Anthropic's Messages stream → OpenAI `chat.completion.chunk` events, incrementally.
//!
//! Anthropic sends `message_start` (id, model, input usage), then per content block a
//! `content_block_start`, its `content_block_delta`s and a `content_block_stop`, then `message_delta`
//! (stop reason, output usage) and `message_stop`, with `ping`s anywhere and `error` on failure.
//! OpenAI clients get a role chunk, content and tool-call deltas, a finish-reason chunk, the usage
//! chunk when they asked for it, and `[DONE]`.

use std::collections::HashMap;

use moat_wire::openai::Usage;
use moat_wire::sse::{SseFrame, SseParser, DEFAULT_MAX_EVENT};
use serde_json::Value;

use super::types::AnthropicUsage;
use crate::openai_out::ChunkWriter;
use crate::StreamTranslator;

/// The translator for one answer.
#[derive(Debug)]
pub struct AnthropicToOpenAi {
    parser: SseParser,
    frames: Vec<SseFrame>,
    writer: ChunkWriter,
    include_usage: bool,
    usage: AnthropicUsage,
    /// Anthropic block index → OpenAI tool call index, for tool_use blocks.
    tool_index: HashMap<u64, u32>,
    role_sent: bool,
    /// `message_stop` (Ok) or an error (Err, with why) was seen: nothing more is owed.
    ended: Option<Result<(), String>>,
    max_event: usize,
}

impl AnthropicToOpenAi {
    /// `created` stamps every chunk (Anthropic's stream has no time); `include_usage` is the client's
    /// `stream_options.include_usage`.
    pub fn new(created: u64, include_usage: bool) -> Self {
        AnthropicToOpenAi {
            parser: SseParser::with_max_line(DEFAULT_MAX_EVENT),
            frames: Vec::new(),
            writer: ChunkWriter {
                created,
                ..ChunkWriter::default()
            },
            include_usage,
            usage: AnthropicUsage::default(),
            tool_index: HashMap::new(),
            role_sent: false,
            ended: None,
            max_event: DEFAULT_MAX_EVENT,
        }
    }

    /// Bounds one input event (lines and data) to `max_event` bytes; a longer one ends the output
    /// with an error event.
    pub fn with_max_event(mut self, max_event: usize) -> Self {
        self.parser = SseParser::with_max_line(max_event);
        self.max_event = max_event;
        self
    }

    /// The usage so far, in OpenAI's terms.
    pub fn usage(&self) -> Usage {
        self.usage.to_openai()
    }

    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            self.writer.role(out);
        }
    }

    fn merge_usage(&mut self, u: &Value) {
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(n) = get("input_tokens") {
            self.usage.input_tokens = n;
        }
        if let Some(n) = get("output_tokens") {
            self.usage.output_tokens = n;
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.usage.cache_read_input_tokens = Some(n);
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.usage.cache_creation_input_tokens = Some(n);
        }
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.ended.is_some() {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_owned();
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                self.writer.id = s("/message/id");
                self.writer.model = s("/message/model");
                if let Some(u) = v.pointer("/message/usage") {
                    self.merge_usage(u);
                }
                self.ensure_role(out);
            }
            "content_block_start" => {
                self.ensure_role(out);
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = v.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let n = self.tool_index.len() as u32;
                        self.tool_index.insert(index, n);
                        let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                        let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                        self.writer.tool_call(n, Some((id, name)), "", out);
                    }
                    Some("text") => {
                        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                        if !text.is_empty() {
                            self.writer.content(text, out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                self.ensure_role(out);
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                match v.pointer("/delta/type").and_then(Value::as_str) {
                    Some("text_delta") => self.writer.content(&s("/delta/text"), out),
                    Some("thinking_delta") => self.writer.reasoning(&s("/delta/thinking"), out),
                    Some("input_json_delta") => {
                        let partial = s("/delta/partial_json");
                        if let (Some(&n), false) = (self.tool_index.get(&index), partial.is_empty()) {
                            self.writer.tool_call(n, None, &partial, out);
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                self.ensure_role(out);
                if let Some(u) = v.get("usage") {
                    self.merge_usage(u);
                }
                if let Some(reason) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.writer.finish(super::finish_reason(reason), out);
                }
            }
            "message_stop" => {
                if self.include_usage {
                    self.writer.usage(self.usage.to_openai(), out);
                }
                ChunkWriter::done(out);
                self.ended = Some(Ok(()));
            }
            "error" => {
                let kind = v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("api_error");
                let message = s("/error/message");
                let openai_kind = if kind == "overloaded_error" || kind == "api_error" {
                    "upstream_error"
                } else {
                    kind
                };
                ChunkWriter::error(&message, openai_kind, kind, out);
                self.ended = Some(Err(format!("the provider's stream carried an error: {message}")));
            }
            // A keep-alive for the client too: a comment, which OpenAI clients skip.
            "ping" => out.extend_from_slice(b": ping\n\n"),
            // content_block_stop, and event types added later.
            _ => {}
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let frames = std::mem::take(&mut self.frames);
        for frame in &frames {
            if let SseFrame::Event(e) = frame {
                self.event(&e.data, out);
            }
        }
    }
}

impl StreamTranslator for AnthropicToOpenAi {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended.is_some() {
            return out;
        }
        let parsed = self.parser.feed(chunk, &mut self.frames);
        self.drain(&mut out);
        if parsed.is_err() && self.ended.is_none() {
            let message = format!(
                "the provider sent an event longer than {} bytes (server.max_event_bytes)",
                self.max_event
            );
            ChunkWriter::error(&message, "upstream_error", "upstream_event_too_large", &mut out);
            self.ended = Some(Err(message));
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended.is_some() {
            return out;
        }
        let _ = self.parser.finish(&mut self.frames);
        self.drain(&mut out);
        if self.ended.is_none() {
            let message = "the provider's stream ended before message_stop";
            ChunkWriter::error(message, "upstream_error", "upstream_stream_error", &mut out);
            self.ended = Some(Err(message.to_owned()));
        }
        out
    }

    fn stopped(&self) -> Option<Result<(), String>> {
        self.ended.clone()
    }
}
