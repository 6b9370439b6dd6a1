//! A simulated provider prefix cache, for cache-timing tests: prompts are cut into fixed blocks whose
//! hashes chain (as vLLM's prefix caching does), keyed by whatever partition the request carries
//! (`cache_salt`, `prompt_cache_key`, `user`, and optionally the API key). A prompt whose leading
//! blocks are cached answers its first byte sooner, in proportion to the cached share, and reports
//! them in `usage.prompt_tokens_details.cached_tokens`. Opt-in per emulator, so other tests keep
//! their timing.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

/// How the simulated cache behaves.
#[derive(Debug, Clone)]
pub struct PrefixCacheOptions {
    /// Time to first byte when nothing of the prompt is cached.
    pub miss_delay: Duration,
    /// Time to first byte when all of it is.
    pub hit_delay: Duration,
    /// Characters per cache block; only whole blocks are cached.
    pub block_chars: usize,
    /// Most blocks remembered; the oldest are forgotten first.
    pub max_blocks: usize,
    /// Also partition by the request's `Authorization` (a provider whose cache is per API key).
    pub per_key: bool,
}

impl Default for PrefixCacheOptions {
    fn default() -> Self {
        PrefixCacheOptions {
            miss_delay: Duration::from_millis(40),
            hit_delay: Duration::from_millis(5),
            block_chars: 64,
            max_blocks: 100_000,
            per_key: false,
        }
    }
}

/// What the cache made of one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lookup {
    pub(crate) delay: Duration,
    /// Prompt tokens (4 characters each) served from the cache.
    pub(crate) cached_tokens: u64,
}

#[derive(Debug, Default)]
struct Blocks {
    known: HashSet<u64>,
    order: VecDeque<u64>,
}

/// The emulator's shared cache.
#[derive(Debug)]
pub(crate) struct PrefixCache {
    opts: PrefixCacheOptions,
    blocks: Mutex<Blocks>,
}

impl PrefixCache {
    pub(crate) fn new(opts: PrefixCacheOptions) -> PrefixCache {
        PrefixCache {
            opts,
            blocks: Mutex::default(),
        }
    }

    /// Looks the request's prompt up (counting its cached leading blocks), then caches all of it.
    pub(crate) fn observe(&self, request: &Value, authorization: Option<&str>) -> Lookup {
        let partition = partition_of(request, authorization.filter(|_| self.opts.per_key));
        let text = prompt_text(request);
        let chars: Vec<char> = text.chars().collect();
        let block = self.opts.block_chars.max(1);
        let hashes: Vec<u64> = {
            let mut prev = {
                let mut h = DefaultHasher::new();
                partition.hash(&mut h);
                h.finish()
            };
            chars
                .chunks_exact(block)
                .map(|c| {
                    let mut h = DefaultHasher::new();
                    prev.hash(&mut h);
                    c.hash(&mut h);
                    prev = h.finish();
                    prev
                })
                .collect()
        };
        let mut blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = hashes.iter().take_while(|h| blocks.known.contains(h)).count();
        for h in &hashes {
            if blocks.known.insert(*h) {
                blocks.order.push_back(*h);
            }
        }
        while blocks.order.len() > self.opts.max_blocks {
            if let Some(old) = blocks.order.pop_front() {
                blocks.known.remove(&old);
            }
        }
        drop(blocks);
        let total = chars.len().max(1) as f64;
        let cached_chars = cached * block;
        let share = cached_chars as f64 / total;
        let span = self.opts.miss_delay.saturating_sub(self.opts.hit_delay);
        Lookup {
            delay: self.opts.hit_delay + span.mul_f64((1.0 - share).clamp(0.0, 1.0)),
            cached_tokens: (cached_chars as u64) / 4,
        }
    }
}

/// Everything a request partitions the cache by.
fn partition_of(request: &Value, authorization: Option<&str>) -> String {
    let field = |name: &str| request.get(name).and_then(Value::as_str).unwrap_or_default();
    format!(
        "salt={}\0pck={}\0user={}\0auth={}",
        field("cache_salt"),
        field("prompt_cache_key"),
        field("user"),
        authorization.unwrap_or_default()
    )
}

/// The prompt as one string: each chat message's role and text in order, or the text prompt.
fn prompt_text(request: &Value) -> String {
    if let Some(messages) = request.get("messages").and_then(Value::as_array) {
        let mut out = String::new();
        for m in messages {
            out.push_str(m.get("role").and_then(Value::as_str).unwrap_or_default());
            out.push('\n');
            match m.get("content") {
                Some(Value::String(s)) => out.push_str(s),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        out.push_str(p.get("text").and_then(Value::as_str).unwrap_or_default());
                    }
                }
                _ => {}
            }
            out.push('\n');
        }
        return out;
    }
    match request.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chat(text: &str, salt: Option<&str>) -> Value {
        let mut v = json!({"model": "m", "messages": [{"role": "user", "content": text}]});
        if let Some(s) = salt {
            v["cache_salt"] = json!(s);
        }
        v
    }

    #[test]
    fn shared_prefixes_hit_within_a_partition_only() {
        let cache = PrefixCache::new(PrefixCacheOptions::default());
        let long: String = "word ".repeat(200);
        let first = cache.observe(&chat(&long, None), None);
        assert_eq!(first.cached_tokens, 0);
        assert_eq!(first.delay, Duration::from_millis(40));
        let mut similar = long[..950].to_string();
        similar.push_str("other words at the end");
        let again = cache.observe(&chat(&similar, None), None);
        assert!(again.cached_tokens > 200, "{again:?}");
        assert!(again.delay < Duration::from_millis(10), "{again:?}");
        let salted = cache.observe(&chat(&similar, Some("tenant-b")), None);
        assert_eq!(salted.cached_tokens, 0, "another partition shares nothing");
        assert_eq!(salted.delay, Duration::from_millis(40));
    }

    #[test]
    fn per_key_partitioning_and_the_bound() {
        let cache = PrefixCache::new(PrefixCacheOptions {
            per_key: true,
            max_blocks: 4,
            ..PrefixCacheOptions::default()
        });
        let text = "x".repeat(64 * 4);
        cache.observe(&chat(&text, None), Some("Bearer a"));
        assert_eq!(
            cache.observe(&chat(&text, None), Some("Bearer b")).cached_tokens,
            0
        );
        // The second key's four blocks pushed the first key's out of the four-block cache.
        assert_eq!(
            cache.observe(&chat(&text, None), Some("Bearer a")).cached_tokens,
            0
        );
        assert_eq!(
            cache.observe(&chat(&text, None), Some("Bearer a")).cached_tokens,
            4 * 16
        );
    }
}
