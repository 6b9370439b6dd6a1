//! OpenAI `chat.completion.chunk` events → Anthropic's Messages stream, incrementally, for clients of
//! moatd's `POST /v1/messages`.
//!
//! The output keeps Anthropic's documented order: `message_start`, then for each content block a
//! `content_block_start` (the first followed by a `ping`), its deltas and a `content_block_stop`, then
//! `message_delta` with the stop reason and usage, then `message_stop`. OpenAI sends usage after the
//! finish reason, so `message_delta` waits for `[DONE]` (or the end of the stream).

use moat_wire::openai::{ChatCompletionChunk, Usage};
use moat_wire::sse::{encode_event, SseEvent, SseFrame, SseParser, DEFAULT_MAX_EVENT};
use serde_json::{json, Value};

use super::inbound::{error_type_for_status, message_id};
use super::types::AnthropicUsage;
use crate::StreamTranslator;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text { index: u64 },
    Tool { index: u64, openai_index: u32 },
}

impl Block {
    fn index(self) -> u64 {
        match self {
            Block::Text { index } | Block::Tool { index, .. } => index,
        }
    }
}

/// The translator for one answer.
#[derive(Debug)]
pub struct OpenAiToAnthropic {
    parser: SseParser,
    frames: Vec<SseFrame>,
    model: String,
    id: String,
    started: bool,
    pinged: bool,
    open: Option<Block>,
    next_index: u64,
    stop_reason: Option<&'static str>,
    usage: Option<Usage>,
    /// `message_stop` (Ok) or an `error` event (Err, with why) was written: nothing more is owed.
    ended: Option<Result<(), String>>,
    max_event: usize,
}

fn push(out: &mut Vec<u8>, name: &str, data: &Value) {
    let event = SseEvent {
        event: Some(name.to_owned()),
        data: data.to_string(),
        ..SseEvent::default()
    };
    out.extend_from_slice(encode_event(&event).as_bytes());
}

impl OpenAiToAnthropic {
    /// `model` is the name the client asked for, which Anthropic's `message_start` echoes.
    pub fn new(model: impl Into<String>) -> Self {
        OpenAiToAnthropic {
            parser: SseParser::with_max_line(DEFAULT_MAX_EVENT),
            frames: Vec::new(),
            model: model.into(),
            id: String::new(),
            started: false,
            pinged: false,
            open: None,
            next_index: 0,
            stop_reason: None,
            usage: None,
            ended: None,
            max_event: DEFAULT_MAX_EVENT,
        }
    }

    /// Bounds one input event (lines and data) to `max_event` bytes; a longer one ends the output
    /// with an `error` event.
    pub fn with_max_event(mut self, max_event: usize) -> Self {
        self.parser = SseParser::with_max_line(max_event);
        self.max_event = max_event;
        self
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": message_id(&self.id),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        });
        push(
            out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some(block) = self.open.take() {
            push(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": block.index()}),
            );
        }
    }

    fn open_block(&mut self, block: Block, content_block: Value, out: &mut Vec<u8>) {
        self.close_block(out);
        push(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": block.index(), "content_block": content_block}),
        );
        if !self.pinged {
            self.pinged = true;
            push(out, "ping", &json!({"type": "ping"}));
        }
        self.open = Some(block);
        self.next_index += 1;
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(Block::Text { index }) => index,
            _ => {
                let index = self.next_index;
                self.open_block(Block::Text { index }, json!({"type": "text", "text": ""}), out);
                index
            }
        };
        push(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
        );
    }

