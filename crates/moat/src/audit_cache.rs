//! `moat audit-cache`: the prompt-cache timing audit of Gu et al. ("Auditing Prompt Caching in
//! Language Model APIs", ICML 2025) against any OpenAI-compatible endpoint.
//!
//! Each "hit" trial sends a random prompt with key A, then one sharing its first 95% with key B
//! (or key A again with `--level key`); each "miss" trial sends an unrelated prompt with key A, then
//! a fresh one with key B. Trials are interleaved in random order, every request asks for one token
//! (`max_tokens = 1`) and is streamed, and B's time to first token is recorded. If B's prompts are
//! served from a cache A filled, hit times are smaller: a one-sided two-sample Kolmogorov–Smirnov
//! test says how surely. Verdict "shared" at p < 1e-8, "isolated" at p > 0.01, else "inconclusive".
//! The endpoint's own `usage.prompt_tokens_details.cached_tokens` on hit trials (CacheProbe's
//! metadata check) is reported too.
//!
//! [`ks`], [`trials`] and [`report`] are pure; [`run`] does the requests.

pub mod ks;
pub mod report;
pub mod run;
pub mod trials;

pub use run::run;
