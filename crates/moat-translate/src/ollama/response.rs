//! Ollama's answers → OpenAI: the final (or only) `/api/chat` object, the NDJSON stream, errors and
//! the `/api/tags` model list.

use moat_wire::error::ErrorBody;
use moat_wire::openai::{
    ChatCompletionResponse, ChatMessage, Choice, FunctionCall, MessageContent, Model, ModelList, ToolCall,
    Usage,
};
use serde_json::{Map, Value};

use crate::openai_out::ChunkWriter;
use crate::{LineSplitter, StreamTranslator, TranslateError};
use moat_wire::sse::DEFAULT_MAX_EVENT;

/// OpenAI usage from a final Ollama object: `prompt_eval_count` and `eval_count`.
fn usage_of(v: &Value) -> Usage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage::new(n("prompt_eval_count"), n("eval_count"))
}

fn finish_reason(v: &Value, tool_calls: bool) -> &'static str {
    if tool_calls {
        return "tool_calls";
    }
    match v.get("done_reason").and_then(Value::as_str) {
        Some("length") => "length",
        _ => "stop",
    }
}

/// The tool calls of one Ollama message, with ids made up where Ollama gives none.
fn tool_calls(message: &Value, first_index: usize) -> Vec<ToolCall> {
    let Some(calls) = message.get("tool_calls").and_then(Value::as_array) else {
        return Vec::new();
    };
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = c.get("function").unwrap_or(&Value::Null);
            let arguments = match f.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "{}".to_owned(),
            };
            ToolCall {
                id: c
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{}", first_index + i), str::to_owned),
                r#type: "function".into(),
                function: FunctionCall {
                    name: f.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
                    arguments,
                    extra: Map::new(),
                },
                extra: Map::new(),
            }
        })
        .collect()
}

/// A non-streamed `/api/chat` answer as an OpenAI `chat.completion`. Ollama has no response id, so
/// the caller gives one (and the time, which Ollama writes as RFC 3339 and OpenAI as Unix seconds).
pub fn to_chat_response(
    body: &[u8],
    id: &str,
    created: u64,
) -> Result<ChatCompletionResponse, TranslateError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::InvalidResponse(format!("provider sent malformed JSON: {e}")))?;
    let message = v.get("message").unwrap_or(&Value::Null);
    let calls = tool_calls(message, 0);
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let thinking = message
        .get("thinking")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let created = v
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(crate::unix_seconds)
        .unwrap_or(created);
    let finish = finish_reason(&v, !calls.is_empty());
    Ok(ChatCompletionResponse {
        id: id.to_owned(),
        object: "chat.completion".into(),
        created,
        model: v.get("model").and_then(Value::as_str).unwrap_or("").to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ChatMessage {
                role: "assistant".into(),
                content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
                tool_calls: (!calls.is_empty()).then_some(calls),
                reasoning: thinking,
                ..ChatMessage::default()
            },
            finish_reason: Some(finish.to_owned()),
            ..Choice::default()
        }],
        usage: Some(usage_of(&v)),
        ..ChatCompletionResponse::default()
    })
}

/// Ollama's NDJSON stream → OpenAI chunks, incrementally.
#[derive(Debug)]
pub struct OllamaToOpenAi {
    lines: LineSplitter,
    pending: Vec<Vec<u8>>,
    writer: ChunkWriter,
    include_usage: bool,
    role_sent: bool,
    tool_calls: usize,
    /// The final object (Ok) or an error (Err, with why) was seen: nothing more is owed.
    ended: Option<Result<(), String>>,
    max_event: usize,
}

impl OllamaToOpenAi {
    /// `id` and `created` stamp every chunk (Ollama's stream has no id); `include_usage` is the
    /// client's `stream_options.include_usage`.
    pub fn new(id: impl Into<String>, created: u64, include_usage: bool) -> Self {
        OllamaToOpenAi {
            lines: LineSplitter::with_max_line(DEFAULT_MAX_EVENT),
            pending: Vec::new(),
            writer: ChunkWriter {
                id: id.into(),
                created,
                ..ChunkWriter::default()
            },
            include_usage,
            role_sent: false,
            tool_calls: 0,
            ended: None,
            max_event: DEFAULT_MAX_EVENT,
        }
    }

