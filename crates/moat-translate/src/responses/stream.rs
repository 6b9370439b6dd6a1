//! OpenAI `chat.completion.chunk` events → the Responses stream, incrementally.
//!
//! The output keeps the documented order: `response.created`, `response.in_progress`, then for each
//! output item `response.output_item.added`, its parts and deltas, their `.done` events and
//! `response.output_item.done`, then one terminal event (`response.completed`, `response.incomplete`
//! or `response.failed`) carrying the whole Response object. Every event has the next
//! `sequence_number`; the response id is the envelope's, whatever ids the chat chunks carry. Chat
//! streams send usage after the finish reason, so the terminal event waits for `[DONE]` (or the end).

use moat_wire::openai::{ChatCompletionChunk, ToolCallDelta, Usage};
use moat_wire::sse::{encode_comment, encode_event, SseEvent, SseFrame, SseParser, DEFAULT_MAX_EVENT};
use serde_json::{json, Value};

use super::envelope::{Envelope, Status};
use super::items::{function_call_item, message_item, output_text_part, reasoning_item, ItemIds};
use crate::StreamTranslator;

/// The output item being streamed.
#[derive(Debug)]
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        chat_index: u32,
    },
}

/// The translator for one response.
#[derive(Debug)]
pub struct ChatToResponses {
    parser: SseParser,
    frames: Vec<SseFrame>,
    envelope: Envelope,
    ids: ItemIds,
    sequence: u64,
    started: bool,
    /// Finished output items, in order.
    output: Vec<Value>,
    open: Option<Open>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// The terminal Response object, once sent.
    done: Option<Value>,
    /// Bytes of output kept so far (text, reasoning, arguments), against `max_output`.
    kept: usize,
    max_output: usize,
    /// The bound on one input event (`with_max_event`).
    max_event: usize,
}

/// Most output one streamed response may accumulate: the final Response object repeats it, so it is
/// held in memory, and a provider that never stops must not make that unbounded. Past it the response
/// fails (`response_too_large`).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;

impl ChatToResponses {
    pub fn new(envelope: Envelope) -> Self {
        let ids = ItemIds::new(envelope.id());
        ChatToResponses {
            parser: SseParser::with_max_line(DEFAULT_MAX_EVENT),
            frames: Vec::new(),
            envelope,
            ids,
            sequence: 0,
            started: false,
            output: Vec::new(),
            open: None,
            finish_reason: None,
            usage: None,
            done: None,
            kept: 0,
            max_output: MAX_OUTPUT_BYTES,
            max_event: DEFAULT_MAX_EVENT,
        }
    }

    /// Bounds one input event (lines and data) to `max_event` bytes; a longer one fails the
    /// response.
    pub fn with_max_event(mut self, max_event: usize) -> Self {
        self.parser = SseParser::with_max_line(max_event);
        self.max_event = max_event;
        self
    }

    /// The same with another output bound than [`MAX_OUTPUT_BYTES`].
    pub fn with_max_output(envelope: Envelope, max_output: usize) -> Self {
        ChatToResponses {
            max_output,
            ..ChatToResponses::new(envelope)
        }
    }

    /// The Response object of the terminal event, once it has been produced (so a caller can store
    /// the turn before passing that event on).
    pub fn final_response(&self) -> Option<&Value> {
        self.done.as_ref()
    }

    fn push(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        if let Value::Object(map) = &mut data {
            map.insert("type".into(), json!(kind));
            map.insert("sequence_number".into(), json!(self.sequence));
        }
        self.sequence += 1;
        let event = SseEvent {
            event: Some(kind.to_owned()),
            data: data.to_string(),
            ..SseEvent::default()
        };
        out.extend_from_slice(encode_event(&event).as_bytes());
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.envelope.in_progress();
        self.push(out, "response.created", json!({"response": response}));
        self.push(out, "response.in_progress", json!({"response": response}));
    }

    fn index(&self) -> usize {
        self.output.len()
    }

