//! Provider adapters: everything one provider kind (`kind = "openai"`, `"anthropic"`, …) knows about
//! its wire, behind one trait, so that nothing else matches on the kind.
//!
//! An adapter owns its kind's configuration defaults (base URL, how the credential is presented,
//! the cache-partition member, the health probe's path), the way a request goes out (path, members
//! the kind accepts, body, provider preferences) and the way the answer comes back (whole, streamed,
//! errors, model list), all in OpenAI's chat wire, which is what moatd speaks inside. The kinds are
//! registered in one place, [`registry`]; each passes the conformance suite in
//! `crates/moat-gateway/tests/conformance.rs`.
//!
//! Adding a provider is one module here (an implementation of [`ProviderAdapter`], usually a thin
//! layer over translations in `moat_translate`), one line in [`registry`], and one entry in the
//! conformance suite.
//!
//! ```
//! use std::borrow::Cow;
//! use moat_upstream::adapter::{self, WireRequest};
//! use moat_wire::openai::ChatCompletionRequest;
//!
//! let ollama = adapter::kind("ollama").unwrap().adapter();
//! let chat: ChatCompletionRequest = serde_json::from_str(
//!     r#"{"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}"#,
//! ).unwrap();
//! let out = adapter::outbound(&ollama, "local", WireRequest::Chat(Cow::Borrowed(&chat)), "r1").unwrap();
//! assert_eq!(out.path, "/api/chat");
//! assert!(String::from_utf8_lossy(&out.body).contains("\"stream\":false"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use moat_policy::cache::CachePartition;
use moat_translate::{StreamTranslator, TranslateError};
use moat_wire::edit::Unique;
use moat_wire::openai::{
    ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ModelList, ProviderPreferences,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::UpstreamError;

mod anthropic;
mod auth;
mod azure;
mod bedrock;
mod gemini;
mod ollama;
mod openai;
mod options;
pub mod registry;

pub use auth::AuthStyle;
pub use options::{AdapterOptions, AuthContext, EntraOptions};
pub use registry::{kind, kinds, Kind};

/// One provider kind's wire knowledge. Every method has a default that describes OpenAI's wire, so
/// an OpenAI-compatible kind overrides only what differs; a kind on another wire overrides the
/// request and answer methods together, and the conformance suite checks that they agree.
pub trait ProviderAdapter: Send + Sync + fmt::Debug {
    /// The `kind` string in the config file.
    fn kind(&self) -> &'static str;

    /// `base_url` when the config gives none; `None` makes `base_url` required.
    fn default_base_url(&self) -> Option<&'static str> {
        None
    }

    /// The base URL this provider's options imply when the config gives none (Bedrock's regional
    /// endpoint, Vertex AI's project path); by default [`ProviderAdapter::default_base_url`].
    fn base_url(&self) -> Option<String> {
        self.default_base_url().map(str::to_owned)
    }

    /// A credential computed per request (an OAuth token, a SigV4 signature), when the provider
    /// uses one; `None` when its `api_key` (or nothing) is the credential. Built once at start.
    fn request_auth(
        &self,
        _ctx: &AuthContext<'_>,
    ) -> Result<Option<Arc<dyn crate::credentials::RequestAuth>>, crate::credentials::CredentialError> {
        Ok(None)
    }

    /// How the provider's credential (and any protocol header) is sent.
    fn auth_style(&self) -> AuthStyle {
        AuthStyle::Bearer
    }

    /// The request member carrying each tenant's prompt-cache partition when the config names none,
    /// given the provider's host (api.openai.com partitions by `prompt_cache_key`).
    fn default_partition(&self, host: &str) -> CachePartition {
        CachePartition::default_for(false, host)
    }

    /// The health probe's path (a `GET`, any 2xx is healthy) when the config names none, given the
    /// base URL's path (e.g. `/v1`). It must have no side effects and cost nothing.
    fn health_path(&self, base_path: &str) -> String {
        // OpenAI-compatible servers (llama.cpp, vLLM, Ollama's /v1, OpenAI) list their models here.
        format!("{}/models", base_path.trim_end_matches('/'))
    }

    /// The provider preferences (OpenRouter's `provider` member) to send, given the client's and the
    /// gateway's data-retention settings. Only kinds that act on them add anything.
    fn provider_preferences(
        &self,
        client: &Option<ProviderPreferences>,
        _retention: Retention,
    ) -> Option<ProviderPreferences> {
        client.clone()
    }

    /// Whether this kind takes a body in its own wire at `path` (relayed as it is, the answer too):
    /// `/responses` for kinds with OpenAI's Responses API, `/messages/count_tokens` for Anthropic.
    fn native(&self, _path: &str) -> bool {
        false
    }

    /// Whether this kind's body is the request's own OpenAI JSON at [`WireRequest::path`] (the
    /// default [`ProviderAdapter::encode`]), so that a request the client sent in that wire may go out
    /// as the client's own bytes with the gateway's members edited in ([`outbound_edited`]). A kind
    /// that overrides `encode` leaves this false, the default.
    fn passes_through(&self) -> bool {
        false
    }

    /// Member hygiene: drops or renames the members this kind does not accept, on the request about
    /// to be encoded for it. The request is borrowed and copied only when something must change
    /// ([`Cow::to_mut`]), so the client's request stays whole for the next target. Default: every
    /// member is forwarded.
    fn members<'a>(&self, request: WireRequest<'a>) -> WireRequest<'a> {
        request
    }

    /// The path below `base_url` and the body to send for `request`.
    fn encode(&self, request: &WireRequest<'_>) -> Result<Encoded, EncodeError> {
        if let WireRequest::Native { path, .. } = request {
            return encode_native(self, path, request);
        }
        Ok(Encoded {
            path: Cow::Borrowed(request.path()),
            body: request.to_json()?,
        })
    }

    /// A whole answer as an OpenAI body (`chat.completion`, `text_completion`, embeddings list).
    fn whole(&self, _answer: &Answer, body: Bytes) -> Result<Bytes, TranslateError> {
        Ok(body)
    }

    /// The translator of a streamed answer into OpenAI's SSE chunks; `None` relays it as it comes.
    fn stream(&self, _answer: &Answer) -> Option<Box<dyn StreamTranslator>> {
        None
    }

    /// A provider's error status and body in OpenAI's error shape; `None` passes them on unchanged.
    fn error(&self, _status: u16, _body: &[u8]) -> Option<(u16, Vec<u8>)> {
        None
    }

    /// False when the provider has no model list to fetch (its models appear through aliases only).
    fn lists_models(&self) -> bool {
        true
    }

    /// Where the provider lists its models (`GET`, below `base_url`).
    fn models_path(&self) -> &'static str {
        "/models"
    }

    /// The provider's model list in OpenAI's shape.
    fn model_list(&self, body: &[u8]) -> Result<ModelList, TranslateError> {
        serde_json::from_slice(body).map_err(|e| TranslateError::InvalidResponse(e.to_string()))
    }
}

