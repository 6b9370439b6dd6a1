//! Ollama's native API ⇄ OpenAI chat: requests to `POST /api/chat`, its NDJSON answers (streamed or
//! one object), its `{"error": "…"}` errors and its `GET /api/tags` model list.
//!
//! Ollama's `/v1` OpenAI-compatible endpoint needs none of this (use `kind = "openai"` for it); the
//! native API is what every Ollama version has, and reports exact prompt and output token counts.

mod request;
mod response;

pub use request::to_chat_body;
pub use response::{error_to_openai, tags_to_openai, to_chat_response, OllamaToOpenAi};

#[cfg(test)]
mod tests;
