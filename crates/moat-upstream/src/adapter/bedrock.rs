//! `kind = "bedrock"`: AWS Bedrock Runtime's Converse API. Chat completions become `Converse` /
//! `ConverseStream` requests translated by `moat_translate::bedrock` (streams decoded from AWS's
//! binary event-stream framing); every request is signed with SigV4 (`aws-sigv4`) with keys from
//! the environment, a profile or a web identity, or carries a Bedrock API key as a bearer token.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use moat_policy::cache::CachePartition;
use moat_translate::{bedrock, StreamTranslator, TranslateError};

use super::azure::path_segment;
use super::{AdapterOptions, Answer, AuthContext, EncodeError, Encoded, ProviderAdapter, WireRequest};
use crate::credentials::{AwsCredentialSource, CredentialError, RequestAuth, SigV4, TokenClient};

/// SigV4's signing name for Bedrock Runtime.
const SERVICE: &str = "bedrock";

#[derive(Debug, Clone)]
pub struct Bedrock {
    options: AdapterOptions,
}

impl Bedrock {
    pub fn new(options: &AdapterOptions) -> Bedrock {
        Bedrock {
            options: options.clone(),
        }
    }
}

impl ProviderAdapter for Bedrock {
    fn kind(&self) -> &'static str {
        "bedrock"
    }

    /// `https://bedrock-runtime.{region}.amazonaws.com`; without a region, `base_url` is required.
    fn base_url(&self) -> Option<String> {
        self.options
            .region
            .as_ref()
            .map(|r| format!("https://bedrock-runtime.{r}.amazonaws.com"))
    }

    /// Converse has no partition member; a Bedrock model's prompt cache is per AWS account.
    fn default_partition(&self, _host: &str) -> CachePartition {
        CachePartition::None
    }

    /// Bedrock Runtime has no cheap read endpoint; `/ping` is what AWS service endpoints (and the
    /// testkit's emulator) answer. Probes are off by default for remote providers.
    fn health_path(&self, base_path: &str) -> String {
        format!("{}/ping", base_path.trim_end_matches('/'))
    }

    fn encode(&self, request: &WireRequest<'_>) -> Result<Encoded, EncodeError> {
        let chat = request.chat_only(self.kind())?;
        let model = chat
            .model
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| TranslateError::InvalidRequest("`model` is required".into()))?;
        let action = if chat.stream == Some(true) {
            "converse-stream"
        } else {
            "converse"
        };
        let body = serde_json::to_vec(&bedrock::to_converse_request(chat)?)?;
        Ok(Encoded {
            path: Cow::Owned(format!("/model/{}/{action}", path_segment(model))),
            body: Bytes::from(body),
        })
    }

    fn whole(&self, answer: &Answer, body: Bytes) -> Result<Bytes, TranslateError> {
        let response = bedrock::to_chat_response(&body, &answer.id, &answer.model, answer.created)?;
        serde_json::to_vec(&response)
            .map(Bytes::from)
            .map_err(|e| TranslateError::InvalidResponse(e.to_string()))
    }

    fn stream(&self, answer: &Answer) -> Option<Box<dyn StreamTranslator>> {
        Some(Box::new(
            bedrock::BedrockToOpenAi::new(
                answer.id.clone(),
                answer.model.clone(),
                answer.created,
                answer.include_usage,
            )
            .with_max_event(answer.max_event),
        ))
    }

    fn error(&self, status: u16, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        Some(bedrock::error_to_openai(status, None, body))
    }

    /// Bedrock Runtime has no model list (the control plane's is on another host).
    fn lists_models(&self) -> bool {
        false
    }

    fn request_auth(&self, ctx: &AuthContext<'_>) -> Result<Option<Arc<dyn RequestAuth>>, CredentialError> {
        if ctx.api_key && self.options.aws_profile.is_none() {
            // A Bedrock API key, sent as `Authorization: Bearer`.
            return Ok(None);
        }
        let region = self
            .options
            .region
            .as_deref()
            .ok_or_else(|| CredentialError("`region` is required to sign Bedrock requests".into()))?;
        let source = AwsCredentialSource::detect(
            ctx.env,
            ctx.home.as_deref(),
            self.options.aws_profile.as_deref(),
            region,
        )?;
        let client = TokenClient::new(ctx.ca_file.as_deref())?;
        Ok(Some(SigV4::new(source, region, SERVICE, client)))
    }
}
