//! `kind = "azure"`: Azure OpenAI. OpenAI's wire on deployment paths
//! (`{base_url}/openai/deployments/{deployment}/chat/completions?api-version=…`, the model name in a
//! route being the deployment's name), the key in an `api-key` header or an Entra ID bearer token,
//! and Azure's content-filter refusals explained in OpenAI's error shape.

use std::borrow::Cow;
use std::sync::Arc;

use moat_policy::cache::CachePartition;

use super::{AdapterOptions, AuthContext, AuthStyle, EncodeError, Encoded, ProviderAdapter, WireRequest};
use crate::credentials::{CredentialError, EntraCredentials, OAuth, RequestAuth, TokenClient};

/// The GA API version moatd speaks unless `api_version` says otherwise.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

#[derive(Debug, Clone)]
pub struct Azure {
    api_version: String,
    options: AdapterOptions,
}

impl Azure {
    pub fn new(options: &AdapterOptions) -> Azure {
        Azure {
            api_version: options
                .api_version
                .clone()
                .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
            options: options.clone(),
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a model name can never
/// change the path it is put in.
pub(super) fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn model_of<'a>(request: &'a WireRequest<'_>) -> Option<&'a str> {
    match request {
        WireRequest::Chat(r) => r.model.as_deref(),
        WireRequest::Completion(r) => r.model.as_deref(),
        WireRequest::Embedding(r) => Some(r.model.as_str()),
        WireRequest::Native { body, .. } => body.get("model").and_then(serde_json::Value::as_str),
    }
}

impl ProviderAdapter for Azure {
    fn kind(&self) -> &'static str {
        "azure"
    }

    fn auth_style(&self) -> AuthStyle {
        AuthStyle::AzureKey
    }

    /// Azure refuses request members it does not know, and its prompt cache is per resource: the
    /// isolation is per-team keys (resources), as for Anthropic.
    fn default_partition(&self, _host: &str) -> CachePartition {
        CachePartition::None
    }

    fn health_path(&self, base_path: &str) -> String {
        format!(
            "{}/openai/models?api-version={}",
            base_path.trim_end_matches('/'),
            self.api_version
        )
    }

    fn members<'a>(&self, request: WireRequest<'a>) -> WireRequest<'a> {
        // OpenRouter's members and other servers' cache knobs: Azure answers them with a 400.
        match request {
            WireRequest::Chat(mut r) => {
                if r.provider.is_some()
                    || r.reasoning.is_some()
                    || r.usage.is_some()
                    || r.top_k.is_some()
                    || r.cache_salt.is_some()
                    || r.cache_prompt.is_some()
                    || r.models.is_some()
                {
                    let m = r.to_mut();
                    m.provider = None;
                    m.reasoning = None;
                    m.usage = None;
                    m.top_k = None;
                    m.cache_salt = None;
                    m.cache_prompt = None;
                    m.models = None;
                }
                WireRequest::Chat(r)
            }
            other => other,
        }
    }

    fn encode(&self, request: &WireRequest<'_>) -> Result<Encoded, EncodeError> {
        if let WireRequest::Native { path, .. } = request {
            // Another kind's own wire (a Responses relay, Anthropic's token counting): refused.
            return super::encode_native(self, path, request);
        }
        let deployment = model_of(request).filter(|m| !m.is_empty()).ok_or_else(|| {
            EncodeError::Translate(moat_translate::TranslateError::InvalidRequest(
                "`model` (the Azure deployment) is required".into(),
            ))
        })?;
        let path = format!(
            "/openai/deployments/{}{}?api-version={}",
            path_segment(deployment),
            request.path(),
            path_segment(&self.api_version)
        );
        Ok(Encoded {
            path: Cow::Owned(path),
            body: request.to_json()?,
        })
    }

    /// Azure's errors in OpenAI's shape, content-filter refusals explained.
    fn error(&self, status: u16, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        Some(moat_translate::azure::error_to_openai(status, body))
    }

    /// The models the resource can deploy (the data plane does not list deployments).
    fn models_path(&self) -> &'static str {
        "/openai/models?api-version=2024-10-21"
    }

    fn request_auth(&self, ctx: &AuthContext<'_>) -> Result<Option<Arc<dyn RequestAuth>>, CredentialError> {
        let entra = match &self.options.entra {
            Some(e) => Some(EntraCredentials::new(
                e.tenant_id.clone(),
                e.client_id.clone(),
                e.secret.clone(),
                e.authority.clone(),
            )),
            None if ctx.api_key => None,
            None => Some(EntraCredentials::from_env(ctx.env).ok_or_else(|| {
                CredentialError(
                    "no credential: set api_key, an `entra` table, or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE)".into(),
                )
            })?),
        };
        match entra {
            Some(e) => {
                let client = TokenClient::new(ctx.ca_file.as_deref())?;
                Ok(Some(OAuth::new(e.with_client(client))))
            }
            None => Ok(None),
        }
    }
}
