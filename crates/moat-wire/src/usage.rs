//! Reading provider-reported usage out of responses and stream chunks as they pass through.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;

pub use crate::openai::Usage;

/// Built once: constructing a searcher per chunk would cost more than the search.
static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));

/// Only the `usage` member; serde skips the rest of the object without building it.
#[derive(Deserialize)]
struct UsageOnly {
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
    serde_json::from_slice::<UsageOnly>(json).ok()?.usage
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
