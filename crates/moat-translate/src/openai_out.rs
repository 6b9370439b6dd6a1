//! Writing OpenAI `chat.completion.chunk` events, shared by every translator whose output is the
//! OpenAI stream (Anthropic → OpenAI, Ollama → OpenAI).

use moat_wire::error::ErrorBody;
use moat_wire::openai::{ChatCompletionChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta, Usage};
use moat_wire::sse::{encode_data, DONE};

/// The fixed header of every chunk of one answer, and the encoders for its events.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkWriter {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) created: u64,
}

impl ChunkWriter {
    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
            ..ChatCompletionChunk::default()
        }
    }

    fn event(chunk: &ChatCompletionChunk, out: &mut Vec<u8>) {
        if let Ok(json) = serde_json::to_string(chunk) {
            out.extend_from_slice(encode_data(&json).as_bytes());
        }
    }

    /// One event carrying `delta` (and `finish_reason`, when set) for choice 0.
    pub(crate) fn delta(&self, delta: Delta, finish_reason: Option<String>, out: &mut Vec<u8>) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            ..ChunkChoice::default()
        };
        Self::event(&self.chunk(vec![choice], None), out);
    }

    /// The first event: the assistant role with empty content, as OpenAI sends it.
    pub(crate) fn role(&self, out: &mut Vec<u8>) {
        let delta = Delta {
            role: Some("assistant".to_owned()),
            content: Some(String::new()),
            ..Delta::default()
        };
        self.delta(delta, None, out);
    }

    pub(crate) fn content(&self, text: &str, out: &mut Vec<u8>) {
        let delta = Delta {
            content: Some(text.to_owned()),
            ..Delta::default()
        };
        self.delta(delta, None, out);
    }

    pub(crate) fn reasoning(&self, text: &str, out: &mut Vec<u8>) {
        let delta = Delta {
            reasoning: Some(text.to_owned()),
            ..Delta::default()
        };
        self.delta(delta, None, out);
    }

    /// A tool call fragment: the first one of a call carries its id and name.
    pub(crate) fn tool_call(
        &self,
        index: u32,
        id_and_name: Option<(&str, &str)>,
        arguments: &str,
        out: &mut Vec<u8>,
    ) {
        let call = ToolCallDelta {
            index,
            id: id_and_name.map(|(id, _)| id.to_owned()),
            r#type: id_and_name.map(|_| "function".to_owned()),
            function: Some(FunctionCallDelta {
                name: id_and_name.map(|(_, name)| name.to_owned()),
                arguments: Some(arguments.to_owned()),
                ..FunctionCallDelta::default()
            }),
            ..ToolCallDelta::default()
        };
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Delta::default()
        };
        self.delta(delta, None, out);
    }

    pub(crate) fn finish(&self, reason: &str, out: &mut Vec<u8>) {
        self.delta(Delta::default(), Some(reason.to_owned()), out);
    }

    /// The usage event of `stream_options.include_usage`: no choices, only usage.
    pub(crate) fn usage(&self, usage: Usage, out: &mut Vec<u8>) {
        Self::event(&self.chunk(Vec::new(), Some(usage)), out);
    }

    pub(crate) fn done(out: &mut Vec<u8>) {
        out.extend_from_slice(DONE.as_bytes());
    }

    /// A final error event in the shape moat's relay uses for its own mid-stream failures.
    pub(crate) fn error(message: &str, kind: &str, code: &str, out: &mut Vec<u8>) {
        let body = ErrorBody::new(message, kind, Some(code));
        let json = String::from_utf8_lossy(&body.to_json_bytes()).into_owned();
        out.extend_from_slice(encode_data(&json).as_bytes());
    }
}
