//! `kind = "anthropic"`: Anthropic's Messages API, translated to and from OpenAI's chat by
//! `moat_translate::anthropic`. Chat completions only; `x-api-key` and `anthropic-version` headers.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use moat_policy::cache::CachePartition;
use moat_translate::{anthropic, StreamTranslator, TranslateError};
use moat_wire::openai::ModelList;

use super::{Answer, AuthStyle, EncodeError, Encoded, ProviderAdapter, WireRequest};

/// Where `kind = "anthropic"` providers point unless `base_url` says otherwise.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";

/// The header carrying an Anthropic key.
pub(super) const KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// `anthropic-version`, which every Messages API call must carry.
pub(super) fn version_header() -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("anthropic-version"),
        HeaderValue::from_static(anthropic::API_VERSION),
    )
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

impl ProviderAdapter for Anthropic {
    fn kind(&self) -> &'static str {
        "anthropic"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some(ANTHROPIC_BASE_URL)
    }

    fn auth_style(&self) -> AuthStyle {
        AuthStyle::Anthropic
    }

    /// The Messages wire has no partition member (translation would drop it): per-team keys are
    /// the isolation there.
    fn default_partition(&self, _host: &str) -> CachePartition {
        CachePartition::None
    }

    // The default health path, `{base}/models`: Anthropic's model list, probed with its headers.

    /// Token counting is relayed as it is (moatd's `POST /v1/messages/count_tokens`).
    fn native(&self, path: &str) -> bool {
        path == "/messages/count_tokens"
    }

    fn encode(&self, request: &WireRequest<'_>) -> Result<Encoded, EncodeError> {
        if let WireRequest::Native { path, .. } = request {
            return super::encode_native(self, path, request);
        }
        let chat = request.chat_only(self.kind())?;
        let body = serde_json::to_vec(&anthropic::to_messages_request(chat)?)?;
        Ok(Encoded {
            path: "/messages".into(),
            body: Bytes::from(body),
        })
    }

    fn whole(&self, answer: &Answer, body: Bytes) -> Result<Bytes, TranslateError> {
        let response = anthropic::to_chat_response(&body, answer.created)?;
        serde_json::to_vec(&response)
            .map(Bytes::from)
            .map_err(|e| TranslateError::InvalidResponse(e.to_string()))
    }

    fn stream(&self, answer: &Answer) -> Option<Box<dyn StreamTranslator>> {
        Some(Box::new(
            anthropic::AnthropicToOpenAi::new(answer.created, answer.include_usage)
                .with_max_event(answer.max_event),
        ))
    }

    /// Anthropic's error shape as OpenAI's, and its 529 "overloaded" as 503.
    fn error(&self, status: u16, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        Some(anthropic::error_to_openai(status, body))
    }

    fn model_list(&self, body: &[u8]) -> Result<ModelList, TranslateError> {
        anthropic::models_to_openai(body)
    }
}
