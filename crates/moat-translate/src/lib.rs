//! Translation between the OpenAI chat wire, which is what moatd speaks inside, and the other wire
//! families it talks to or accepts: Anthropic Messages, Ollama's native NDJSON API, Google's Gemini
//! API, AWS Bedrock's Converse API, and Azure OpenAI's errors.
//!
//! Everything here is pure: request and response bodies go in as structs or bytes and come out the
//! same way, and streamed answers go through incremental state machines ([`StreamTranslator`]) that
//! are fed the provider's bytes as they arrive, split anywhere, and give back whole events.
//!
//! - [`anthropic`]: OpenAI chat ⇄ Anthropic Messages, both directions (outbound to an Anthropic
//!   provider, and inbound for clients calling moatd's `POST /v1/messages`), plus error shapes.
//! - [`ollama`]: OpenAI chat → Ollama `/api/chat`, its NDJSON answers → OpenAI, `/api/tags` → models.
//! - [`responses`]: OpenAI's Responses API bridged onto chat completions: requests (with the replayed
//!   conversation), whole answers as Response objects, chat streams as Responses events.
//! - [`gemini`]: OpenAI chat ⇄ Gemini `generateContent` / `streamGenerateContent` (SSE), errors, models.
//! - [`bedrock`]: OpenAI chat ⇄ Bedrock `Converse` / `ConverseStream`, whose binary framing
//!   [`eventstream`] decodes.
//! - [`azure`]: Azure OpenAI's errors (content-filter refusals explained) in OpenAI's shape.
//!
//! ```
//! use moat_translate::anthropic::AnthropicToOpenAi;
//! use moat_translate::StreamTranslator;
//!
//! let mut t = AnthropicToOpenAi::new(1_700_000_000, true);
//! let mut out = Vec::new();
//! for piece in [
//!     &b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"[..],
//!     b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
//!     b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
//!     b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
//! ] {
//!     out.extend(t.feed(piece));
//! }
//! out.extend(t.finish());
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.contains("\"content\":\"Hi\""));
//! assert!(text.contains("\"finish_reason\":\"stop\""));
//! assert!(text.contains("\"prompt_tokens\":5"));
//! assert!(text.ends_with("data: [DONE]\n\n"));
//! ```

pub mod anthropic;
pub mod azure;
pub mod bedrock;
#[cfg(test)]
mod bounded_tests;
mod error;
pub mod eventstream;
pub mod gemini;
mod lines;
pub mod ollama;
mod openai_out;
pub mod responses;
mod time;

pub use error::TranslateError;
pub use lines::LineSplitter;
pub use time::{rfc3339, unix_seconds};

/// An incremental translation of one streamed answer from one wire format to another.
///
/// `feed` takes the provider's bytes exactly as they arrived (an event or line may be split across
/// calls anywhere) and returns whatever complete output they finish; `finish` is called once at the
/// end of the input and returns what is still owed (closing events, an error when the provider's
/// stream stopped early). Output is always whole events, never a piece of one.
///
/// What a translator holds is bounded: an input event (or NDJSON line) longer than its bound
/// (`with_max_event`, default [`moat_wire::sse::DEFAULT_MAX_EVENT`]) ends the output with an error
/// event; [`StreamTranslator::stopped`] then says why, and the caller stops reading the provider.
pub trait StreamTranslator: Send {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8>;
    fn finish(&mut self) -> Vec<u8>;
    /// `None` while more output may come; `Some(Ok(()))` once the final event is written;
    /// `Some(Err(reason))` once the output ended early with an error event.
    fn stopped(&self) -> Option<Result<(), String>>;
}
