//! AWS Bedrock Runtime's Converse API ⇄ OpenAI chat: `POST /model/{id}/converse` and
//! `/converse-stream` requests, their answers (ConverseStream's in the binary event-stream framing,
//! decoded by [`crate::eventstream`]), tools included, and Bedrock's errors.
//!
//! Converse is one request shape for every model family on Bedrock (Anthropic, Meta, Mistral,
//! Amazon Nova, …); model-specific members travel in `additionalModelRequestFields`.

mod request;
mod response;
mod stream;

pub use request::to_converse_request;
pub use response::{error_to_openai, to_chat_response};
pub use stream::BedrockToOpenAi;

/// OpenAI `finish_reason` for a Converse `stopReason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        // end_turn, stop_sequence and reasons added later: the model stopped on its own.
        _ => "stop",
    }
}

#[cfg(test)]
mod tests;
