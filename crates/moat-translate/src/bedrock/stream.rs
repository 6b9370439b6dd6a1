//! Bedrock's ConverseStream (binary event-stream messages) → OpenAI `chat.completion.chunk`
//! events, incrementally.
//!
//! Events, each a message with `:message-type: event` and its name in `:event-type`: `messageStart`
//! (the role), `contentBlockStart` (a tool call's id and name), `contentBlockDelta` (text, a piece
//! of a tool call's input JSON, or reasoning text), `contentBlockStop`, `messageStop` (the stop
//! reason) and last `metadata` (usage). Failures come as `:message-type: exception` messages named
//! in `:exception-type`, with `{"message": …}` as payload.

use std::collections::HashMap;

use moat_wire::openai::Usage;
use serde_json::Value;

use super::response::{openai_kind, usage_of};
use crate::eventstream::{Decoder, Message};
use crate::openai_out::ChunkWriter;
use crate::StreamTranslator;

/// The translator for one answer.
#[derive(Debug)]
pub struct BedrockToOpenAi {
    decoder: Decoder,
    messages: Vec<Message>,
    writer: ChunkWriter,
    include_usage: bool,
    usage: Option<Usage>,
    /// Converse block index → OpenAI tool call index.
    tool_index: HashMap<u64, u32>,
    role_sent: bool,
    /// `messageStop` was seen: the answer is whole even if `metadata` never comes.
    stopped: bool,
    /// `[DONE]` or an error event was written.
    ended: bool,
    /// Why the output ended with an error event, when it did.
    failure: Option<String>,
}

impl BedrockToOpenAi {
    /// `id`, `model` and `created` stamp every chunk (Converse streams carry none of them);
    /// `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64, include_usage: bool) -> Self {
        BedrockToOpenAi {
            decoder: Decoder::new(),
            messages: Vec::new(),
            writer: ChunkWriter {
                id: id.into(),
                model: model.into(),
                created,
            },
            include_usage,
            usage: None,
            tool_index: HashMap::new(),
            role_sent: false,
            stopped: false,
            ended: false,
            failure: None,
        }
    }

    /// Bounds one input message to `max_event` bytes; a longer one ends the output with an error
    /// event.
    pub fn with_max_event(mut self, max_event: usize) -> Self {
        self.decoder = Decoder::with_max_message(max_event);
        self
    }

    /// The usage reported so far.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            self.writer.role(out);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            self.writer.usage(self.usage.clone().unwrap_or_default(), out);
        }
        ChunkWriter::done(out);
        self.ended = true;
    }

    fn message(&mut self, m: &Message, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        match m.header_str(":message-type").unwrap_or("event") {
            "event" => {}
            kind => {
                // `exception` (a modelled failure) or `error` (a transport-level one).
                let name = m
                    .header_str(":exception-type")
                    .or_else(|| m.header_str(":error-code"))
                    .unwrap_or(kind);
                let message = v
                    .get("message")
                    .or_else(|| v.get("Message"))
                    .and_then(Value::as_str)
                    .or_else(|| m.header_str(":error-message"))
                    .unwrap_or("the provider's stream failed");
                let (_, code) = openai_kind(name, 0, message);
                ChunkWriter::error(message, "upstream_error", code, out);
                self.ended = true;
                self.failure = Some(format!("the provider's stream carried an error: {message}"));
                return;
            }
        }
        let index = v.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
        match m.header_str(":event-type").unwrap_or("") {
            "messageStart" => self.ensure_role(out),
            "contentBlockStart" => {
                self.ensure_role(out);
                if let Some(tu) = v.pointer("/start/toolUse") {
                    let n = self.tool_index.len() as u32;
                    self.tool_index.insert(index, n);
                    let id = tu.get("toolUseId").and_then(Value::as_str).unwrap_or("");
                    let name = tu.get("name").and_then(Value::as_str).unwrap_or("");
                    self.writer.tool_call(n, Some((id, name)), "", out);
                }
            }
            "contentBlockDelta" => {
                self.ensure_role(out);
                let delta = v.get("delta").unwrap_or(&Value::Null);
                if let Some(t) = delta.get("text").and_then(Value::as_str) {
                    if !t.is_empty() {
                        self.writer.content(t, out);
                    }
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
                    if let (Some(&n), false) = (self.tool_index.get(&index), input.is_empty()) {
                        self.writer.tool_call(n, None, input, out);
                    }
                } else if let Some(t) = delta.pointer("/reasoningContent/text").and_then(Value::as_str) {
                    if !t.is_empty() {
                        self.writer.reasoning(t, out);
                    }
                }
            }
            "messageStop" => {
                self.ensure_role(out);
                let reason = v.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
                self.writer.finish(super::finish_reason(reason), out);
                self.stopped = true;
            }
            "metadata" => {
                if let Some(u) = v.get("usage") {
                    self.usage = Some(usage_of(u));
                }
                if self.stopped {
                    self.end(out);
                }
            }
            // contentBlockStop, and event types added later.
            _ => {}
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let messages = std::mem::take(&mut self.messages);
        for m in &messages {
            self.message(m, out);
        }
    }
}

impl StreamTranslator for BedrockToOpenAi {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let result = self.decoder.feed(chunk, &mut self.messages);
        self.drain(&mut out);
        if let Err(e) = result {
            if !self.ended {
                let code = match e {
                    crate::eventstream::FrameError::TooLarge { .. } => "upstream_event_too_large",
                    _ => "upstream_stream_error",
                };
                ChunkWriter::error(&e.to_string(), "upstream_error", code, &mut out);
                self.ended = true;
                self.failure = Some(e.to_string());
            }
        }
        out
    }

    fn stopped(&self) -> Option<Result<(), String>> {
        self.ended.then(|| self.failure.clone().map_or(Ok(()), Err))
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if self.stopped && self.decoder.pending() == 0 {
            // messageStop came but no metadata: the answer is whole, its usage unknown.
            self.end(&mut out);
        } else {
            self.ended = true;
            self.failure = Some("the provider's stream ended before messageStop".to_owned());
            ChunkWriter::error(
                "the provider's stream ended before messageStop",
                "upstream_error",
                "upstream_stream_error",
                &mut out,
            );
        }
        out
    }
}