/// A request in OpenAI's wire, borrowed from the gateway (an adapter copies it only to change it).
#[derive(Debug, Clone)]
pub enum WireRequest<'a> {
    Chat(Cow<'a, ChatCompletionRequest>),
    Completion(Cow<'a, CompletionRequest>),
    Embedding(Cow<'a, EmbeddingRequest>),
    /// A body in a provider's own wire, relayed as it is to the kinds that take it (see
    /// [`ProviderAdapter::native`]), its answer too.
    Native {
        path: &'static str,
        body: Cow<'a, serde_json::Map<String, serde_json::Value>>,
    },
}

/// The default encoding of a native body: as it is, to a kind that takes it.
fn encode_native<A: ProviderAdapter + ?Sized>(
    adapter: &A,
    path: &'static str,
    request: &WireRequest<'_>,
) -> Result<Encoded, EncodeError> {
    if !adapter.native(path) {
        return Err(EncodeError::Unsupported {
            kind: adapter.kind(),
            serves: "its own wire",
            path,
        });
    }
    Ok(Encoded {
        path: Cow::Borrowed(path),
        body: request.to_json()?,
    })
}

impl WireRequest<'_> {
    /// The endpoint below an OpenAI-compatible base URL.
    pub fn path(&self) -> &'static str {
        match self {
            WireRequest::Chat(_) => "/chat/completions",
            WireRequest::Completion(_) => "/completions",
            WireRequest::Embedding(_) => "/embeddings",
            WireRequest::Native { path, .. } => path,
        }
    }

    /// The request as OpenAI's JSON.
    pub fn to_json(&self) -> Result<Bytes, serde_json::Error> {
        match self {
            WireRequest::Chat(r) => serde_json::to_vec(r),
            WireRequest::Completion(r) => serde_json::to_vec(r),
            WireRequest::Embedding(r) => serde_json::to_vec(r),
            WireRequest::Native { body, .. } => serde_json::to_vec(body),
        }
        .map(Bytes::from)
    }

    /// Whether nothing was copied to be changed (member hygiene left the request as it came).
    fn is_borrowed(&self) -> bool {
        matches!(
            self,
            WireRequest::Chat(Cow::Borrowed(_))
                | WireRequest::Completion(Cow::Borrowed(_))
                | WireRequest::Embedding(Cow::Borrowed(_))
        )
    }

    /// The client's bytes `sent` as this request: see [`moat_wire::edit::edit`].
    fn edit(&self, sent: Unique<&[u8]>, fresh: &[&str]) -> Option<Vec<u8>> {
        fn typed<T: Serialize + DeserializeOwned + PartialEq>(
            sent: Unique<&[u8]>,
            request: &T,
            fresh: &[&str],
        ) -> Option<Vec<u8>> {
            let body = moat_wire::edit::edit(&sent, request, fresh)?;
            // What goes out is what was decided on: every member the gateway changed is in `fresh`.
            debug_assert!(
                serde_json::from_slice::<T>(&body).is_ok_and(|b| b == *request),
                "an edited body decodes to its request: {}",
                String::from_utf8_lossy(&body)
            );
            Some(body)
        }
        match self {
            WireRequest::Chat(r) => typed(sent, r.as_ref(), fresh),
            WireRequest::Completion(r) => typed(sent, r.as_ref(), fresh),
            WireRequest::Embedding(r) => typed(sent, r.as_ref(), fresh),
            WireRequest::Native { .. } => None,
        }
    }

    /// The client's `stream_options.include_usage`, which a translated stream honours.
    fn include_usage(&self) -> bool {
        let options = match self {
            WireRequest::Chat(r) => r.stream_options.as_ref(),
            WireRequest::Completion(r) => r.stream_options.as_ref(),
            WireRequest::Embedding(_) | WireRequest::Native { .. } => None,
        };
        options.and_then(|o| o.include_usage).unwrap_or(false)
    }

    /// The chat request, or [`EncodeError::Unsupported`] for a kind that serves chat only.
    pub fn chat_only(&self, kind: &'static str) -> Result<&ChatCompletionRequest, EncodeError> {
        match self {
            WireRequest::Chat(chat) => Ok(chat),
            other => Err(EncodeError::Unsupported {
                kind,
                serves: "chat completions",
                path: other.path(),
            }),
        }
    }
}

