//! How a provider wants its credential: the header that carries the key, and the protocol headers
//! sent with every request. An adapter picks the style ([`super::ProviderAdapter::auth_style`]); the
//! client builds the headers once, when it is made.

use http::{HeaderName, HeaderValue};

/// How a provider wants its credential presented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`: OpenAI and everything compatible with it.
    #[default]
    Bearer,
    /// `x-api-key: <key>` plus `anthropic-version`, as Anthropic's Messages API requires (the
    /// version header is sent even without a key).
    Anthropic,
    /// `api-key: <key>`: Azure OpenAI.
    AzureKey,
    /// `x-goog-api-key: <key>`: Google's Gemini API.
    GoogleKey,
}

impl AuthStyle {
    /// The header name and text that carry `key`.
    pub(crate) fn credential(self, key: &str) -> (HeaderName, String) {
        match self {
            AuthStyle::Bearer => (http::header::AUTHORIZATION, format!("Bearer {key}")),
            AuthStyle::Anthropic => (super::anthropic::KEY_HEADER, key.to_owned()),
            AuthStyle::AzureKey => (HeaderName::from_static("api-key"), key.to_owned()),
            AuthStyle::GoogleKey => (HeaderName::from_static("x-goog-api-key"), key.to_owned()),
        }
    }

    /// How the key travels, for `check-config`.
    pub fn describe(self) -> &'static str {
        match self {
            AuthStyle::Bearer => "Authorization: Bearer",
            AuthStyle::Anthropic => "x-api-key (with anthropic-version)",
            AuthStyle::AzureKey => "the api-key header",
            AuthStyle::GoogleKey => "the x-goog-api-key header",
        }
    }

    /// Headers sent with every request whether or not a key is configured.
    pub(crate) fn protocol_headers(self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            AuthStyle::Bearer | AuthStyle::AzureKey | AuthStyle::GoogleKey => Vec::new(),
            AuthStyle::Anthropic => vec![super::anthropic::version_header()],
        }
    }
}
