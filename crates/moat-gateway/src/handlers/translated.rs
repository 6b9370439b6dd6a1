//! The forwarding path's adapter for providers that do not speak OpenAI's wire (`kind = "anthropic"`
//! and `kind = "ollama"`): which path a request goes to, how its body is rewritten, and how the answer,
//! stream, error and model list are turned back into OpenAI's shapes. The translations themselves are
//! the pure functions of `moat_translate`; this module only picks them by provider kind.

use bytes::Bytes;
use moat_translate::{anthropic, ollama, StreamTranslator};
use moat_upstream::UpstreamError;
use moat_wire::openai::{ChatCompletionRequest, ModelList};

use crate::config::ProviderKind;
use crate::GatewayError;

/// How one attempt's answer must be read back, decided when its request is written.
#[derive(Debug, Clone)]
pub(crate) struct Translation {
    kind: ProviderKind,
    provider: String,
    /// The client's `stream_options.include_usage`, which OpenAI-side streams honour.
    include_usage: bool,
    /// Ollama answers carry no id; moat's request id stands in.
    id: String,
}

/// The path and body to send to a provider of `kind` for an OpenAI request body at `path`.
pub(crate) fn outbound(
    kind: ProviderKind,
    provider: &str,
    path: &'static str,
    body: Bytes,
    request_id: &str,
) -> Result<(&'static str, Bytes, Translation), GatewayError> {
    let mut translation = Translation {
        kind,
        provider: provider.to_owned(),
        include_usage: false,
        id: format!("chatcmpl-{request_id}"),
    };
    let target = match kind {
        ProviderKind::Openai | ProviderKind::Openrouter => return Ok((path, body, translation)),
        ProviderKind::Anthropic => "/messages",
        ProviderKind::Ollama => "/api/chat",
    };
    if path != "/chat/completions" {
        return Err(GatewayError::BadRequest(format!(
            "provider `{provider}` (kind = \"{}\") serves chat completions only, not {path}",
            kind.as_str()
        )));
    }
    let request: ChatCompletionRequest = serde_json::from_slice(&body)
        .map_err(|e| GatewayError::Internal(format!("re-reading the request: {e}")))?;
    translation.include_usage = request
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let bad = |e: moat_translate::TranslateError| GatewayError::BadRequest(e.to_string());
    let encoded = match kind {
        ProviderKind::Anthropic => {
            serde_json::to_vec(&anthropic::to_messages_request(&request).map_err(bad)?)
        }
        _ => serde_json::to_vec(&ollama::to_chat_body(&request).map_err(bad)?),
    }
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok((target, Bytes::from(encoded), translation))
}

impl Translation {
    fn translates(&self) -> bool {
        matches!(self.kind, ProviderKind::Anthropic | ProviderKind::Ollama)
    }

    /// The stream translator for this provider's answer; `None` when it already speaks OpenAI. It holds
    /// at most `max_event` bytes of one input event or line.
    pub(crate) fn stream(&self, max_event: usize) -> Option<Box<dyn StreamTranslator>> {
        let now = crate::ledger::now().max(0) as u64;
        match self.kind {
            ProviderKind::Anthropic => Some(Box::new(
                anthropic::AnthropicToOpenAi::new(now, self.include_usage).with_max_event(max_event),
            )),
            ProviderKind::Ollama => Some(Box::new(
                ollama::OllamaToOpenAi::new(self.id.clone(), now, self.include_usage)
                    .with_max_event(max_event),
            )),
            ProviderKind::Openai | ProviderKind::Openrouter => None,
        }
    }

    /// A whole answer as an OpenAI `chat.completion` body.
    pub(crate) fn whole(&self, body: Bytes) -> Result<Bytes, UpstreamError> {
        let now = crate::ledger::now().max(0) as u64;
        let response = match self.kind {
            ProviderKind::Anthropic => anthropic::to_chat_response(&body, now),
            ProviderKind::Ollama => ollama::to_chat_response(&body, &self.id, now),
            ProviderKind::Openai | ProviderKind::Openrouter => return Ok(body),
        };
        let response = response.map_err(|e| UpstreamError::Protocol {
            provider: self.provider.clone(),
            detail: e.to_string(),
        })?;
        serde_json::to_vec(&response)
            .map(Bytes::from)
            .map_err(|e| UpstreamError::Protocol {
                provider: self.provider.clone(),
                detail: e.to_string(),
            })
    }

    /// A provider's error status with its body rewritten into OpenAI's error shape (and Anthropic's
    /// 529 "overloaded" as 503), so clients see one error format whatever answered.
    pub(crate) fn error(&self, err: UpstreamError) -> UpstreamError {
        if !self.translates() {
            return err;
        }
        match err {
            UpstreamError::Status {
                provider,
                status,
                body,
                retry_after,
            } => {
                let (status, body) = match self.kind {
                    ProviderKind::Anthropic => anthropic::error_to_openai(status, &body),
                    _ => ollama::error_to_openai(status, &body),
                };
                UpstreamError::Status {
                    provider,
                    status,
                    body: Bytes::from(body),
                    retry_after,
                }
            }
            other => other,
        }
    }
}

/// Where a provider of `kind` lists its models.
pub(crate) fn models_path(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Ollama => "/api/tags",
        ProviderKind::Openai | ProviderKind::Openrouter | ProviderKind::Anthropic => "/models",
    }
}

/// A provider's model list in OpenAI's shape.
pub(crate) fn model_list(kind: ProviderKind, body: &[u8]) -> Result<ModelList, String> {
    match kind {
        ProviderKind::Anthropic => anthropic::models_to_openai(body).map_err(|e| e.to_string()),
        ProviderKind::Ollama => ollama::tags_to_openai(body).map_err(|e| e.to_string()),
        ProviderKind::Openai | ProviderKind::Openrouter => {
            serde_json::from_slice(body).map_err(|e| e.to_string())
        }
    }
}