    /// Closes the open item: its `.done` events, then `response.output_item.done`.
    fn close(&mut self, out: &mut Vec<u8>, status: &str) {
        let Some(open) = self.open.take() else {
            return;
        };
        let index = self.index();
        let item = match open {
            Open::Reasoning { id, text } => {
                self.push(
                    out,
                    "response.reasoning_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text}),
                );
                let part = json!({"type": "reasoning_text", "text": text});
                self.push(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                reasoning_item(&id, &text)
            }
            Open::Message { id, text } => {
                self.push(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                let part = output_text_part(&text);
                self.push(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                message_item(&id, vec![part], status)
            }
            Open::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
                self.push(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "name": name, "arguments": arguments}),
                );
                function_call_item(&id, &call_id, &name, &arguments, status)
            }
        };
        self.push(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    fn reasoning(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out, "completed");
            let id = self.ids.next("rs");
            let index = self.index();
            let item =
                json!({"type": "reasoning", "id": id, "summary": [], "content": [], "status": "in_progress"});
            self.push(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            let part = json!({"type": "reasoning_text", "text": ""});
            self.push(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
            );
            self.open = Some(Open::Reasoning {
                id,
                text: String::new(),
            });
        }
        let index = self.index();
        if let Some(Open::Reasoning { id, text }) = &mut self.open {
            text.push_str(delta);
            let id = id.clone();
            self.push(
                out,
                "response.reasoning_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta}),
            );
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out, "completed");
            let id = self.ids.next("msg");
            let index = self.index();
            let item = message_item(&id, Vec::new(), "in_progress");
            self.push(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.push(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": output_text_part("")}),
            );
            self.open = Some(Open::Message {
                id,
                text: String::new(),
            });
        }
        let index = self.index();
        if let Some(Open::Message { id, text }) = &mut self.open {
            text.push_str(delta);
            let id = id.clone();
            self.push(
                out,
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
            );
        }
    }

    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>) {
        // A new call starts at a new chat index, or at the same index with a different id (servers
        // that number every call 0); servers that repeat the id on every fragment continue the call.
        let new_id = call.id.as_deref().filter(|i| !i.is_empty());
        let same = matches!(&self.open, Some(Open::Call { chat_index, call_id, .. })
            if *chat_index == call.index && new_id.is_none_or(|i| i == call_id));
        let function = call.function.as_ref();
        if !same {
            self.close(out, "completed");
            let id = self.ids.next("fc");
            let call_id = call
                .id
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| format!("call_{id}"));
            let name = function.and_then(|f| f.name.clone()).unwrap_or_default();
            let index = self.index();
            let item = function_call_item(&id, &call_id, &name, "", "in_progress");
            self.push(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.open = Some(Open::Call {
                id,
                call_id,
                name,
                arguments: String::new(),
                chat_index: call.index,
            });
        }
        let index = self.index();
        let Some(args) = function
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        if let Some(Open::Call { id, arguments, .. }) = &mut self.open {
            arguments.push_str(args);
            let id = id.clone();
            self.push(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": args}),
            );
        }
    }

    /// The terminal event for `status`, after closing what is open.
    fn end(&mut self, status: Status, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out, status.item_status());
        let kind = match status {
            Status::Completed => "response.completed",
            Status::Incomplete(_) => "response.incomplete",
            Status::Failed { .. } => "response.failed",
        };
        let response = self
            .envelope
            .finished(status, self.output.clone(), self.usage.as_ref());
        self.done = Some(response.clone());
        self.push(out, kind, json!({"response": response}));
    }

    fn fail(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out, "incomplete");
        self.push(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let status = Status::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        self.end(status, out);
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done.is_some() {
            return;
        }
        self.kept = self.kept.saturating_add(data.len());
        if self.kept > self.max_output {
            let message = format!("the answer is larger than {} bytes", self.max_output);
            self.fail("response_too_large", &message, out);
            return;
        }
        if data == "[DONE]" {
            let status = Status::from_finish(self.finish_reason.as_deref());
            self.end(status, out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChatCompletionChunk>(data) else {
            // A bare `{"error": …}` event, as moat's relay sends when a provider fails mid-stream.
            if let Some(body) = moat_wire::error::ErrorBody::from_slice(data.as_bytes()) {
                let code = error_code(&body.error);
                self.fail(&code, &body.error.message, out);
            }
            return;
        };
        if let Some(error) = &chunk.error {
            let code = error_code(error);
            self.fail(&code, &error.message, out);
            return;
        }
        self.start(out);
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            let d = &choice.delta;
            let reasoning = d
                .reasoning
                .as_deref()
                .or_else(|| d.extra.get("reasoning_content").and_then(Value::as_str));
            if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
                self.reasoning(r, out);
            }
            if let Some(text) = d.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(text, out);
            }
            for call in d.tool_calls.iter().flatten() {
                self.tool_call(call, out);
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.clone());
            }
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let frames = std::mem::take(&mut self.frames);
        for frame in &frames {
            match frame {
                SseFrame::Event(e) => self.event(&e.data, out),
                // Keep-alives stay keep-alives: clients skip comments.
                SseFrame::Comment(c) if self.done.is_none() => {
                    out.extend_from_slice(encode_comment(c).as_bytes());
                    out.push(b'\n');
                }
                SseFrame::Comment(_) => {}
            }
        }
    }
}

fn error_code(error: &moat_wire::error::ErrorDetail) -> String {
    match &error.code {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => error.r#type.clone().unwrap_or_else(|| "server_error".to_owned()),
    }
}

impl StreamTranslator for ChatToResponses {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.done.is_some() {
            return out;
        }
        let parsed = self.parser.feed(chunk, &mut self.frames);
        self.drain(&mut out);
        if parsed.is_err() && self.done.is_none() {
            let message = format!(
                "the upstream stream sent an event longer than {} bytes (server.max_event_bytes)",
                self.max_event
            );
            self.fail("upstream_event_too_large", &message, &mut out);
        }
        out
    }

    fn stopped(&self) -> Option<Result<(), String>> {
        let done = self.done.as_ref()?;
        Some(match done.get("status").and_then(Value::as_str) {
            Some("failed") => Err(done
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("the response failed")
                .to_owned()),
            _ => Ok(()),
        })
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.done.is_some() {
            return out;
        }
        let _ = self.parser.finish(&mut self.frames);
        self.drain(&mut out);
        if self.done.is_none() {
            if self.finish_reason.is_some() {
                let status = Status::from_finish(self.finish_reason.as_deref());
                self.end(status, &mut out);
            } else {
                self.fail("upstream_error", "the upstream stream ended early", &mut out);
            }
        }
        out
    }
}
