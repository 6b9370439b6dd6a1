//! The gateway's shared state and its router: which URL goes to which handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use moat_policy::route::{Catalog, ProviderId};
use moat_upstream::adapter::ProviderAdapter;
use moat_upstream::Upstream;

use moat_audit::AuditLog;
use moat_store::Store;

use crate::config::{Config, ServerSettings};
use crate::handlers::{self, models::ModelsCache};
use crate::identity::Identities;
use crate::ledger::Ledger;
use crate::limits::Limiter;
use crate::pricebook::PriceBook;
use crate::privacy::Privacy;
use crate::secret::ServerSecret;
use crate::GatewayError;

/// One configured provider, ready to take requests.
#[derive(Debug)]
pub(crate) struct Provider {
    pub(crate) upstream: Upstream,
    /// What this provider's kind does differently: paths, bodies, answers, errors, model lists.
    pub(crate) adapter: Arc<dyn ProviderAdapter>,
    /// Runs on our own hardware: the only place `local_only` requests may go.
    pub(crate) local: bool,
    /// Where the tenant's cache partition goes, and llama.cpp's `cache_prompt`.
    pub(crate) cache: crate::cache::partition::ProviderCacheRules,
    /// Serves `/responses` itself (`responses = "native"`): Responses requests are relayed, not bridged.
    pub(crate) responses_native: bool,
}

/// Everything a request handler needs, built once from the config and shared by all connections.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) catalog: Catalog,
    pub(crate) providers: Vec<Provider>,
    pub(crate) identities: Identities,
    /// Budgets, holds and rate windows: in memory, or shared through `[cluster]`.
    pub(crate) limits: Arc<dyn Limiter>,
    pub(crate) prices: PriceBook,
    pub(crate) privacy: Privacy,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) audit: Option<Arc<AuditLog>>,
    pub(crate) server: ServerSettings,
    pub(crate) models: ModelsCache,
    /// Per-provider breakers and health checks (started by `server::serve`).
    pub(crate) health: Arc<crate::health::Health>,
    request_ids: RequestIds,
    /// Whole answers kept per tenant (`[response_cache]`, off by default).
    pub(crate) response_cache: crate::cache::response::ResponseCache,
    /// Teams' own provider credentials.
    pub(crate) team_keys: crate::cache::team_keys::TeamKeys,
    /// Console sessions, role-bearing admin keys and single sign-on.
    pub(crate) console: crate::console::Console,
    /// Open connections (`server.max_connections`), shared by every core that serves.
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
    /// How long Responses turns are kept, and how long a conversation may grow.
    pub(crate) responses: crate::config::ResponsesSettings,
    /// Aliases' strategies, what they measure, and per-target caps.
    pub(crate) routes: crate::routing::Routes,
}

impl Gateway {
    /// Opens the store and the server secret the config names (`MOAT_SECRET` overrides the secret
    /// file), then builds the gateway.
    pub fn open(config: &Config) -> Result<Arc<Gateway>, GatewayError> {
        let store = config
            .store
            .open()
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        let secret = load_secret(config)?;
        let audit = crate::audit::open(config)?;
        // Files this moatd creates are private; older or hand-made ones may not be.
        for line in crate::state_files::looser_than_private(config) {
            tracing::warn!("{line}");
        }
        Gateway::with_parts(config, store, secret, audit)
    }

    /// Builds the gateway on a given store and secret (tests use an in-memory store). Provider keys
    /// saved with `moatd providers set-key` fill in providers whose config gives none.
    pub fn with_store(
        config: &Config,
        store: Arc<dyn Store>,
        secret: ServerSecret,
    ) -> Result<Arc<Gateway>, GatewayError> {
        Gateway::with_parts(config, store, secret, None)
    }

