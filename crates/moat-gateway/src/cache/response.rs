//! The gateway's response cache: whole non-streamed answers, reused for the exact same request from
//! the same tenant. Off unless `[response_cache] enabled = true`.
//!
//! The key is SHA-256 over the tenant id, the endpoint and the canonical JSON of the request (keys
//! sorted, `stream` members dropped), so a tenant can only ever be served what it was itself
//! answered; the tenant is part of the key on the server side, nothing a client sends can choose it.
//! Streams are never cached (they are relayed as they arrive, never buffered). A request with
//! `Cache-Control: no-store` neither reads nor writes. Memory is bounded by a byte budget with
//! least-recently-used eviction, and entries expire after a TTL.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::ResponseCacheSettings;

/// The response header saying what the cache did.
pub(crate) const HEADER: &str = "x-moat-cache";

/// A cached answer.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub(crate) body: Bytes,
    pub(crate) content_type: Option<HeaderValue>,
    /// The provider and model that answered, for the usage record of a hit.
    pub(crate) provider: String,
    pub(crate) model: String,
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    stored: Instant,
    /// Position in the recency order.
    tick: u64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<[u8; 32], Entry>,
    /// Recency order: smallest tick = least recently used.
    order: BTreeMap<u64, [u8; 32]>,
    tick: u64,
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, key: &[u8; 32]) {
        if let Some(e) = self.map.remove(key) {
            self.order.remove(&e.tick);
            self.bytes -= e.cached.body.len();
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

/// The bounded, TTL'd map of answers.
#[derive(Debug)]
pub(crate) struct ResponseCache {
    settings: ResponseCacheSettings,
    inner: Mutex<Inner>,
}

/// What the cache does for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The cache is off, or this model is not opted in: no header, nothing done.
    Off,
    /// Opted in, but a stream or `Cache-Control: no-store`: neither read nor written.
    Bypass,
    /// Look up (and on a miss, store under) this key.
    Use([u8; 32]),
}

impl ResponseCache {
    pub(crate) fn new(settings: ResponseCacheSettings) -> ResponseCache {
        ResponseCache {
            settings,
            inner: Mutex::default(),
        }
    }

    /// Whether a request is served from (and stored in) the cache, and under which key.
    /// The request is only serialized when the cache will be used.
    pub(crate) fn decide(
        &self,
        tenant: &str,
        path: &str,
        model: Option<&str>,
        stream: bool,
        headers: &HeaderMap,
        request: impl FnOnce() -> Value,
    ) -> Decision {
        if !self.settings.enabled || !model.is_some_and(|m| self.settings.models.allows(m)) {
            return Decision::Off;
        }
        if stream || no_store(headers) {
            return Decision::Bypass;
        }
        Decision::Use(key(tenant, path, &request()))
    }

    /// The answer stored under `key`, if it has not expired.
    pub(crate) fn get(&self, key: &[u8; 32], now: Instant) -> Option<Cached> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let expired = match inner.map.get(key) {
            None => return None,
            Some(e) => now.saturating_duration_since(e.stored) >= self.settings.ttl,
        };
        if expired {
            inner.remove(key);
            return None;
        }
        let tick = inner.next_tick();
        let entry = inner.map.get_mut(key)?;
        let old = std::mem::replace(&mut entry.tick, tick);
        let cached = entry.cached.clone();
        inner.order.remove(&old);
        inner.order.insert(tick, *key);
        Some(cached)
    }

    /// Stores an answer, evicting the least recently used ones to stay within the byte budget. An
    /// answer larger than `max_entry_bytes` is not kept.
    pub(crate) fn put(&self, key: [u8; 32], cached: Cached, now: Instant) {
        let size = cached.body.len();
        if size > self.settings.max_entry_bytes || size > self.settings.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.remove(&key);
        while inner.bytes + size > self.settings.max_bytes {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            if let Some(e) = inner.map.remove(&oldest) {
                inner.bytes -= e.cached.body.len();
            }
        }
        let tick = inner.next_tick();
        inner.order.insert(tick, key);
        inner.bytes += size;
        inner.map.insert(
            key,
            Entry {
                cached,
                stored: now,
                tick,
            },
        );
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).bytes
    }
}

/// True when the request's `Cache-Control` has a `no-store` directive.
fn no_store(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
}

/// The request as the cache sees it: its JSON, with the fallback list (taken out before routing)
/// put back, since it changes who may answer.
pub(crate) fn request_value<T: serde::Serialize>(request: &T, fallbacks: &[String]) -> Value {
    let mut value = serde_json::to_value(request).unwrap_or(Value::Null);
    if let (Some(map), false) = (value.as_object_mut(), fallbacks.is_empty()) {
        map.insert("models".into(), Value::from(fallbacks.to_vec()));
    }
    value
}

