//! The OpenAI wire as it is: `kind = "openai"` (any OpenAI-compatible server: OpenAI, vLLM,
//! llama.cpp's server, Ollama's `/v1`, Groq, Together…) and `kind = "openrouter"` (OpenAI's wire
//! plus OpenRouter's extensions). Bodies and answers pass through, but for OpenRouter's own members,
//! which only OpenRouter gets: a plain OpenAI-compatible server does not know them, and strict ones
//! refuse a request for one unknown member.

use moat_policy::cache::CachePartition;
use moat_wire::openai::ProviderPreferences;

use super::{ProviderAdapter, Retention, WireRequest};

/// OpenRouter's own members kept in a request's `extra` map (`provider`, `models`, `reasoning` and
/// `usage` are typed and handled apart).
const OPENROUTER_EXTRA: [&str; 3] = ["transforms", "route", "plugins"];

/// A request without OpenRouter's members; `reasoning.effort` becomes OpenAI's `reasoning_effort`
/// (unless the client set that itself). Borrowed unless something must change.
fn without_openrouter_members(request: WireRequest<'_>) -> WireRequest<'_> {
    match request {
        WireRequest::Chat(mut chat) => {
            let has = |c: &moat_wire::openai::ChatCompletionRequest| {
                c.reasoning.is_some()
                    || c.usage.is_some()
                    || c.provider.is_some()
                    || OPENROUTER_EXTRA.iter().any(|k| c.extra.contains_key(*k))
            };
            if has(&chat) {
                let c = chat.to_mut();
                let effort = c.reasoning.take().and_then(|r| r.effort);
                if c.reasoning_effort.is_none() {
                    c.reasoning_effort = effort;
                }
                c.usage = None;
                c.provider = None;
                for k in OPENROUTER_EXTRA {
                    c.extra.remove(k);
                }
            }
            WireRequest::Chat(chat)
        }
        WireRequest::Completion(mut completion) => {
            let c = &completion;
            if c.reasoning.is_some()
                || c.usage.is_some()
                || c.provider.is_some()
                || OPENROUTER_EXTRA.iter().any(|k| c.extra.contains_key(*k))
            {
                let c = completion.to_mut();
                c.reasoning = None;
                c.usage = None;
                c.provider = None;
                for k in OPENROUTER_EXTRA {
                    c.extra.remove(k);
                }
            }
            WireRequest::Completion(completion)
        }
        WireRequest::Embedding(mut embedding) => {
            if embedding.provider.is_some() {
                embedding.to_mut().provider = None;
            }
            WireRequest::Embedding(embedding)
        }
        native @ WireRequest::Native { .. } => native,
    }
}

/// The Responses API, for providers marked `responses = "native"`.
fn responses(path: &str) -> bool {
    path == "/responses"
}

/// OpenRouter's API base, the default `base_url` for `kind = "openrouter"`.
pub const OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// Any OpenAI-compatible server. `base_url` is required: there is no one server to default to.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAi;

impl ProviderAdapter for OpenAi {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn native(&self, path: &str) -> bool {
        responses(path)
    }

    fn passes_through(&self) -> bool {
        true
    }

    fn members<'a>(&self, request: WireRequest<'a>) -> WireRequest<'a> {
        without_openrouter_members(request)
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

    fn native(&self, path: &str) -> bool {
        responses(path)
    }

    fn passes_through(&self) -> bool {
        true
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
