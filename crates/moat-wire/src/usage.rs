//! Reading provider-reported usage out of responses and stream chunks as they pass through.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;

pub use crate::openai::Usage;

/// Built once: constructing a searcher per chunk would cost more than the search.
static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));

/// Only the `usage` member; serde skips the rest of the object without building it. A Responses API
/// stream carries its usage inside the terminal event's `response` instead.
#[derive(Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    response: Option<ResponseUsage>,
}

#[derive(Deserialize)]
struct ResponseUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

/// The non-null `usage` of one SSE `data:` payload (a chat or text completion chunk), if any.
///
/// Called on every chunk of every stream, so the common chunk — text, no usage — is rejected with a
/// substring search before any JSON is parsed. Payloads that are not JSON (`[DONE]`) give `None`.
pub fn usage_from_chunk(data: &str) -> Option<Usage> {
    usage_from_json(data.as_bytes())
}

/// The non-null `usage` of a non-streamed response body (chat, completions or embeddings).
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    usage_from_json(body)
}

fn usage_from_json(json: &[u8]) -> Option<Usage> {
    if !has_usage_object(json) {
        return None;
    }
    let only = serde_json::from_slice::<UsageOnly>(json).ok()?;
    only.usage
        .or_else(|| only.response.and_then(|r| r.usage))
        .map(from_responses_names)
}

/// The Responses API counts `input_tokens` and `output_tokens` (with `input_tokens_details.cached_tokens`
/// and `output_tokens_details.reasoning_tokens`); settlement reads chat's names, so they are copied over.
fn from_responses_names(mut usage: Usage) -> Usage {
    let count = |u: &Usage, k: &str| u.extra.get(k).and_then(serde_json::Value::as_u64);
    if usage.prompt_tokens == 0 && usage.completion_tokens == 0 {
        if let Some(input) = count(&usage, "input_tokens") {
            usage.prompt_tokens = input;
        }
        if let Some(output) = count(&usage, "output_tokens") {
            usage.completion_tokens = output;
        }
        if usage.total_tokens == 0 {
            usage.total_tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        }
        let detail = |k: &str, d: &str| {
            usage
                .extra
                .get(k)
                .and_then(|v| v.get(d))
                .and_then(serde_json::Value::as_u64)
        };
        if let Some(cached) = detail("input_tokens_details", "cached_tokens") {
            usage.prompt_tokens_details = Some(crate::openai::PromptTokensDetails {
                cached_tokens: Some(cached),
                extra: Default::default(),
            });
        }
        if let Some(reasoning) = detail("output_tokens_details", "reasoning_tokens") {
            usage.completion_tokens_details = Some(crate::openai::CompletionTokensDetails {
                reasoning_tokens: Some(reasoning),
                extra: Default::default(),
            });
        }
    }
    usage
}

/// Where the first `"usage"` key (or the text of one) is in `json`, if anywhere.
pub fn usage_key_at(json: &[u8]) -> Option<usize> {
    USAGE_KEY.find(json)
}

/// True when some `"usage"` in `json` (or in SSE text carrying JSON) is followed by `:` and an
/// object. Streams asked for usage carry `"usage":null` in every chunk but the last; only the one
/// with an object needs parsing.
pub fn has_usage_object(json: &[u8]) -> bool {
    USAGE_KEY.find_iter(json).any(|at| {
        let mut rest = json[at + b"\"usage\"".len()..].iter().copied();
        let mut next = || rest.find(|b| !b.is_ascii_whitespace());
        next() == Some(b':') && next() == Some(b'{')
    })
}

#[cfg(test)]
mod tests;
