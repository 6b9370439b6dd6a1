//! Server-Sent Events: an incremental parser for upstream streams and encoders for what moat sends.
//!
//! The parser follows the line rules of the WHATWG HTML specification ("Parsing an event stream"),
//! with three deliberate differences that suit a relay better than a browser:
//! - a stream that ends in the middle of an event still dispatches it if it has data (the spec
//!   drops it), because an upstream that forgot the final blank line still sent a real chunk;
//! - [`SseEvent::id`] and [`SseEvent::retry`] are what *this* event's lines said; the spec's
//!   persistent "last event ID" is available from [`SseParser::last_event_id`];
//! - lines and events are bounded ([`SseParser::with_max_line`]), so a hostile upstream cannot make
//!   moat buffer without limit.
//!
//! [`EventBoundaries`] finds where events end without decoding them, for the relay, which passes the
//! provider's bytes through as they are and holds back only an unfinished (bounded) event.

mod boundaries;
mod encode;
mod parser;

pub use boundaries::{event_start, EventBoundaries, EventTooLarge, DEFAULT_MAX_EVENT};
pub use encode::{encode_comment, encode_data, encode_event, DONE};
pub use parser::{SseError, SseParser, DEFAULT_MAX_LINE};

/// What the parser yields, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseFrame {
    Event(SseEvent),
    /// A `:` line, without the colon and one following space. Upstreams use these as keep-alives
    /// (`: OPENROUTER PROCESSING`); a relay must skip them rather than parse them as JSON.
    Comment(String),
}

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name; `None` means the default type, `message`.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    pub id: Option<String>,
    /// Reconnection time in milliseconds.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// An unnamed event carrying `data`, the only kind OpenAI-style streams use.
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            ..Self::default()
        }
    }

    /// The `data: [DONE]` sentinel that ends OpenAI-style streams.
    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }
}

#[cfg(test)]
mod tests;
