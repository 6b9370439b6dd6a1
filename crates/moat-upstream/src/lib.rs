//! Talking to LLM providers: one pooled HTTP client per provider with TLS that always verifies,
//! time-outs for every phase, retries with back-off, and a relay that streams a provider's answer to
//! the client byte for byte while reading its usage on the way past.
//!
//! The gateway builds one [`Upstream`] per configured provider at start, then for each attempt calls
//! [`Upstream::send_with_retries`] and hands a successful response to [`relay::relay_stream`] (streamed
//! answers) or [`relay::read_body`] (whole answers).
//!
//! What differs between provider kinds (paths, credentials, bodies, answers, errors, model lists,
//! defaults) lives in one [`adapter::ProviderAdapter`] per kind, registered in
//! [`adapter::registry`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), moat_upstream::UpstreamError> {
//! use moat_upstream::{Upstream, UpstreamSettings};
//! let up = Upstream::new(UpstreamSettings::new("local", "http://127.0.0.1:8080/v1"))?;
//! let resp = up.send_with_retries("/models", None, false, &http::HeaderMap::new()).await?;
//! let body = moat_upstream::relay::read_body(resp, up.settings()).await?;
//! # let _ = body; Ok(()) }
//! ```

pub mod adapter;
mod client;
pub mod credentials;
mod error;
pub mod relay;
pub mod tls;
pub mod translating;
pub mod worker;

pub use adapter::AuthStyle;
pub use client::{Timeouts, Upstream, UpstreamSettings, FORWARDED_HEADERS};
pub use error::{Phase, UpstreamError};
/// A provider's response once its headers are in (its body is read by [`relay`]).
pub use reqwest::Response as UpstreamResponse;
/// URL type used for provider base URLs (re-exported so callers validate with the same parser).
pub use reqwest::Url;
