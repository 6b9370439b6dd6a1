//! `kind = "ollama"`: Ollama's native API (`/api/chat` with NDJSON streams, `/api/tags`), translated
//! to and from OpenAI's chat by `moat_translate::ollama`. Chat completions only. (Ollama's own `/v1`
//! is OpenAI-compatible and needs `kind = "openai"`, not this.)

use bytes::Bytes;
use moat_policy::cache::CachePartition;
use moat_translate::{ollama, StreamTranslator, TranslateError};
use moat_wire::openai::ModelList;

use super::{Answer, EncodeError, Encoded, ProviderAdapter, WireRequest};

/// Where `kind = "ollama"` providers point unless `base_url` says otherwise (its native API root).
pub const OLLAMA_BASE_URL: &str = "http://127.0.0.1:11434";

#[derive(Debug, Clone, Copy, Default)]
pub struct Ollama;

impl ProviderAdapter for Ollama {
    fn kind(&self) -> &'static str {
        "ollama"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some(OLLAMA_BASE_URL)
    }

    /// The native wire has no partition member (translation would drop it).
    fn default_partition(&self, _host: &str) -> CachePartition {
        CachePartition::None
    }

    /// `/api/version`: the cheapest call Ollama has, and one that needs no model loaded.
    fn health_path(&self, base_path: &str) -> String {
        format!("{}/api/version", base_path.trim_end_matches('/'))
    }

    fn encode(&self, request: &WireRequest<'_>) -> Result<Encoded, EncodeError> {
        let chat = request.chat_only(self.kind())?;
        let body = serde_json::to_vec(&ollama::to_chat_body(chat)?)?;
        Ok(Encoded {
            path: "/api/chat".into(),
            body: Bytes::from(body),
        })
    }

    fn whole(&self, answer: &Answer, body: Bytes) -> Result<Bytes, TranslateError> {
        let response = ollama::to_chat_response(&body, &answer.id, answer.created)?;
        serde_json::to_vec(&response)
            .map(Bytes::from)
            .map_err(|e| TranslateError::InvalidResponse(e.to_string()))
    }

    fn stream(&self, answer: &Answer) -> Option<Box<dyn StreamTranslator>> {
        Some(Box::new(
            ollama::OllamaToOpenAi::new(answer.id.clone(), answer.created, answer.include_usage)
                .with_max_event(answer.max_event),
        ))
    }

    /// Ollama's `{"error": "…"}` as OpenAI's error shape.
    fn error(&self, status: u16, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        Some(ollama::error_to_openai(status, body))
    }

    fn models_path(&self) -> &'static str {
        "/api/tags"
    }

    fn model_list(&self, body: &[u8]) -> Result<ModelList, TranslateError> {
        ollama::tags_to_openai(body)
    }
}