/// What an adapter's [`ProviderAdapter::encode`] gives back.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub path: Cow<'static, str>,
    pub body: Bytes,
}

/// Why a request could not be written for a provider. Messages name endpoints and fields, never
/// their contents.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The kind does not serve this endpoint (400 for the client).
    #[error("(kind = \"{kind}\") serves {serves} only, not {path}")]
    Unsupported {
        kind: &'static str,
        serves: &'static str,
        path: &'static str,
    },
    /// The request does not translate to the kind's wire (400 for the client).
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// Serializing failed (a bug: 500).
    #[error("encoding the request: {0}")]
    Json(#[from] serde_json::Error),
}

/// The gateway's data-retention settings, which kinds with per-request preferences pass on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Ask for providers that do not keep or train on prompts (`data_collection = "deny"`).
    pub deny_data_collection: bool,
    /// Ask for zero-data-retention endpoints only.
    pub require_zdr: bool,
}

/// What reading one answer back needs to know about its request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The client's `stream_options.include_usage`.
    pub include_usage: bool,
    /// An id for answers whose wire carries none (moatd's request id stands in).
    pub id: String,
    /// Unix seconds to stamp answers whose wire carries no time.
    pub created: u64,
    /// The most a stream translator holds of one input event or line (`[server] max_event_bytes`).
    pub max_event: usize,
    /// The model as the request named it, for answers whose wire carries none.
    pub model: String,
}

/// One attempt's request, ready to send, with how its answer is read back.
#[derive(Debug)]
pub struct Outbound {
    pub path: Cow<'static, str>,
    pub body: Bytes,
    pub translation: Translation,
}

/// Writes `request` for the provider `provider` of `adapter`'s kind: member hygiene, then the body.
pub fn outbound(
    adapter: &Arc<dyn ProviderAdapter>,
    provider: &str,
    request: WireRequest<'_>,
    request_id: &str,
) -> Result<Outbound, EncodeError> {
    let request = adapter.members(request);
    let Encoded { path, body } = adapter.encode(&request)?;
    Ok(written(adapter, provider, &request, request_id, path, body))
}

/// Bodies shorter than this are encoded rather than edited: editing has a fixed cost (finding the
/// members, about 5,500 instructions) that encoding a short body does not, and saves about 4 of the
/// 12 instructions per byte encoding costs; they break even near 1 KiB (docs/BENCHMARKS.md,
/// "In-place edit").
pub const EDIT_FROM_BYTES: usize = 1024;

