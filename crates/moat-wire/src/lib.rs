//! Wire types and codecs for the LLM APIs moat speaks.
//!
//! This crate knows what the bytes between clients, moat and providers look like, and nothing
//! else: it does no I/O, holds no state beyond a parser's buffer, and every function is a pure
//! transformation of bytes and structs, so the crates above it can be tested without a network.
//!
//! - [`openai`]: request and response bodies of the OpenAI API (chat, completions, embeddings,
//!   models) with OpenRouter's extensions. Unknown fields survive a round trip.
//! - [`error`]: the OpenAI error shape, for errors moat makes and errors upstreams send.
//! - [`sse`]: an incremental Server-Sent-Events parser and encoders.
//! - [`usage`]: cheap extraction of token usage and cost from chunks and bodies in passing.
//!
//! Relaying a stream: parse what the upstream sends, skip keep-alive comments, note the usage.
//!
//! ```
//! use moat_wire::sse::{SseFrame, SseParser};
//! use moat_wire::usage::usage_from_chunk;
//!
//! let upstream: &[&[u8]] = &[
//!     b": OPENROUTER PROCESSING\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n",
//!     b"\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,",
//!     b"\"total_tokens\":10,\"cost\":0.00002}}\r\n\r\ndata: [DONE]\n\n",
//! ];
//! let mut parser = SseParser::new();
//! let mut frames = Vec::new();
//! for chunk in upstream {
//!     parser.feed(chunk, &mut frames)?;
//! }
//! parser.finish(&mut frames)?;
//!
//! let mut usage = None;
//! for frame in &frames {
//!     match frame {
//!         SseFrame::Comment(_) => continue,
//!         SseFrame::Event(event) if event.is_done() => break,
//!         SseFrame::Event(event) => usage = usage_from_chunk(&event.data).or(usage),
//!     }
//! }
//! let usage = usage.unwrap_or_default();
//! assert_eq!(usage.total_tokens, 10);
//! assert_eq!(usage.cost, Some(0.00002));
//! # Ok::<(), moat_wire::sse::SseError>(())
//! ```

pub mod edit;
pub mod error;
pub mod openai;
pub mod sse;
pub mod usage;

#[cfg(test)]
mod test_support;
