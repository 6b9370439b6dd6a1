//! `kind = "gemini"`: Google's Gemini API, or Gemini on Vertex AI when `project` is set. Chat
//! completions become `generateContent` / `streamGenerateContent?alt=sse` requests translated by
//! `moat_translate::gemini`; the credential is an API key (`x-goog-api-key`) or a service account's
//! OAuth token.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use moat_policy::cache::CachePartition;
use moat_translate::{gemini, StreamTranslator, TranslateError};
use moat_wire::openai::ModelList;

use super::azure::path_segment;
use super::{
    AdapterOptions, Answer, AuthContext, AuthStyle, EncodeError, Encoded, ProviderAdapter, WireRequest,
};
use crate::credentials::{CredentialError, OAuth, RequestAuth, ServiceAccount, TokenClient};

/// The Gemini API's base.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// Vertex AI's location when `region` is not set.
pub const DEFAULT_VERTEX_LOCATION: &str = "us-central1";

#[derive(Debug, Clone)]
pub struct Gemini {
    options: AdapterOptions,
}

impl Gemini {
    pub fn new(options: &AdapterOptions) -> Gemini {
        Gemini {
            options: options.clone(),
        }
    }
}

impl ProviderAdapter for Gemini {
    fn kind(&self) -> &'static str {
        "gemini"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some(GEMINI_BASE_URL)
    }

    /// On Vertex AI: `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/
    /// {location}/publishers/google`, under which the paths are the Gemini API's.
    fn base_url(&self) -> Option<String> {
        match &self.options.project {
            Some(project) => {
                let location = self.options.region.as_deref().unwrap_or(DEFAULT_VERTEX_LOCATION);
                Some(format!(
                    "https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/google"
                ))
            }
            None => Some(GEMINI_BASE_URL.to_owned()),
        }
    }

    fn auth_style(&self) -> AuthStyle {
        AuthStyle::GoogleKey
    }

    /// Gemini's wire has no partition member (translation drops unknown members).
    fn default_partition(&self, _host: &str) -> CachePartition {
        CachePartition::None
    }

    fn encode(&self, request: &WireRequest<'_>) -> Result<Encoded, EncodeError> {
        let chat = request.chat_only(self.kind())?;
        let model = chat
            .model
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| TranslateError::InvalidRequest("`model` is required".into()))?;
        let action = if chat.stream == Some(true) {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        let body = serde_json::to_vec(&gemini::to_generate_request(chat)?)?;
        Ok(Encoded {
            path: Cow::Owned(format!("/models/{}:{action}", path_segment(model))),
            body: Bytes::from(body),
        })
    }

    fn whole(&self, answer: &Answer, body: Bytes) -> Result<Bytes, TranslateError> {
        let response = gemini::to_chat_response(&body, &answer.id, &answer.model, answer.created)?;
        serde_json::to_vec(&response)
            .map(Bytes::from)
            .map_err(|e| TranslateError::InvalidResponse(e.to_string()))
    }

    fn stream(&self, answer: &Answer) -> Option<Box<dyn StreamTranslator>> {
        Some(Box::new(
            gemini::GeminiToOpenAi::new(
                answer.id.clone(),
                answer.model.clone(),
                answer.created,
                answer.include_usage,
            )
            .with_max_event(answer.max_event),
        ))
    }

    fn error(&self, status: u16, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        Some(gemini::error_to_openai(status, body))
    }

    /// The Gemini API lists its models; Vertex AI's publisher list is not on this base URL.
    fn lists_models(&self) -> bool {
        self.options.project.is_none()
    }

    fn model_list(&self, body: &[u8]) -> Result<ModelList, TranslateError> {
        gemini::models_to_openai(body)
    }

    fn request_auth(&self, ctx: &AuthContext<'_>) -> Result<Option<Arc<dyn RequestAuth>>, CredentialError> {
        let file = match &self.options.service_account_file {
            Some(f) => f.clone(),
            None if ctx.api_key => return Ok(None),
            None => (ctx.env)("GOOGLE_APPLICATION_CREDENTIALS")
                .filter(|v| !v.is_empty())
                .map(Into::into)
                .ok_or_else(|| {
                    CredentialError(
                        "no credential: set api_key, service_account_file, or GOOGLE_APPLICATION_CREDENTIALS"
                            .into(),
                    )
                })?,
        };
        let account =
            ServiceAccount::from_file(&file)?.with_client(TokenClient::new(ctx.ca_file.as_deref())?);
        Ok(Some(OAuth::new(account)))
    }
}