/// [`outbound`] for a request decoded as it is from the client's bytes `sent` (OpenAI's wire, no
/// object in it repeating a key: [`moat_wire::edit::parse`]): when `adapter`'s kind
/// passes the request through as it is ([`ProviderAdapter::passes_through`]), its member hygiene
/// has nothing to drop and `sent` is at least [`EDIT_FROM_BYTES`] long, the body is `sent` with only
/// the members named in `fresh` (those the gateway set on `request`) written anew and every other
/// one copied byte for byte ([`moat_wire::edit`]). Otherwise, or when `sent` is anything unusual,
/// `request` is encoded as [`outbound`] does.
pub fn outbound_edited(
    adapter: &Arc<dyn ProviderAdapter>,
    provider: &str,
    request: WireRequest<'_>,
    (sent, fresh): (Unique<&[u8]>, &[&str]),
    request_id: &str,
) -> Result<Outbound, EncodeError> {
    let request = adapter.members(request);
    if sent.bytes().len() >= EDIT_FROM_BYTES && adapter.passes_through() && request.is_borrowed() {
        if let Some(body) = request.edit(sent, fresh) {
            let path = Cow::Borrowed(request.path());
            return Ok(written(
                adapter,
                provider,
                &request,
                request_id,
                path,
                Bytes::from(body),
            ));
        }
    }
    let Encoded { path, body } = adapter.encode(&request)?;
    Ok(written(adapter, provider, &request, request_id, path, body))
}

/// One attempt's request with how its answer is read back.
fn written(
    adapter: &Arc<dyn ProviderAdapter>,
    provider: &str,
    request: &WireRequest<'_>,
    request_id: &str,
    path: Cow<'static, str>,
    body: Bytes,
) -> Outbound {
    let model = match request {
        WireRequest::Chat(r) => r.model.clone(),
        WireRequest::Completion(r) => r.model.clone(),
        WireRequest::Embedding(r) => Some(r.model.clone()),
        WireRequest::Native { body, .. } => body
            .get("model")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    }
    .unwrap_or_default();
    Outbound {
        path,
        body,
        translation: Translation {
            adapter: adapter.clone(),
            provider: provider.to_owned(),
            include_usage: request.include_usage(),
            id: format!("chatcmpl-{request_id}"),
            max_event: moat_wire::sse::DEFAULT_MAX_EVENT,
            native: matches!(request, WireRequest::Native { .. }),
            model,
        },
    }
}

/// How one attempt's answer is read back into OpenAI's shapes, decided when its request is written.
#[derive(Debug, Clone)]
pub struct Translation {
    adapter: Arc<dyn ProviderAdapter>,
    provider: String,
    include_usage: bool,
    id: String,
    max_event: usize,
    /// The request went in the provider's own wire, so the answer comes back as it is.
    native: bool,
    model: String,
}

impl Translation {
    /// Bounds what a stream translator holds of one input event or line (default 1 MiB).
    pub fn with_max_event(mut self, max_event: usize) -> Translation {
        self.max_event = max_event;
        self
    }

    fn answer(&self) -> Answer {
        Answer {
            include_usage: self.include_usage,
            id: self.id.clone(),
            created: unix_now(),
            max_event: self.max_event,
            model: self.model.clone(),
        }
    }

    /// The stream translator for this answer; `None` when the provider already speaks OpenAI.
    pub fn stream(&self) -> Option<Box<dyn StreamTranslator>> {
        if self.native {
            return None;
        }
        self.adapter.stream(&self.answer())
    }

    /// A whole answer as an OpenAI body.
    pub fn whole(&self, body: Bytes) -> Result<Bytes, UpstreamError> {
        if self.native {
            return Ok(body);
        }
        self.adapter
            .whole(&self.answer(), body)
            .map_err(|e| UpstreamError::Protocol {
                provider: self.provider.clone(),
                detail: e.to_string(),
            })
    }

    /// A provider's error status with its body in OpenAI's error shape, so clients see one error
    /// format whatever answered. Other failures pass unchanged.
    pub fn error(&self, err: UpstreamError) -> UpstreamError {
        match err {
            UpstreamError::Status {
                provider,
                status,
                body,
                retry_after,
            } => {
                let (status, body) = match self.adapter.error(status, &body) {
                    Some((status, translated)) => (status, Bytes::from(translated)),
                    None => (status, body),
                };
                UpstreamError::Status {
                    provider,
                    status,
                    body,
                    retry_after,
                }
            }
            other => other,
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
