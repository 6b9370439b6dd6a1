//! Test support for moat: an upstream emulator that speaks OpenAI's and OpenRouter's wire formats on
//! loopback, over plain HTTP or verified HTTPS with a throwaway certificate authority.
//!
//! The emulator answers `GET /models`, `POST /chat/completions`, `POST /completions` and
//! `POST /embeddings` under both `/v1` and `/api/v1`, streamed or not. Answers are deterministic
//! (`"You said: <last user message>"`), so a reply through the gateway can be compared with a direct
//! one. A request scripts failures and timing for itself with an `"emulate": {…}` member: error
//! statuses (optionally only the first `times`), delays, pauses with keep-alive comments, mid-stream
//! error chunks and connection resets; `tool_call` makes the answer call a tool (until the
//! conversation ends with a tool result, which is answered in text); `echo_auth` quotes the
//! `Authorization` header received in an error, as some providers do. `n` and `best_of` are
//! honoured in usage and cost (each output is billed), and a whole answer carries `n` choices. For
//! fault injection a stream can also be a flood of any size (`flood`, `flood_bytes`: valid events,
//! lines that never end an event, a line that never ends, or random bytes) or trickle one byte per
//! frame (`byte_delay_ms`), and [`RawUpstream`] misbehaves below HTTP (silence, garbage, resets).
//!
//! The same server also speaks Anthropic's Messages API (`POST /v1/messages`, and `GET /v1/models`
//! when the request carries `anthropic-version`; the key and `anthropic-version` are checked) and
//! Ollama's native API (`POST /api/chat` with NDJSON streaming, `GET /api/tags`, `GET /api/version`),
//! with the same answers and directives, for testing moatd's translation to those wires (and the
//! gateway's provider conformance suite); and OpenAI's Responses API (`POST /v1/responses`, whole and
//! streamed, keeping no state) for moatd's native relay. `strict` makes it refuse request members the
//! wire does not define, as strict servers do.
//!
//! And the enterprise clouds, each checked by its official SDK (`crates/moatd/tests/cloud_sdk.rs`):
//! Azure OpenAI's deployment paths with `api-version` and content-filter refusals, Bedrock's Converse
//! and ConverseStream (binary event-stream answers, every SigV4 signature verified), and Gemini /
//! Vertex AI's `generateContent` and `streamGenerateContent?alt=sse`; plus the identity services
//! behind them ([`cloud`]: Entra ID, Google OAuth with a service account's JWT, AWS STS). Wires whose
//! requests cannot carry an `emulate` member take it from [`Emulator::set_directive`].
//!
//! ```no_run
//! use moat_testkit::{Emulator, EmulatorOptions, TestCa};
//!
//! # async fn demo() -> Result<(), moat_testkit::Error> {
//! let ca = TestCa::new("moat test CA")?;
//! let opts = EmulatorOptions {
//!     tls: Some(ca.issue(&["localhost", "127.0.0.1"])?),
//!     api_key: Some("sk-test".to_owned()),
//!     ..EmulatorOptions::default()
//! };
//! let upstream = Emulator::start(opts).await?;
//! // Point the code under test at `upstream.base_url()`, trusting `ca.cert_pem()`,
//! // then look at `upstream.requests()` and the stream counters.
//! upstream.shutdown().await;
//! # Ok(()) }
//! ```

mod anthropic;
mod azure;
mod bedrock;
pub mod cloud;
mod completion;
mod directive;
mod embeddings;
mod error;
mod gemini;
mod handler;
mod hostile;
mod ollama;
mod prefix_cache;
mod raw;
mod responses;
mod server;
mod stream;
mod strict;
mod tls;
mod wire;

pub use error::Error;
pub use prefix_cache::PrefixCacheOptions;
pub use raw::{RawScript, RawUpstream};
pub mod services;
pub use server::{serve, serve_forever, Emulator, EmulatorOptions, RecordedRequest};
pub use services::{free_port, Postgres, Valkey};
pub use stream::KEEPALIVE_COMMENT;
pub use tls::{ServerIdentity, TestCa};

/// Every response body the emulator sends; the error is how a stream breaks its connection on purpose.
pub(crate) type ResponseBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::io::Error>;
