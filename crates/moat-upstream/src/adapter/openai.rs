//! The OpenAI wire as it is: `kind = "openai"` (any OpenAI-compatible server: OpenAI, vLLM,
//! llama.cpp's server, Ollama's `/v1`, Groq, Together…) and `kind = "openrouter"` (OpenAI's wire
//! plus OpenRouter's extensions). Bodies and answers pass through; only defaults differ.

use moat_policy::cache::CachePartition;
use moat_wire::openai::ProviderPreferences;

use super::{ProviderAdapter, Retention};

/// OpenRouter's API base, the default `base_url` for `kind = "openrouter"`.
pub const OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// Any OpenAI-compatible server. `base_url` is required: there is no one server to default to.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAi;

impl ProviderAdapter for OpenAi {
    fn kind(&self) -> &'static str {
        "openai"
    }
}

/// OpenRouter: OpenAI's wire, its base URL by default, its `user` member as the cache partition (it
/// routes by it), and the gateway's data-retention settings added to its `provider` preferences.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenRouter;

impl ProviderAdapter for OpenRouter {
    fn kind(&self) -> &'static str {
        "openrouter"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some(OPENROUTER_BASE_URL)
    }

    fn default_partition(&self, host: &str) -> CachePartition {
        CachePartition::default_for(true, host)
    }

    /// `provider.data_collection = "deny"` (and `zdr = true` when required) unless the client chose
    /// otherwise.
    fn provider_preferences(
        &self,
        client: &Option<ProviderPreferences>,
        retention: Retention,
    ) -> Option<ProviderPreferences> {
        if !(retention.deny_data_collection || retention.require_zdr) {
            return client.clone();
        }
        let mut prefs = client.clone().unwrap_or_default();
        if retention.deny_data_collection && prefs.data_collection.is_none() {
            prefs.data_collection = Some("deny".into());
        }
        if retention.require_zdr {
            prefs.zdr = Some(true);
        }
        Some(prefs)
    }
}
