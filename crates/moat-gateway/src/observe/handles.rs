//! Metric handles found once and reused. Registering a series (allocating its labels, hashing them,
//! looking the key up in the recorder) costs many times what recording into it does, and a request
//! records up to six series; so the layer keeps each label set's handles, keyed by the request's raw
//! facts. The cache is bounded: past [`MAX_CACHED`] label sets (only reachable by clients cycling
//! through model names) handles are registered per request, as without the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use metrics::{Counter, Gauge, Histogram};

use super::metrics::{self as m, MODELS};

/// Label sets whose handles are kept.
pub const MAX_CACHED: usize = 4096;

/// The GenAI histograms of one label set.
pub(crate) struct GenAi {
    pub(crate) duration: Histogram,
    pub(crate) ttft: Histogram,
    pub(crate) tpot: Histogram,
    pub(crate) input_tokens: Histogram,
    pub(crate) output_tokens: Histogram,
}

/// A request's raw facts that make its labels: operation, requested model, provider, endpoint,
/// status, team.
pub(crate) type GenAiKey = (
    &'static str,
    Option<String>,
    Option<String>,
    &'static str,
    u16,
    Option<String>,
);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn genai(key: GenAiKey) -> Arc<GenAi> {
    static CACHE: OnceLock<Mutex<HashMap<GenAiKey, Arc<GenAi>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(h) = lock(cache).get(&key) {
        return h.clone();
    }
    let (operation, model, provider, route, status, team) = &key;
    let labels = [
        ("gen_ai_operation_name", operation.to_string()),
        (
            "gen_ai_request_model",
            model
                .as_deref()
                .map_or_else(|| "unknown".to_string(), |v| MODELS.label(v)),
        ),
        (
            "gen_ai_provider_name",
            provider.clone().unwrap_or_else(|| "none".to_string()),
        ),
        ("endpoint", route.to_string()),
        ("status", status.to_string()),
        ("team", m::team_label(team.as_deref())),
    ];
    let tokens = |kind: &str| {
        let mut with_type = labels.to_vec();
        with_type.push(("gen_ai_token_type", kind.to_string()));
        metrics::histogram!(m::TOKEN_USAGE, &with_type)
    };
    let handles = Arc::new(GenAi {
        duration: metrics::histogram!(m::OPERATION_DURATION, &labels),
        ttft: metrics::histogram!(m::TIME_TO_FIRST_TOKEN, &labels),
        tpot: metrics::histogram!(m::TIME_PER_OUTPUT_TOKEN, &labels),
        input_tokens: tokens("input"),
        output_tokens: tokens("output"),
    });
    let mut map = lock(cache);
    if map.len() < MAX_CACHED {
        map.insert(key, handles.clone());
    }
    handles
}

/// `moat_requests_total{endpoint, status}`: endpoints are a fixed set and statuses three digits, so
/// every pair is kept.
pub(crate) fn requests(route: &'static str, status: u16) -> Counter {
    static CACHE: OnceLock<Mutex<HashMap<(&'static str, u16), Counter>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = lock(cache).get(&(route, status)) {
        return c.clone();
    }
    let counter = metrics::counter!(m::REQUESTS, "endpoint" => route, "status" => status.to_string());
    lock(cache).insert((route, status), counter.clone());
    counter
}

pub(crate) fn requests_in_flight() -> &'static Gauge {
    static G: OnceLock<Gauge> = OnceLock::new();
    G.get_or_init(|| metrics::gauge!(m::REQUESTS_IN_FLIGHT))
}

pub(crate) fn streams_in_flight() -> &'static Gauge {
    static G: OnceLock<Gauge> = OnceLock::new();
    G.get_or_init(|| metrics::gauge!(m::STREAMS_IN_FLIGHT))
}