    fn tool_call(&mut self, call: &moat_wire::openai::ToolCallDelta, out: &mut Vec<u8>) {
        let same = matches!(self.open, Some(Block::Tool { openai_index, .. }) if openai_index == call.index);
        let function = call.function.as_ref();
        let index = if same && call.id.is_none() {
            self.open.map_or(0, Block::index)
        } else {
            let index = self.next_index;
            let name = function.and_then(|f| f.name.clone()).unwrap_or_default();
            let block = json!({
                "type": "tool_use",
                "id": call.id.clone().unwrap_or_else(|| format!("toolu_{index}")),
                "name": name,
                "input": {},
            });
            self.open_block(
                Block::Tool {
                    index,
                    openai_index: call.index,
                },
                block,
                out,
            );
            index
        };
        if let Some(args) = function
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        {
            push(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": args}}),
            );
        }
    }

    /// Closes the message: the open block, `message_delta` with stop reason and usage, `message_stop`.
    fn end(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close_block(out);
        let usage = self
            .usage
            .as_ref()
            .map(AnthropicUsage::from_openai)
            .unwrap_or_default();
        push(
            out,
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": usage,
            }),
        );
        push(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = Some(Ok(()));
    }

    fn error(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        push(
            out,
            "error",
            &json!({"type": "error", "error": {"type": kind, "message": message}}),
        );
        self.ended = Some(Err(message.to_owned()));
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.ended.is_some() {
            return;
        }
        if data == "[DONE]" {
            self.end(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChatCompletionChunk>(data) else {
            // Not a chunk: perhaps a bare `{"error": …}` event, as moat's relay sends on failure.
            if let Some(body) = moat_wire::error::ErrorBody::from_slice(data.as_bytes()) {
                let kind = error_kind(&body.error);
                self.error(kind, &body.error.message, out);
            }
            return;
        };
        if let Some(error) = &chunk.error {
            let kind = error_kind(error);
            self.error(kind, &error.message, out);
            return;
        }
        if self.id.is_empty() {
            self.id = chunk.id.clone();
        }
        self.start(out);
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(text, out);
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                self.tool_call(call, out);
            }
            if let Some(reason) = &choice.finish_reason {
                self.stop_reason = Some(super::stop_reason(reason));
            }
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let frames = std::mem::take(&mut self.frames);
        for frame in &frames {
            match frame {
                SseFrame::Event(e) => self.event(&e.data, out),
                // An upstream keep-alive becomes Anthropic's: a `ping`, allowed anywhere after
                // `message_start` (SDKs refuse any event before it, so earlier ones are dropped).
                SseFrame::Comment(_) if self.started && self.ended.is_none() => {
                    push(out, "ping", &json!({"type": "ping"}));
                }
                SseFrame::Comment(_) => {}
            }
        }
    }
}

/// Anthropic's error type for an OpenAI error object (by its numeric code if it has one).
fn error_kind(error: &moat_wire::error::ErrorDetail) -> &'static str {
    if let Some(status) = error.code.as_ref().and_then(Value::as_u64) {
        return error_type_for_status(u16::try_from(status).unwrap_or(500));
    }
    match error.r#type.as_deref() {
        Some("invalid_request_error") => "invalid_request_error",
        Some("authentication_error") => "authentication_error",
        Some("permission_error") => "permission_error",
        Some("rate_limit_error") => "rate_limit_error",
        Some("overloaded_error") => "overloaded_error",
        _ => "api_error",
    }
}

impl StreamTranslator for OpenAiToAnthropic {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended.is_some() {
            return out;
        }
        let parsed = self.parser.feed(chunk, &mut self.frames);
        self.drain(&mut out);
        if parsed.is_err() && self.ended.is_none() {
            let message = format!(
                "the upstream stream sent an event longer than {} bytes (server.max_event_bytes)",
                self.max_event
            );
            self.error("api_error", &message, &mut out);
        }
        out
    }

    fn stopped(&self) -> Option<Result<(), String>> {
        self.ended.clone()
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended.is_some() {
            return out;
        }
        let _ = self.parser.finish(&mut self.frames);
        self.drain(&mut out);
        if self.ended.is_none() {
            if self.stop_reason.is_some() {
                self.end(&mut out);
            } else {
                self.error("api_error", "the upstream stream ended early", &mut out);
            }
        }
        out
    }
}
