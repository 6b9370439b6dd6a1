//! Fallback on refusals that are the request's, not the provider's, but that another target may
//! still answer: a prompt too long for this model's context window (fall to targets with a larger
//! one), and, when a route opts in, a content-policy refusal (fall to the next target).
//!
//! Errors reach this module already in OpenAI's shape (each provider kind translates its own), so
//! the decision reads the error's `code` and `message`: the codes OpenAI and moat's translations use,
//! and the phrases providers that send no code use.
//!
//! ```
//! use moat_policy::fallback::{classify, larger_context, Refusal};
//!
//! assert_eq!(classify(400, Some("context_length_exceeded"), ""), Some(Refusal::ContextWindow));
//! assert_eq!(classify(400, Some("content_filter"), ""), Some(Refusal::ContentPolicy));
//! assert_eq!(classify(400, None, "bad temperature"), None);
//! // 8k failed: the 4k target is skipped, the 128k and the unknown one are kept.
//! assert_eq!(larger_context(Some(8192), &[Some(4096), Some(131072), None]), vec![false, true, true]);
//! ```

/// A refusal that another target might not give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The prompt (plus the output asked for) does not fit the model's context window.
    ContextWindow,
    /// The provider's content filter refused the prompt or the answer.
    ContentPolicy,
}

/// Error codes that mean "the prompt is too long" (OpenAI's, and what moat's translations send).
const CONTEXT_CODES: [&str; 3] = [
    "context_length_exceeded",
    "context_window_exceeded",
    "string_above_max_length",
];

/// Phrases of providers that send no code: Anthropic ("prompt is too long"), Bedrock ("input is
/// too long", "too many input tokens"), Gemini ("exceeds the maximum number of tokens"), vLLM and
/// llama.cpp ("maximum context length", "exceeds the available context size").
const CONTEXT_PHRASES: [&str; 8] = [
    "maximum context length",
    "context length",
    "context window",
    "prompt is too long",
    "input is too long",
    "too many input tokens",
    "exceeds the maximum number of tokens",
    "exceeds the available context size",
];

const POLICY_CODES: [&str; 4] = [
    "content_filter",
    "content_policy_violation",
    "content_filtered",
    "guardrail_intervened",
];

/// Which refusal, if any, an error of `status` with `code` and `message` is. Only client errors
/// (400, 413, 422) are refusals; a 5xx is the provider's fault and falls back anyway.
pub fn classify(status: u16, code: Option<&str>, message: &str) -> Option<Refusal> {
    if !matches!(status, 400 | 413 | 422) {
        return None;
    }
    if let Some(code) = code {
        if CONTEXT_CODES.contains(&code) {
            return Some(Refusal::ContextWindow);
        }
        if POLICY_CODES.contains(&code) {
            return Some(Refusal::ContentPolicy);
        }
    }
    let lower = message.to_ascii_lowercase();
    CONTEXT_PHRASES
        .iter()
        .any(|p| lower.contains(p))
        .then_some(Refusal::ContextWindow)
}

/// After a context-window refusal from a target with `failed` tokens of context, which of the
/// `remaining` targets are still worth trying: those with a larger window, and those whose window
/// is not configured (they may be larger). When the failed target's window is unknown, every
/// remaining target is kept: there is nothing to compare with.
pub fn larger_context(failed: Option<u64>, remaining: &[Option<u64>]) -> Vec<bool> {
    remaining
        .iter()
        .map(|w| match (failed, w) {
            (Some(f), Some(w)) => *w > f,
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn provider_messages_are_recognised() {
        for msg in [
            "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",
            "prompt is too long: 210000 tokens > 200000 maximum",
            "Input is too long for requested model.",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            "the request exceeds the available context size, try increasing it",
        ] {
            assert_eq!(classify(400, None, msg), Some(Refusal::ContextWindow), "{msg}");
        }
        assert_eq!(
            classify(400, Some("invalid_request"), "temperature out of range"),
            None
        );
        assert_eq!(
            classify(500, Some("context_length_exceeded"), ""),
            None,
            "a 5xx is the provider's failure, not a refusal"
        );
        assert_eq!(
            classify(400, Some("guardrail_intervened"), ""),
            Some(Refusal::ContentPolicy)
        );
    }

    proptest! {
        /// A kept target never has a known window at or below the failed one's.
        #[test]
        fn never_keeps_a_smaller_known_window(failed in proptest::option::of(0u64..1_000_000),
                                              rest in proptest::collection::vec(proptest::option::of(0u64..1_000_000), 0..16)) {
            let keep = larger_context(failed, &rest);
            prop_assert_eq!(keep.len(), rest.len());
            for (k, w) in keep.iter().zip(&rest) {
                if let (true, Some(f), Some(w)) = (k, failed, w) {
                    prop_assert!(*w > f);
                }
                if w.is_none() || failed.is_none() {
                    prop_assert!(*k);
                }
            }
        }
    }
}
