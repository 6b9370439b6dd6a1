//! Google's Gemini API (and Vertex AI's Gemini endpoints, the same wire) ⇄ OpenAI chat:
//! `generateContent` and `streamGenerateContent?alt=sse` requests and answers, tools included, the
//! `{"error":{"code","message","status"}}` errors and the `GET /models` list.
//!
//! Gemini streams are SSE whose every event is a whole `GenerateContentResponse` and which end when
//! the connection closes (no `[DONE]`); [`GeminiToOpenAi`] turns them into OpenAI chunks.

mod request;
mod response;
mod stream;

pub use request::to_generate_request;
pub use response::{error_to_openai, models_to_openai, to_chat_response};
pub use stream::GeminiToOpenAi;

/// OpenAI `finish_reason` for a Gemini `finishReason` (`tool_calls` when the answer called tools).
pub fn finish_reason(reason: &str, called_tools: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        _ if called_tools => "tool_calls",
        // STOP, OTHER, MALFORMED_FUNCTION_CALL and reasons added later: the model stopped.
        _ => "stop",
    }
}

#[cfg(test)]
mod tests;