    /// As [`Gateway::with_store`], recording requests and admin actions in `audit`.
    pub fn with_parts(
        config: &Config,
        store: Arc<dyn Store>,
        secret: ServerSecret,
        audit: Option<Arc<AuditLog>>,
    ) -> Result<Arc<Gateway>, GatewayError> {
        let sealed = store.provider_secrets()?;
        let mut providers = Vec::with_capacity(config.providers.len());
        for p in &config.providers {
            let mut settings = p.upstream.clone();
            if settings.api_key.is_none() {
                if let Some(s) = sealed.iter().find(|s| s.provider == settings.name) {
                    let key = secret
                        .open(&s.provider, &s.nonce, &s.ciphertext)
                        .map_err(|e| GatewayError::Internal(e.to_string()))?;
                    settings.api_key = Some(key);
                }
            }
            providers.push(Provider {
                upstream: Upstream::new(settings)?,
                adapter: p.adapter.clone(),
                local: p.local,
                cache: crate::cache::partition::ProviderCacheRules {
                    partition: p.cache_partition,
                    cache_prompt: p.cache_prompt,
                },
                responses_native: p.responses_native,
            });
        }
        crate::handlers::install_metrics();
        let health = crate::health::Health::new(
            providers
                .iter()
                .zip(&config.providers)
                .map(|(p, c)| (p.upstream.settings(), &c.health)),
        )?;
        let limits: Arc<dyn Limiter> = match &config.cluster {
            Some(cluster) => crate::cluster::ClusterLimiter::start(cluster, store.clone())?,
            None => Arc::new(Ledger::new(store.clone())),
        };
        let identities = Identities::new(
            store.clone(),
            secret,
            &config.server.api_keys,
            &config.server.admin_keys,
            config.server.open_allowed,
            limits.clone(),
        )?;
        Ok(Arc::new(Gateway {
            catalog: config.catalog.clone(),
            privacy: Privacy::new(&config.privacy).map_err(GatewayError::Internal)?,
            prices: PriceBook::new(config.providers.iter().map(|p| (p.local, p.prices.clone()))),
            providers,
            identities,
            limits,
            store,
            audit,
            server: config.server.clone(),
            models: ModelsCache::new(config.server.models_cache_ttl),
            health: Arc::new(health),
            request_ids: RequestIds::new(),
            response_cache: crate::cache::response::ResponseCache::new(config.response_cache.clone()),
            team_keys: crate::cache::team_keys::TeamKeys::new(),
            console: crate::console::Console::new(&config.admin)?,
            connections: Arc::new(tokio::sync::Semaphore::new(config.server.max_connections)),
            responses: config.responses,
            routes: crate::routing::Routes::new(config, &config.catalog),
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

/// The server secret: `MOAT_SECRET` when set, else the secret file (created on first start).
pub fn load_secret(config: &Config) -> Result<ServerSecret, GatewayError> {
    match std::env::var("MOAT_SECRET") {
        Ok(text) if !text.trim().is_empty() => Ok(ServerSecret::from_text(&text)),
        _ => ServerSecret::load_or_create(&config.store.secret_file)
            .map_err(|e| GatewayError::Internal(e.to_string())),
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
        .route("/messages", post(handlers::messages::messages))
        .route(
            "/messages/count_tokens",
            post(handlers::count_tokens::count_tokens),
        )
        .route("/responses", post(handlers::responses::create))
        .route(
            "/responses/{id}",
            get(handlers::responses::state::retrieve).delete(handlers::responses::state::delete),
        )
        .route(
            "/responses/{id}/input_items",
            get(handlers::responses::state::input_items),
        )
        .route("/completions", post(handlers::proxy::completions))
        .route("/embeddings", post(handlers::proxy::embeddings))
        .route("/models", get(handlers::models::list_models))
        .route("/models/{*id}", get(handlers::models::retrieve_model))
        .route("/key", get(handlers::key_info::key_info))
        .route("/auth/key", get(handlers::key_info::key_info));
    use handlers::{admin as a, admin_views as v};
    let admin = Router::new()
        .route("/keys", post(a::create_key).get(a::list_keys))
        .route("/keys/{id}/{action}", post(a::key_action))
        .route("/teams", post(a::create_team).get(a::list_teams))
        .route("/teams/{team}/limits", post(a::team_limits))
        .route("/usage", get(a::usage))
        .route("/usage/series", get(v::series))
        .route("/me", get(v::me))
        .route("/requests", get(v::requests))
        .route("/audit", get(v::audit_status))
        .route("/audit/verify", post(v::audit_verify))
        .route("/providers", get(v::providers))
        .route(
            "/teams/{team}/provider-keys/{provider}",
            axum::routing::put(a::set_team_provider_key).delete(a::remove_team_provider_key),
        );
    let cors_origins = Arc::new(gateway.server.cors_origins.clone());
    let router = Router::new()
        .nest("/v1", api.clone())
        .nest("/api/v1", api)
        .nest("/admin", admin)
        .route("/ui/", get(crate::console::index))
        .nest("/ui", crate::console::routes())
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            crate::observe::layer::observe,
        ))
        .with_state(gateway);
    if cors_origins.is_empty() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(
        cors_origins,
        crate::cors::layer,
    ))
}
