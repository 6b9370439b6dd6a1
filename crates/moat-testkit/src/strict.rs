//! Strict mode: the emulator refuses a request member its wire does not define, with a 400 worded as
//! OpenAI's own ("Unrecognized request argument supplied: …"), as strict OpenAI-compatible servers do.
//! Under `/v1` the wire is OpenAI's (plus `cache_salt`, which vLLM and SGLang define and moatd sends
//! by default to OpenAI-compatible servers); under `/api/v1` OpenRouter's members are allowed too.
//! The emulator's own test members (`emulate`, `x_probe`) are always allowed.

use serde_json::Value;

use crate::completion::Kind;

const EMULATOR: [&str; 2] = ["emulate", "x_probe"];

const CHAT: [&str; 36] = [
    "model",
    "messages",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
    "cache_salt",
];

const TEXT: [&str; 19] = [
    "model",
    "prompt",
    "best_of",
    "echo",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "suffix",
    "temperature",
    "top_p",
    "user",
    "cache_salt",
];

const EMBEDDINGS: [&str; 5] = ["model", "input", "dimensions", "encoding_format", "user"];

const OPENROUTER: [&str; 14] = [
    "models",
    "provider",
    "transforms",
    "route",
    "usage",
    "reasoning",
    "top_k",
    "min_p",
    "top_a",
    "repetition_penalty",
    "plugins",
    "debug",
    "include_reasoning",
    "cache_salt",
];

/// The first member of `request` the endpoint does not define, if any.
pub(crate) fn unknown_member(request: &Value, kind: Option<Kind>, openrouter: bool) -> Option<String> {
    let known: &[&str] = match kind {
        Some(Kind::Chat) => &CHAT,
        Some(Kind::Text) => &TEXT,
        None => &EMBEDDINGS,
    };
    request.as_object()?.keys().find_map(|k| {
        let ok = known.contains(&k.as_str())
            || EMULATOR.contains(&k.as_str())
            || (openrouter && OPENROUTER.contains(&k.as_str()));
        (!ok).then(|| k.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openrouter_members_only_under_its_prefix() {
        let req = json!({"model": "m", "messages": [], "provider": {"order": ["a"]}});
        assert_eq!(
            unknown_member(&req, Some(Kind::Chat), false).as_deref(),
            Some("provider")
        );
        assert_eq!(unknown_member(&req, Some(Kind::Chat), true), None);
        let ok = json!({"model": "m", "messages": [], "reasoning_effort": "low", "cache_salt": "x", "emulate": {}});
        assert_eq!(unknown_member(&ok, Some(Kind::Chat), false), None);
        assert_eq!(
            unknown_member(
                &json!({"model": "m", "input": "x", "user": "u", "extra": 1}),
                None,
                false
            )
            .as_deref(),
            Some("extra")
        );
    }
}
