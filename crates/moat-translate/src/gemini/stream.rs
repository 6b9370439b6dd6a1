//! Gemini's `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk` events, incrementally.
//!
//! Every Gemini event is a whole `GenerateContentResponse` holding the next piece of the answer:
//! text parts, thought parts (`"thought": true`), whole `functionCall` parts, and on the last one a
//! `finishReason` and the `usageMetadata`. The stream ends when the connection closes, so the usage
//! chunk and `[DONE]` are written by [`StreamTranslator::finish`]. Only the first candidate is
//! streamed (`n` > 1 is for whole answers).

use moat_wire::openai::Usage;
use moat_wire::sse::{SseFrame, SseParser, DEFAULT_MAX_EVENT};
use serde_json::Value;

use super::request::made_up_id;
use super::response::{openai_kind, read_parts, usage_of};
use crate::openai_out::ChunkWriter;
use crate::StreamTranslator;

/// The translator for one answer.
#[derive(Debug)]
pub struct GeminiToOpenAi {
    parser: SseParser,
    frames: Vec<SseFrame>,
    writer: ChunkWriter,
    include_usage: bool,
    usage: Option<Usage>,
    role_sent: bool,
    tool_calls: usize,
    /// A `finishReason` was seen: the answer is complete once the connection closes.
    finished: bool,
    /// An error event was written: nothing more is owed.
    ended: bool,
    /// Why the output ended with an error event, when it did.
    failure: Option<String>,
    max_event: usize,
}

impl GeminiToOpenAi {
    /// `id`, `model` and `created` stamp every chunk until the stream names its own (`responseId`,
    /// `modelVersion`); `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64, include_usage: bool) -> Self {
        GeminiToOpenAi {
            parser: SseParser::with_max_line(DEFAULT_MAX_EVENT),
            frames: Vec::new(),
            writer: ChunkWriter {
                id: id.into(),
                model: model.into(),
                created,
            },
            include_usage,
            usage: None,
            role_sent: false,
            tool_calls: 0,
            finished: false,
            ended: false,
            failure: None,
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

    /// The usage reported so far.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(e) = v.get("error") {
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("provider stream error");
            let status = e.get("status").and_then(Value::as_str).unwrap_or("");
            let (_, code) = openai_kind(status, message);
            ChunkWriter::error(message, "upstream_error", code, out);
            self.ended = true;
            self.failure = Some(format!("the provider's stream carried an error: {message}"));
            return;
        }
        if !self.role_sent {
            if let Some(r) = v
                .get("responseId")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                self.writer.id = format!("chatcmpl-{r}");
            }
            if let Some(m) = v
                .get("modelVersion")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
            {
                self.writer.model = m.to_owned();
            }
            self.role_sent = true;
            self.writer.role(out);
        }
        if let Some(meta) = v.get("usageMetadata") {
            self.usage = Some(usage_of(meta));
        }
        let candidate = v.get("candidates").and_then(Value::as_array).and_then(|c| {
            c.iter()
                .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        });
        let Some(candidate) = candidate else {
            if v.pointer("/promptFeedback/blockReason").is_some() && !self.finished {
                self.finished = true;
                self.writer.finish("content_filter", out);
            }
            return;
        };
        let parts = read_parts(candidate.get("content").unwrap_or(&Value::Null));
        if !parts.reasoning.is_empty() {
            self.writer.reasoning(&parts.reasoning, out);
        }
        if !parts.text.is_empty() {
            self.writer.content(&parts.text, out);
        }
        for (id, name, arguments) in parts.calls {
            let index = self.tool_calls;
            self.tool_calls += 1;
            let id = id.unwrap_or_else(|| made_up_id(index));
            self.writer
                .tool_call(index as u32, Some((&id, &name)), &arguments, out);
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            if !self.finished {
                self.finished = true;
                self.writer
                    .finish(super::finish_reason(reason, self.tool_calls > 0), out);
            }
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

impl StreamTranslator for GeminiToOpenAi {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        let parsed = self.parser.feed(chunk, &mut self.frames);
        self.drain(&mut out);
        if parsed.is_err() && !self.ended {
            let message = format!(
                "the provider sent an event longer than {} bytes (server.max_event_bytes)",
                self.max_event
            );
            ChunkWriter::error(&message, "upstream_error", "upstream_event_too_large", &mut out);
            self.ended = true;
            self.failure = Some(message);
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
        let _ = self.parser.finish(&mut self.frames);
        self.drain(&mut out);
        if self.ended {
            return out;
        }
        self.ended = true;
        if self.finished {
            if self.include_usage {
                self.writer
                    .usage(self.usage.clone().unwrap_or_default(), &mut out);
            }
            ChunkWriter::done(&mut out);
        } else {
            self.failure = Some("the provider's stream ended before its finishReason".to_owned());
            ChunkWriter::error(
                "the provider's stream ended before its finishReason",
                "upstream_error",
                "upstream_stream_error",
                &mut out,
            );
        }
        out
    }
}