/// SHA-256 over the tenant, the endpoint and the request's canonical JSON. Lengths are prefixed so
/// no tenant id can be extended into another's key.
pub(crate) fn key(tenant: &str, path: &str, request: &Value) -> [u8; 32] {
    let mut canonical = String::new();
    write_canonical(request, &mut canonical, true);
    let mut h = Sha256::new();
    h.update(b"moat response cache v1\0");
    for part in [tenant, path, canonical.as_str()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// JSON with object keys sorted at every level; at the top level the `stream` members are left out
/// (a non-streamed request with `"stream": false` is the same request as one without it).
fn write_canonical(value: &Value, out: &mut String, top: bool) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| !(top && matches!(k.as_str(), "stream" | "stream_options")))
                .collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out, false);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out, false);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn settings(max_bytes: usize, ttl_ms: u64) -> ResponseCacheSettings {
        ResponseCacheSettings {
            enabled: true,
            max_bytes,
            max_entry_bytes: max_bytes,
            ttl: Duration::from_millis(ttl_ms),
            ..ResponseCacheSettings::default()
        }
    }

    fn answer(text: &str) -> Cached {
        Cached {
            body: Bytes::from(text.to_string()),
            content_type: None,
            provider: "p".into(),
            model: "m".into(),
        }
    }

    #[test]
    fn keys_ignore_member_order_and_stream_but_not_tenant_or_content() {
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": false});
        let b = json!({"messages": [{"content": "hi", "role": "user"}], "model": "m"});
        assert_eq!(key("t1", "/chat", &a), key("t1", "/chat", &b));
        assert_ne!(key("t1", "/chat", &a), key("t2", "/chat", &a));
        assert_ne!(key("t1", "/chat", &a), key("t1", "/completions", &a));
        let c = json!({"model": "m", "messages": [{"role": "user", "content": "hi!"}]});
        assert_ne!(key("t1", "/chat", &a), key("t1", "/chat", &c));
        // A nested `stream` member is content, not the top-level switch.
        let d = json!({"model": "m", "x": {"stream": true}});
        let e = json!({"model": "m", "x": {}});
        assert_ne!(key("t", "/p", &d), key("t", "/p", &e));
        assert_ne!(key("ab", "c", &a), key("a", "bc", &a));
    }

    #[test]
    fn decisions_follow_settings_streams_and_no_store() {
        let req = json!({"model": "m"});
        let off = ResponseCache::new(ResponseCacheSettings::default());
        let h = HeaderMap::new();
        assert_eq!(
            off.decide("t", "/p", Some("m"), false, &h, || req.clone()),
            Decision::Off
        );
        let on = ResponseCache::new(ResponseCacheSettings {
            models: moat_policy::keys::ModelFilter::new(&["local/*".into()]).unwrap(),
            ..settings(100, 1000)
        });
        assert_eq!(
            on.decide("t", "/p", Some("remote/x"), false, &h, || req.clone()),
            Decision::Off
        );
        assert_eq!(
            on.decide("t", "/p", None, false, &h, || req.clone()),
            Decision::Off
        );
        assert!(matches!(
            on.decide("t", "/p", Some("local/x"), false, &h, || req.clone()),
            Decision::Use(_)
        ));
        assert_eq!(
            on.decide("t", "/p", Some("local/x"), true, &h, || req.clone()),
            Decision::Bypass
        );
        let mut ns = HeaderMap::new();
        ns.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=0, No-Store"),
        );
        assert_eq!(
            on.decide("t", "/p", Some("local/x"), false, &ns, || req.clone()),
            Decision::Bypass
        );
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = ResponseCache::new(settings(100, 1000));
        let t0 = Instant::now();
        cache.put([1; 32], answer("one"), t0);
        assert_eq!(
            cache.get(&[1; 32], t0 + Duration::from_millis(999)).unwrap().body,
            "one"
        );
        assert!(cache.get(&[1; 32], t0 + Duration::from_millis(1000)).is_none());
        assert_eq!(cache.bytes(), 0, "an expired entry is dropped when found");
        assert!(cache.get(&[2; 32], t0).is_none());
    }

    #[test]
    fn the_byte_budget_evicts_least_recently_used() {
        let cache = ResponseCache::new(settings(10, 60_000));
        let t = Instant::now();
        cache.put([1; 32], answer("aaaa"), t);
        cache.put([2; 32], answer("bbbb"), t);
        assert!(cache.get(&[1; 32], t).is_some(), "1 is now the most recent");
        cache.put([3; 32], answer("cccc"), t);
        assert!(cache.get(&[2; 32], t).is_none(), "2 was least recently used");
        assert!(cache.get(&[1; 32], t).is_some());
        assert!(cache.get(&[3; 32], t).is_some());
        assert_eq!(cache.bytes(), 8);
        cache.put([4; 32], answer("this is too long"), t);
        assert!(
            cache.get(&[4; 32], t).is_none(),
            "larger than the budget: not kept"
        );
        assert_eq!(cache.bytes(), 8);
        cache.put([1; 32], answer("zz"), t);
        assert_eq!(cache.bytes(), 6, "replacing an entry frees its old bytes");
    }

    #[test]
    fn entry_size_cap_applies() {
        let cache = ResponseCache::new(ResponseCacheSettings {
            max_entry_bytes: 3,
            ..settings(100, 60_000)
        });
        let t = Instant::now();
        cache.put([1; 32], answer("four"), t);
        assert!(cache.get(&[1; 32], t).is_none());
        cache.put([1; 32], answer("abc"), t);
        assert!(cache.get(&[1; 32], t).is_some());
    }
}
