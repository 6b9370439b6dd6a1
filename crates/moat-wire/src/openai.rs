//! OpenAI-compatible request and response bodies, including OpenRouter's extensions, as serde types.
//!
//! Every struct keeps the fields it does not know in a flattened `extra` map, so a body that passes
//! through moat comes out with the same members it went in with, whatever the provider added.
//!
//! Two normalizations happen on a round trip, and only these two:
//! - an explicit `null` on a typed optional field (`"stop": null`) deserializes to `None` and is then
//!   left out on serialization; the one exception is [`ErrorDetail`](crate::error::ErrorDetail), whose
//!   `message`, `type`, `code` and `param` keys are always written because that is OpenAI's error shape;
//! - numbers take the type of the field they land in, so `"temperature": 1` comes back as `1.0`.
//!
//! Fields that are polymorphic on the wire (`tool_choice`, `response_format`, error codes that are
//! strings at OpenAI and integers at OpenRouter) are `serde_json::Value` rather than a guess.

mod chat;
mod chunk;
mod completions;
mod embeddings;
mod models;
mod openrouter;
mod tools;
mod usage;

pub use chat::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart, ImageUrl,
    MessageContent, Stop, StreamOptions,
};
pub use chunk::{ChatCompletionChunk, ChunkChoice, Delta};
pub use completions::{CompletionChoice, CompletionRequest, CompletionResponse, PromptInput};
pub use embeddings::{Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingVector};
pub use models::{Model, ModelList, ModelPricing};
pub use openrouter::{MaxPrice, ProviderPreferences, Reasoning, UsageAccounting};
pub use tools::{FunctionCall, FunctionCallDelta, FunctionDefinition, Tool, ToolCall, ToolCallDelta};
pub use usage::{CompletionTokensDetails, CostDetails, PromptTokensDetails, Usage};

#[cfg(test)]
pub(crate) mod proptests;
#[cfg(test)]
mod tests;
