//! The gateway's shared state and its router: which URL goes to which handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use moat_policy::route::{Catalog, ProviderId};
use moat_upstream::Upstream;

use crate::auth::Authenticator;
use crate::config::{Config, ProviderKind, ServerSettings};
use crate::handlers::{self, models::ModelsCache};
use crate::GatewayError;

/// One configured provider, ready to take requests.
#[derive(Debug)]
pub(crate) struct Provider {
    pub(crate) upstream: Upstream,
    #[allow(
        dead_code,
        reason = "kind-specific behaviour (adapters) arrives with later provider kinds"
    )]
    pub(crate) kind: ProviderKind,
    #[expect(dead_code, reason = "read by privacy routing")]
    pub(crate) local: bool,
}

/// Everything a request handler needs, built once from the config and shared by all connections.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) catalog: Catalog,
    pub(crate) providers: Vec<Provider>,
    pub(crate) auth: Authenticator,
    pub(crate) server: ServerSettings,
    pub(crate) models: ModelsCache,
    request_ids: RequestIds,
}

impl Gateway {
    /// Builds the per-provider clients. Fails only on TLS set-up problems (e.g. a bad `ca_file`).
    pub fn new(config: &Config) -> Result<Arc<Gateway>, GatewayError> {
        let mut providers = Vec::with_capacity(config.providers.len());
        for p in &config.providers {
            providers.push(Provider {
                upstream: Upstream::new(p.upstream.clone())?,
                kind: p.kind,
                local: p.local,
            });
        }
        Ok(Arc::new(Gateway {
            catalog: config.catalog.clone(),
            providers,
            auth: Authenticator::new(&config.server.api_keys),
            server: config.server.clone(),
            models: ModelsCache::new(config.server.models_cache_ttl),
            request_ids: RequestIds::new(),
        }))
    }

    pub(crate) fn provider(&self, id: ProviderId) -> Result<&Provider, GatewayError> {
        self.providers
            .get(id)
            .ok_or_else(|| GatewayError::Internal(format!("provider {id} missing")))
    }

    pub(crate) fn next_request_id(&self) -> String {
        self.request_ids.next()
    }
}

/// Request ids: a per-process random prefix plus a counter. Unique without coordination, cheap, and
/// later the key for idempotent accounting.
#[derive(Debug)]
struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(u64::from(std::process::id()));
        RequestIds {
            prefix: h.finish(),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        format!(
            "moat-{:016x}-{:x}",
            self.prefix,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The HTTP routes: OpenAI's under `/v1`, the same under `/api/v1` for OpenRouter clients, and health.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let api = Router::new()
        .route("/chat/completions", post(handlers::proxy::chat_completions))
        .route("/completions", post(handlers::proxy::completions))
        .route("/embeddings", post(handlers::proxy::embeddings))
        .route("/models", get(handlers::models::list_models));
    Router::new()
        .nest("/v1", api.clone())
        .nest("/api/v1", api)
        .route("/health", get(handlers::health))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(gateway)
}
