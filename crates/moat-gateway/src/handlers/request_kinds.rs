//! The request types moatd forwards (chat, legacy completions, embeddings) and what the forwarding
//! path needs from each: model addressing fields, streaming, usage in streams, cache partition
//! members and OpenRouter preferences. What privacy and budgets look at is not here: they read the
//! whole body before any of these types is decoded from it (`handlers::pipeline`).

use std::borrow::Cow;

use moat_upstream::adapter::WireRequest;
use moat_wire::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ProviderPreferences};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Every top-level member the forwarding path may set on a request ([`Forward::set_model`],
/// [`Forward::take_fallbacks`], [`Forward::ask_stream_usage`], [`Forward::provider_prefs`], the cache
/// partition's members and `cache_prompt`): what an attempt writes anew when it edits the client's own
/// bytes instead of encoding the request (`moat_upstream::adapter::outbound_edited`). A member the
/// path starts to set must be added here; debug builds check every edited body against its request.
pub(crate) const SET_MEMBERS: &[&str] = &[
    "model",
    "models",
    "stream_options",
    "provider",
    "user",
    "prompt_cache_key",
    "cache_salt",
    "cache_prompt",
];

/// What the forwarding path needs to know about a request body, whatever the endpoint.
pub(crate) trait Forward: DeserializeOwned + Serialize + Send {
    /// Path below the provider's base URL.
    const PATH: &'static str;
    /// The request as the provider adapters take it (borrowed, not copied).
    fn wire(&self) -> WireRequest<'_>;
    fn model(&self) -> Option<&str>;
    fn set_model(&mut self, model: String);
    /// Removes the OpenRouter-style `models` fallback list: moatd does the falling back itself, and
    /// the names in it are moatd's, not the provider's.
    fn take_fallbacks(&mut self) -> Vec<String>;
    fn wants_stream(&self) -> bool;
    /// Whether the endpoint produces output tokens (embeddings do not), which the budget holds for.
    const GENERATES: bool = true;
    /// Asks a streaming provider to end with a usage chunk, so a metered stream settles to its real
    /// cost instead of its whole reservation, even when the client said `include_usage: false`.
    /// True when the client had not asked for usage itself: what it receives must then not carry it.
    fn ask_stream_usage(&mut self) -> bool;
    /// OpenRouter's provider preferences, which privacy settings add to.
    fn provider_prefs(&mut self) -> &mut Option<ProviderPreferences>;
    /// Whether providers keep a prompt cache for this endpoint, so the tenant's cache partition is
    /// added (embeddings: no, and OpenAI refuses unknown members there).
    const PROMPT_CACHE: bool = true;
    /// Removes a cache-partition member (`cache_salt`, `prompt_cache_key`, `user`) the client sent;
    /// `Err` when it is there but not a string.
    fn take_partition_field(&mut self, field: &'static str) -> Result<Option<String>, String>;
    /// Sets a cache-partition member.
    fn set_partition_field(&mut self, field: &'static str, value: String);
    /// Sets llama.cpp's `cache_prompt`.
    fn set_cache_prompt(&mut self, on: bool);
    /// Requests that generate nothing and cost nothing at the provider (Anthropic's token counting):
    /// nothing is reserved and nothing charged, though keys, privacy and audit apply as to any other.
    const FREE: bool = false;
}

/// Takes a string member out of an `extra` map.
fn take_extra(
    extra: &mut serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<Option<String>, String> {
    match extra.remove(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{field}` must be a string")),
    }
}

/// Chat and legacy completions carry the same addressing fields.
macro_rules! forward_with_models_field {
    ($ty:ty, $path:literal, $wire:ident) => {
        impl Forward for $ty {
            const PATH: &'static str = $path;
            fn wire(&self) -> WireRequest<'_> {
                WireRequest::$wire(Cow::Borrowed(self))
            }
            fn model(&self) -> Option<&str> {
                self.model.as_deref().filter(|m| !m.is_empty())
            }
            fn set_model(&mut self, model: String) {
                self.model = Some(model);
            }
            fn take_fallbacks(&mut self) -> Vec<String> {
                self.models.take().unwrap_or_default()
            }
            fn wants_stream(&self) -> bool {
                self.stream == Some(true)
            }
            fn ask_stream_usage(&mut self) -> bool {
                let opts = self.stream_options.get_or_insert_with(Default::default);
                let asked = opts.include_usage == Some(true);
                opts.include_usage = Some(true);
                !asked
            }
            fn provider_prefs(&mut self) -> &mut Option<ProviderPreferences> {
                &mut self.provider
            }
            fn take_partition_field(&mut self, field: &'static str) -> Result<Option<String>, String> {
                PartitionFields::take(self, field)
            }
            fn set_partition_field(&mut self, field: &'static str, value: String) {
                PartitionFields::set(self, field, value)
            }
            fn set_cache_prompt(&mut self, on: bool) {
                PartitionFields::cache_prompt(self, on)
            }
        }
    };
}

/// Where chat and legacy completions keep the cache-partition members (typed, or in `extra`).
trait PartitionFields {
    fn take(&mut self, field: &'static str) -> Result<Option<String>, String>;
    fn set(&mut self, field: &'static str, value: String);
    fn cache_prompt(&mut self, on: bool);
}

impl PartitionFields for ChatCompletionRequest {
    fn take(&mut self, field: &'static str) -> Result<Option<String>, String> {
        Ok(match field {
            "user" => self.user.take(),
            "prompt_cache_key" => self.prompt_cache_key.take(),
            "cache_salt" => self.cache_salt.take(),
            other => return take_extra(&mut self.extra, other),
        })
    }
    fn set(&mut self, field: &'static str, value: String) {
        match field {
            "user" => self.user = Some(value),
            "prompt_cache_key" => self.prompt_cache_key = Some(value),
            "cache_salt" => self.cache_salt = Some(value),
            other => {
                self.extra.insert(other.to_string(), value.into());
            }
        }
    }
    fn cache_prompt(&mut self, on: bool) {
        self.cache_prompt = Some(on);
    }
}

impl PartitionFields for CompletionRequest {
    fn take(&mut self, field: &'static str) -> Result<Option<String>, String> {
        match field {
            "user" => Ok(self.user.take()),
            other => take_extra(&mut self.extra, other),
        }
    }
    fn set(&mut self, field: &'static str, value: String) {
        match field {
            "user" => self.user = Some(value),
            other => {
                self.extra.insert(other.to_string(), value.into());
            }
        }
    }
    fn cache_prompt(&mut self, on: bool) {
        self.extra.insert("cache_prompt".into(), on.into());
    }
}

forward_with_models_field!(ChatCompletionRequest, "/chat/completions", Chat);
forward_with_models_field!(CompletionRequest, "/completions", Completion);

impl Forward for EmbeddingRequest {
    const PATH: &'static str = "/embeddings";
    fn wire(&self) -> WireRequest<'_> {
        WireRequest::Embedding(Cow::Borrowed(self))
    }
    fn model(&self) -> Option<&str> {
        Some(self.model.as_str()).filter(|m| !m.is_empty())
    }
    fn set_model(&mut self, model: String) {
        self.model = model;
    }
    fn take_fallbacks(&mut self) -> Vec<String> {
        match self.extra.remove("models") {
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn wants_stream(&self) -> bool {
        false
    }
    const GENERATES: bool = false;
    fn ask_stream_usage(&mut self) -> bool {
        false
    }
    fn provider_prefs(&mut self) -> &mut Option<ProviderPreferences> {
        &mut self.provider
    }
    const PROMPT_CACHE: bool = false;
    fn take_partition_field(&mut self, field: &'static str) -> Result<Option<String>, String> {
        match field {
            "user" => Ok(self.user.take()),
            other => take_extra(&mut self.extra, other),
        }
    }
    fn set_partition_field(&mut self, field: &'static str, value: String) {
        match field {
            "user" => self.user = Some(value),
            other => {
                self.extra.insert(other.to_string(), value.into());
            }
        }
    }
    fn set_cache_prompt(&mut self, _on: bool) {}
}

/// Every string in a JSON value, object keys aside, for the privacy scan of bodies moatd relays as
/// they are.
pub(crate) fn json_strings_mut<'a>(value: &'a mut serde_json::Value, out: &mut Vec<&'a mut String>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| json_strings_mut(v, out)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| json_strings_mut(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use moat_policy::cache::PARTITION_FIELDS;

    use super::SET_MEMBERS;

    #[test]
    fn every_partition_member_is_one_the_forwarding_path_sets() {
        for field in PARTITION_FIELDS.iter().filter_map(|p| p.field()) {
            assert!(SET_MEMBERS.contains(&field), "{field}");
        }
    }
}
