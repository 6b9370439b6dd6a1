//! OpenAI's Responses API (`POST /v1/responses`) bridged onto chat completions, for providers that
//! speak only chat (llama.cpp, Ollama, vLLM, Anthropic through its own translation, any `openai` kind).
//!
//! - [`inline_history`] puts the conversation a request continues (`previous_response_id`) into its
//!   own input, so the request carries everything the model will read.
//! - [`to_chat_request`] turns a Responses request, plus the replayed items of the conversation it
//!   continues, into an OpenAI chat request and the full list of input items
//!   the new response was made from (what `GET /v1/responses/{id}/input_items` lists and what the
//!   next turn replays).
//! - [`to_response`] turns a whole chat answer into a Response object.
//! - [`ChatToResponses`] turns a chat SSE stream into the documented Responses event sequence, from
//!   `response.created` to `response.completed` (or `response.incomplete` / `response.failed`), with
//!   one response id throughout, and keeps the final Response object for the conversation store.
//!
//! What does not map is refused with a message naming it (built-in tools, `background`,
//! `conversation`, stored `prompt` templates, file ids), never silently dropped when it would change
//! the answer; docs/PROVIDERS.md lists it.

mod envelope;
mod items;
mod request;
mod stream;
mod types;

pub use envelope::{to_response, usage_object, Envelope};
pub use items::ItemIds;
pub use request::{inline_history, to_chat_request, Bridged};
pub use stream::{ChatToResponses, MAX_OUTPUT_BYTES};
pub use types::{Input, ResponsesRequest};

#[cfg(test)]
mod tests;
