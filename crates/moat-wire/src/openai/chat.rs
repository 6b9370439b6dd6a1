//! Chat completions (`POST /v1/chat/completions`): the request, its messages, and the non-streamed response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ProviderPreferences, Reasoning, Tool, ToolCall, Usage, UsageAccounting};

/// A chat completions request as OpenAI defines it, plus OpenRouter's routing and accounting fields.
///
/// The fields typed here are the ones moat reads or rewrites (routing, budgets, cache partitions,
/// privacy scanning); everything else travels in `extra` untouched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// Optional because OpenRouter accepts a request that names only `models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    /// OpenRouter: ordered fallback list, tried in turn when a model is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Needed to get usage (and so cost) at the end of a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Legacy output cap; still what most OpenAI-compatible servers read. Input to cost estimates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// OpenAI's newer output cap, which includes reasoning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Not OpenAI, but accepted by OpenRouter, vLLM, llama.cpp and Ollama.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Number of choices; multiplies the output a reservation must cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `"none" | "auto" | "required"` or an object naming a function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// `{"type": "json_object"}` or a JSON schema; passed through as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// End-user id; OpenRouter also uses it to partition its prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// OpenAI's reasoning knob (`"low" | "medium" | "high"`); OpenRouter's is [`Reasoning`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// OpenAI: the key its prompt cache is partitioned by; moat sets it per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// vLLM/SGLang: salt mixed into prefix-cache hashes; moat sets it per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_salt: Option<String>,
    /// llama.cpp server: whether to reuse the slot's cached prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_prompt: Option<bool>,
    /// OpenRouter: which providers may serve the request and how to choose among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderPreferences>,
    /// OpenRouter: unified reasoning settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// OpenRouter: ask for cost accounting in the response's usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageAccounting>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatCompletionRequest {
    /// A minimal request for one model; the CLI and tests start from this.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: Some(model.into()),
            messages,
            ..Self::default()
        }
    }

    /// Whether the caller asked for a streamed answer (absent means no, as at OpenAI).
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

/// `"stop"` is either one sequence or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Stream settings; `include_usage` makes the server send a final chunk carrying usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One message of a conversation, in a request or in a response's choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// A string rather than an enum: providers add roles (`developer`, `tool`, `ipython`) faster than
    /// moat could list them, and moat never needs to reject one.
    pub role: String,
    /// Absent or `null` on an assistant message that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On a `tool` message: which call this is the result of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// OpenRouter: the model's reasoning text, when it was asked for and not excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A message with plain-text content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Some(MessageContent::Text(content.into())),
            ..Self::default()
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Message content: a plain string, or a list of typed parts (text, images, audio, files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// Every piece of text in the content, in order; what privacy scanning and token estimates read.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let (one, parts) = match self {
            MessageContent::Text(text) => (Some(text.as_str()), &[][..]),
            MessageContent::Parts(parts) => (None, parts.as_slice()),
        };
        one.into_iter()
            .chain(parts.iter().filter_map(|part| part.text.as_deref()))
    }
}

impl From<String> for MessageContent {
    fn from(text: String) -> Self {
        MessageContent::Text(text)
    }
}

impl From<&str> for MessageContent {
    fn from(text: &str) -> Self {
        MessageContent::Text(text.to_owned())
    }
}

/// One part of multimodal content.
///
/// A struct keyed by `type` rather than an enum, so part types moat has never heard of (`input_audio`,
/// `file`, `video_url`, …) still pass through with all their members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    pub r#type: String,
    /// Set when `type` is `"text"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Set when `type` is `"image_url"`; the URL may be a `data:` URL holding the image itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContentPart {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            r#type: "text".to_owned(),
            text: Some(text.into()),
            ..Self::default()
        }
    }

    pub fn image_url(url: impl Into<String>) -> Self {
        let image = ImageUrl {
            url: url.into(),
            detail: None,
            extra: Map::new(),
        };
        Self {
            r#type: "image_url".to_owned(),
            image_url: Some(image),
            ..Self::default()
        }
    }
}

/// The image of an `image_url` content part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    pub url: String,
    /// `"auto" | "low" | "high"`: changes how many tokens the image costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A non-streamed chat completions response.
///
/// `id`, `object`, `created` and `model` default when missing because small local servers omit
/// some of them, and a missing id is no reason to lose an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// What settlement bills from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// OpenRouter: which provider actually served the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One answer of a non-streamed response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: ChatMessage,
    /// `"stop" | "length" | "tool_calls" | "content_filter" | "error"`; absent while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