    /// Bounds one input line to `max_event` bytes; a longer one ends the output with an error event.
    pub fn with_max_event(mut self, max_event: usize) -> Self {
        self.lines = LineSplitter::with_max_line(max_event);
        self.max_event = max_event;
        self
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if self.ended.is_some() {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        if let Some(error) = v.get("error") {
            let message = error.as_str().map_or_else(|| error.to_string(), str::to_owned);
            ChunkWriter::error(&message, "upstream_error", "upstream_stream_error", out);
            self.ended = Some(Err(format!("the provider's stream carried an error: {message}")));
            return;
        }
        if self.writer.model.is_empty() {
            if let Some(model) = v.get("model").and_then(Value::as_str) {
                self.writer.model = model.to_owned();
            }
        }
        if !self.role_sent {
            self.role_sent = true;
            self.writer.role(out);
        }
        let message = v.get("message").unwrap_or(&Value::Null);
        if let Some(t) = message
            .get("thinking")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.writer.reasoning(t, out);
        }
        if let Some(t) = message
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.writer.content(t, out);
        }
        for call in tool_calls(message, self.tool_calls) {
            let index = self.tool_calls as u32;
            self.tool_calls += 1;
            self.writer.tool_call(
                index,
                Some((&call.id, &call.function.name)),
                &call.function.arguments,
                out,
            );
        }
        if v.get("done").and_then(Value::as_bool) == Some(true) {
            self.writer.finish(finish_reason(&v, self.tool_calls > 0), out);
            if self.include_usage {
                self.writer.usage(usage_of(&v), out);
            }
            ChunkWriter::done(out);
            self.ended = Some(Ok(()));
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let lines = std::mem::take(&mut self.pending);
        for line in &lines {
            self.line(line, out);
        }
    }
}

impl StreamTranslator for OllamaToOpenAi {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended.is_some() {
            return out;
        }
        let fits = self.lines.feed(chunk, &mut self.pending);
        self.drain(&mut out);
        if !fits && self.ended.is_none() {
            let message = format!(
                "the provider sent a line longer than {} bytes (server.max_event_bytes)",
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
        self.lines.finish(&mut self.pending);
        self.drain(&mut out);
        if self.ended.is_none() {
            let message = "the provider's stream ended before its final object";
            ChunkWriter::error(message, "upstream_error", "upstream_stream_error", &mut out);
            self.ended = Some(Err(message.to_owned()));
        }
        out
    }

    fn stopped(&self) -> Option<Result<(), String>> {
        self.ended.clone()
    }
}

/// Ollama's error (`{"error": "model 'x' not found"}`) as an OpenAI error body; the status stays.
pub fn error_to_openai(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let message = ErrorBody::from_slice(body)
        .map(|b| b.error.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("provider answered {status}"));
    let (kind, code) = match status {
        400 => ("invalid_request_error", "invalid_request"),
        401 | 403 => ("authentication_error", "invalid_api_key"),
        404 => ("invalid_request_error", "model_not_found"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        _ => ("server_error", "upstream_error"),
    };
    (status, ErrorBody::new(message, kind, Some(code)).to_json_bytes())
}

/// `GET /api/tags` (`{"models":[{"name","model","modified_at",…}]}`) as an OpenAI model list.
pub fn tags_to_openai(body: &[u8]) -> Result<ModelList, TranslateError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::InvalidResponse(format!("malformed model list: {e}")))?;
    let models = v
        .get("models")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::InvalidResponse("model list has no `models` array".into()))?;
    let data = models
        .iter()
        .filter_map(|m| {
            let id = m.get("model").or_else(|| m.get("name")).and_then(Value::as_str)?;
            let created = m
                .get("modified_at")
                .and_then(Value::as_str)
                .and_then(crate::unix_seconds)
                .unwrap_or(0);
            Some(Model::new(id, created, "ollama"))
        })
        .collect();
    Ok(ModelList::new(data))
}
