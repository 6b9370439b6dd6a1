//! Anthropic Messages ⇄ OpenAI chat.
//!
//! Outbound (moatd → an Anthropic provider): [`to_messages_request`], [`to_chat_response`],
//! [`AnthropicToOpenAi`] for streams, [`error_to_openai`] for error bodies and [`models_to_openai`]
//! for `GET /v1/models`. Inbound (an Anthropic client → moatd's `POST /v1/messages`):
//! [`to_chat_request`], [`to_messages_response`], [`OpenAiToAnthropic`] for streams and
//! [`error_body`] for moatd's own errors.
//!
//! What does not map is dropped rather than refused, and docs/PROVIDERS.md lists it.

mod inbound;
mod outbound;
mod stream_in;
mod stream_out;
mod types;

pub use inbound::{error_body, error_type_for_status, to_chat_request, to_messages_response};
pub(crate) use outbound::parse_data_url as outbound_parse_data_url;
pub use outbound::{
    error_to_openai, models_from_openai, models_to_openai, to_chat_response, to_messages_request,
    DEFAULT_MAX_TOKENS,
};
pub use stream_in::AnthropicToOpenAi;
pub use stream_out::OpenAiToAnthropic;
pub use types::{AnthropicTool, AnthropicUsage, Content, Message, MessagesRequest, MessagesResponse};

/// The `anthropic-version` header moat sends and the API version its translation follows.
pub const API_VERSION: &str = "2023-06-01";

/// OpenAI `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new: the model stopped on its own.
        _ => "stop",
    }
}

/// Anthropic `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

#[cfg(test)]
mod tests;
