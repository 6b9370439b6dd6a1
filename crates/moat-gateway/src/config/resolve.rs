//! Validation: turns a [`FileConfig`] into the [`Config`] the server runs on, or says exactly what is
//! wrong. Runs once at start (and in `moatd check-config`), never per request.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use moat_policy::cache::CachePartition;
use moat_policy::retry::RetryPolicy;
use moat_policy::route::{Catalog, CatalogError};
use moat_upstream::{Timeouts, UpstreamSettings};

use super::file::{FileConfig, ProviderKind, ProviderSection};
use super::DEFAULT_LISTEN;

/// A configuration mistake, phrased for the person who wrote the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: environment variable `{var}` is not set")]
    MissingEnv { field: String, var: String },
    #[error("{field}: unterminated `${{` reference")]
    BadReference { field: String },
    #[error("listen = {0:?} is not an address like 127.0.0.1:7400")]
    BadListen(String),
    #[error("provider {index}: name {name:?} must be 1-64 of a-z, 0-9, '-' or '_'")]
    BadProviderName { index: usize, name: String },
    #[error("provider `{name}`: base_url is required for kind = \"{kind}\"")]
    MissingBaseUrl { name: String, kind: &'static str },
    #[error("provider `{name}`: base_url {url:?}: {reason}")]
    BadBaseUrl {
        name: String,
        url: String,
        reason: String,
    },
    #[error("provider `{name}`: plain http:// to a non-loopback host ({host}) sends prompts and keys unencrypted; use https:// or set allow_plaintext = true")]
    Plaintext { name: String, host: String },
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("server.api_keys: entry {0} is empty")]
    EmptyKey(usize),
    #[error("listening on {0}, beyond loopback, with no server.api_keys or admin_keys would let anyone on the network spend your provider credits; add api_keys or set server.insecure_open = true")]
    OpenNonLoopback(SocketAddr),
    #[error("{field} must be greater than zero")]
    Zero { field: String },
    #[error("provider `{name}`: {message}")]
    Upstream { name: String, message: String },
    #[error("{0}")]
    Privacy(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("listening on {0}, beyond loopback, without TLS would send keys and prompts in the clear; set server.tls_cert_file and server.tls_key_file, or server.plaintext = true if a proxy in front terminates TLS")]
    PlaintextListen(SocketAddr),
}

/// Where the store and the secret live.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub url: String,
    pub secret_file: std::path::PathBuf,
    /// PostgreSQL's local usage spool.
    pub spool_file: std::path::PathBuf,
    pub spool_max_rows: u64,
}

impl StoreSettings {
    /// The store these settings name.
    pub fn open(&self) -> Result<std::sync::Arc<dyn moat_store::Store>, moat_store::StoreError> {
        moat_store::open(
            &self.url,
            moat_store::PgOptions {
                spool_file: Some(self.spool_file.clone()),
                spool_max_rows: self.spool_max_rows,
                ..moat_store::PgOptions::default()
            },
        )
    }
}

/// The server's own settings, with defaults applied.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub api_keys: Vec<String>,
    pub admin_keys: Vec<String>,
    /// Requests without a valid key are served (loopback with no keys configured, or insecure_open).
    pub open_allowed: bool,
    /// moatd listens on loopback only: `/metrics` may then be served without an admin key when none
    /// is configured. Beyond loopback it always needs one.
    pub listen_loopback: bool,
    pub default_max_output_tokens: u64,
    pub max_body_bytes: usize,
    pub insecure_open: bool,
    /// Certificate chain and key files for HTTPS, already checked to load.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub max_connections: usize,
    /// Accept to complete headers, and idle between requests (see `server::conn`).
    pub header_read_timeout: Duration,
    /// Longest a response may wait on a client that does not read.
    pub write_timeout: Duration,
    /// Largest SSE event or NDJSON line held while relaying or translating a stream.
    pub max_event_bytes: usize,
    pub body_read_timeout: Duration,
    pub models_cache_ttl: Duration,
    /// Origins allowed by CORS (`*` = any); empty = none.
    pub cors_origins: Vec<String>,
}

/// One validated provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// The kind's adapter, built with this provider's options.
    pub adapter: std::sync::Arc<dyn moat_upstream::adapter::ProviderAdapter>,
    /// Where the credential comes from, in words (never the secret), for `check-config`.
    pub credential: String,
    /// Per-model rpm/tpm caps and context windows.
    pub limits: super::routing::TargetLimits,
    /// Runs on our own hardware.
    pub local: bool,
    pub upstream: UpstreamSettings,
    /// Configured prices by upstream model name (`*` = any other model).
    pub prices: std::collections::BTreeMap<String, moat_policy::pricing::Price>,
    /// Health checks and circuit breaker.
    pub health: super::health::HealthSettings,
    /// The request member carrying each tenant's cache partition.
    pub cache_partition: CachePartition,
    /// llama.cpp's `cache_prompt`, sent when set.
    pub cache_prompt: Option<bool>,
    /// The provider serves the Responses API itself (`responses = "native"`).
    pub responses_native: bool,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub server: ServerSettings,
    pub store: StoreSettings,
    /// Shared limits (`[cluster]`); None on a single node.
    pub cluster: Option<super::ClusterSettings>,
    /// The privacy scan's settings, as written (compiled by the gateway).
    pub privacy: super::file::PrivacySection,
    /// The audit log's settings, as written.
    pub audit: super::file::AuditSection,
    pub providers: Vec<ProviderConfig>,
    /// `[[models]]` aliases' strategies and fallback options, by alias.
    pub routes: std::collections::HashMap<String, super::routing::RoutePolicy>,
    /// Model names, providers and aliases, already cross-checked.
    pub catalog: Catalog,
    /// Things that are allowed but worth a line at start (and in `check-config`).
    pub warnings: Vec<String>,
    /// The gateway's response cache.
    pub response_cache: super::cache::ResponseCacheSettings,
    /// Admin roles, single sign-on and console sessions.
    pub admin: super::admin::AdminSettings,
    /// Responses API conversation state.
    pub responses: super::responses::ResponsesSettings,
}

impl Config {
    /// Parses TOML text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Config, ConfigError> {
        Config::resolve(FileConfig::from_toml(text, path)?, &|name| {
            std::env::var(name).ok()
        })
    }

    /// Reads and validates a config file, with `${VAR}` from the process environment.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        Config::resolve(FileConfig::load(path)?, &|name| std::env::var(name).ok())
    }

    /// Validates a parsed file, looking `${VAR}` references up with `env` (tests pass a map).
    pub fn resolve(file: FileConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let listen_text = file.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| ConfigError::BadListen(listen_text.to_string()))?;

        let s = &file.server;
        let mut api_keys = Vec::with_capacity(s.api_keys.len());
        for (i, key) in s.api_keys.iter().enumerate() {
            let key = expand(key, &format!("server.api_keys[{i}]"), env)?;
            if key.trim().is_empty() {
                return Err(ConfigError::EmptyKey(i));
            }
            api_keys.push(key);
        }
        let mut admin_keys = Vec::with_capacity(s.admin_keys.len());
        for (i, key) in s.admin_keys.iter().enumerate() {
            let key = expand(key, &format!("server.admin_keys[{i}]"), env)?;
            if key.trim().is_empty() {
                return Err(ConfigError::EmptyKey(i));
            }
            admin_keys.push(key);
        }
        let keyed = !api_keys.is_empty() || !admin_keys.is_empty();
        let server = ServerSettings {
            api_keys,
            admin_keys,
            open_allowed: !keyed && (listen.ip().is_loopback() || s.insecure_open),
            listen_loopback: listen.ip().is_loopback(),
            default_max_output_tokens: s.default_max_output_tokens.unwrap_or(4096),
            max_body_bytes: positive(
                s.max_body_bytes.unwrap_or(8 * 1024 * 1024),
                "server.max_body_bytes",
            )?,
            insecure_open: s.insecure_open,
            tls: match (&s.tls_cert_file, &s.tls_key_file) {
                (Some(c), Some(k)) => {
                    crate::server::load_tls(c, k).map_err(ConfigError::Tls)?;
                    Some((c.clone(), k.clone()))
                }
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Tls(
                        "set both server.tls_cert_file and server.tls_key_file".into(),
                    ))
                }
            },
            max_connections: positive(s.max_connections.unwrap_or(4096), "server.max_connections")?,
            header_read_timeout: ms(s.header_read_timeout_ms, 10_000, "server.header_read_timeout_ms")?,
            write_timeout: ms(s.write_timeout_ms, 30_000, "server.write_timeout_ms")?,
            max_event_bytes: positive(
                s.max_event_bytes.unwrap_or(moat_wire::sse::DEFAULT_MAX_EVENT),
                "server.max_event_bytes",
            )?,
            body_read_timeout: ms(s.body_read_timeout_ms, 30_000, "server.body_read_timeout_ms")?,
            models_cache_ttl: Duration::from_millis(s.models_cache_ttl_ms.unwrap_or(60_000)),
            cors_origins: cors_origins(&s.cors_origins)?,
        };
        if !keyed && !listen.ip().is_loopback() {
            if !server.insecure_open {
                return Err(ConfigError::OpenNonLoopback(listen));
            }
            warnings.push(format!(
                "INSECURE: listening on {listen} with no client keys (server.insecure_open = true): anyone who can reach this address can use every provider"
            ));
        }

        if !listen.ip().is_loopback() && server.tls.is_none() {
            if !s.plaintext {
                return Err(ConfigError::PlaintextListen(listen));
            }
            warnings.push(format!("plain HTTP on {listen} (server.plaintext = true): keys and prompts cross the network unencrypted unless a proxy in front adds TLS"));
        }
        let server_tls = server.tls.is_some();
        let mut providers = Vec::with_capacity(file.providers.len());
        for (index, p) in file.providers.iter().enumerate() {
            let mut provider = resolve_provider(index, p, env, &mut warnings)?;
            provider.upstream.max_event_bytes = server.max_event_bytes;
            providers.push(provider);
        }
        let names: Vec<String> = file.providers.iter().map(|p| p.name.clone()).collect();
        let aliases: Vec<(String, Vec<String>)> = file
            .models
            .iter()
            .map(|m| (m.name.clone(), m.route.clone()))
            .collect();
        let catalog = Catalog::new(names, aliases, s.default_provider.as_deref())?;
        let routes = super::routing::route_policies(&file.models)?;
        if providers.is_empty() {
            warnings.push("no providers configured: every model request will get 404".to_string());
        }
        let dir = super::data_dir();
        let store = StoreSettings {
            url: match &file.store.url {
                Some(u) => expand(u, "store.url", env)?,
                None => format!("sqlite://{}", dir.join("moatd.db").display()),
            },
            secret_file: file
                .store
                .secret_file
                .clone()
                .unwrap_or_else(|| dir.join("secret")),
            spool_file: file
                .store
                .spool_file
                .clone()
                .unwrap_or_else(|| dir.join("usage-spool.jsonl")),
            spool_max_rows: file.store.spool_max_rows.unwrap_or(200_000),
        };
        let cluster_url = match &file.cluster.url {
            Some(u) => Some(expand(u, "cluster.url", env)?),
            None => None,
        };
        let cluster = file.cluster.resolve(cluster_url)?;
        // Compiling the scan here makes a bad rule a start-up (and check-config) error.
        crate::privacy::Privacy::new(&file.privacy).map_err(ConfigError::Privacy)?;
        if !matches!(file.privacy.data_collection.as_str(), "deny" | "allow") {
            return Err(ConfigError::Parse {
                path: "privacy.data_collection".into(),
                message: format!("{:?}: use \"deny\" or \"allow\"", file.privacy.data_collection),
            });
        }
        Ok(Config {
            listen,
            server,
            store,
            cluster,
            privacy: file.privacy.clone(),
            audit: file.audit.clone(),
            providers,
            routes,
            catalog,
            warnings,
            response_cache: file.response_cache.resolve()?,
            admin: file.admin.resolve(
                &|text, field| expand(text, field, env),
                env,
                server_tls || !listen.ip().is_loopback(),
            )?,
            responses: file.responses.resolve()?,
        })
    }
}

/// CORS origins as browsers send them: `scheme://host[:port]`, no path, or `*`.
fn cors_origins(origins: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(origins.len());
    for origin in origins {
        let o = origin.trim().trim_end_matches('/');
        let valid = o == "*"
            || moat_upstream::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.path() == "/"
            });
        if !valid {
            return Err(ConfigError::Parse {
                path: "server.cors_origins".into(),
                message: format!("{origin:?}: an origin is scheme://host[:port] (no path), or \"*\""),
            });
        }
        out.push(o.to_ascii_lowercase());
    }
    Ok(out)
}

fn positive(value: usize, field: &str) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero {
            field: field.to_string(),
        });
    }
    Ok(value)
}

fn ms(value: Option<u64>, default: u64, field: &str) -> Result<Duration, ConfigError> {
    let v = value.unwrap_or(default);
    if v == 0 {
        return Err(ConfigError::Zero {
            field: field.to_string(),
        });
    }
    Ok(Duration::from_millis(v))
}

fn resolve_provider(
    index: usize,
    p: &ProviderSection,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<ProviderConfig, ConfigError> {
    let valid_name = !p.name.is_empty()
        && p.name.len() <= 64
        && p.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(ConfigError::BadProviderName {
            index,
            name: p.name.clone(),
        });
    }
    let name = p.name.clone();
    let adapter = super::cloud::adapter(p, env)?;
    let base_url = match (&p.base_url, adapter.base_url()) {
        (Some(url), _) => expand(url, &format!("providers.{name}.base_url"), env)?,
        (None, Some(default)) => default,
        (None, None) => {
            return Err(ConfigError::MissingBaseUrl {
                name,
                kind: p.kind.as_str(),
            })
        }
    };
    let url = moat_upstream::Url::parse(&base_url).map_err(|e| ConfigError::BadBaseUrl {
        name: name.clone(),
        url: base_url.clone(),
        reason: e.to_string(),
    })?;
    let host = url.host_str().unwrap_or_default().to_string();
    let loopback = is_loopback_host(&host);
    match url.scheme() {
        "https" => {}
        "http" if loopback || p.allow_plaintext => {
            if !loopback {
                warnings.push(format!(
                    "provider `{name}`: plain http:// to {host} (allow_plaintext = true)"
                ));
            }
        }
        "http" => return Err(ConfigError::Plaintext { name, host }),
        other => {
            return Err(ConfigError::BadBaseUrl {
                name,
                url: base_url,
                reason: format!("scheme {other:?} is not http or https"),
            })
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::BadBaseUrl {
            name,
            url: "(hidden)".into(),
            reason: "put credentials in api_key, not in the URL".into(),
        });
    }
    let api_key = match &p.api_key {
        Some(k) => Some(expand(k, &format!("providers.{name}.api_key"), env)?).filter(|k| !k.is_empty()),
        None => None,
    };
    if let Some(ca) = &p.ca_file {
        moat_upstream::tls::load_pem_certs(ca).map_err(|e| ConfigError::Upstream {
            name: name.clone(),
            message: e.to_string(),
        })?;
    }
    let defaults = Timeouts::default();
    let retry_defaults = RetryPolicy::default();
    let (request_auth, credential) = super::cloud::credential(p, adapter.as_ref(), api_key.is_some(), env)?;
    let mut upstream = UpstreamSettings::new(name.clone(), base_url);
    upstream.api_key = api_key;
    upstream.request_auth = request_auth;
    upstream.auth_style = adapter.auth_style();
    upstream.ca_file = p.ca_file.clone();
    upstream.no_proxy = loopback;
    upstream.timeouts = Timeouts {
        connect: ms_or(
            p.connect_timeout_ms,
            defaults.connect,
            &name,
            "connect_timeout_ms",
        )?,
        first_byte: ms_or(
            p.first_byte_timeout_ms,
            defaults.first_byte,
            &name,
            "first_byte_timeout_ms",
        )?,
        idle: ms_or(p.idle_timeout_ms, defaults.idle, &name, "idle_timeout_ms")?,
    };
    upstream.retry = RetryPolicy {
        max_retries: p.max_retries.unwrap_or(retry_defaults.max_retries),
        base_delay: p
            .retry_base_ms
            .map(Duration::from_millis)
            .unwrap_or(retry_defaults.base_delay),
        max_delay: retry_defaults.max_delay,
        max_retry_after: p
            .max_retry_after_ms
            .map(Duration::from_millis)
            .unwrap_or(retry_defaults.max_retry_after),
    };
    if let Some(max) = p.max_response_bytes {
        upstream.max_response_bytes = positive(max, &format!("providers.{name}.max_response_bytes"))?;
    }
    let mut prices = std::collections::BTreeMap::new();
    for (model, [input, output]) in &p.prices {
        let price = moat_policy::pricing::Price::from_usd_per_mtok(*input, *output).ok_or_else(|| {
            ConfigError::Upstream {
                name: name.clone(),
                message: format!(
                    "prices.{model:?}: prices must be non-negative numbers (USD per million tokens)"
                ),
            }
        })?;
        prices.insert(model.clone(), price);
    }
    let cache_partition = match &p.cache_partition {
        Some(text) => text
            .parse::<CachePartition>()
            .map_err(|e| ConfigError::Upstream {
                name: name.clone(),
                message: e.to_string(),
            })?,
        None => adapter.default_partition(&host),
    };
    if cache_partition == CachePartition::None && !p.local {
        warnings.push(format!(
            "provider `{name}`: cache_partition = \"none\" on a remote provider: every tenant using its shared credential may share its prompt cache, so one tenant can time another's prompts; set a partition field or give each team its own key (moatd teams set-key)"
        ));
    }
    Ok(ProviderConfig {
        kind: p.kind,
        limits: super::routing::target_limits(p)?,
        adapter: adapter.clone(),
        credential,
        local: p.local,
        upstream,
        prices,
        health: super::health::resolve(p, adapter.as_ref(), &url, loopback)?,
        cache_partition,
        cache_prompt: p.cache_prompt,
        responses_native: match p.responses.as_deref() {
            None | Some("bridge") => false,
            Some("native") if p.kind.adapter().native("/responses") => true,
            Some("native") => {
                return Err(ConfigError::Upstream {
                    name,
                    message: format!(
                        "responses = \"native\" needs an OpenAI-wire provider; kind = \"{}\" is bridged",
                        p.kind.as_str()
                    ),
                })
            }
            Some(other) => {
                return Err(ConfigError::Upstream {
                    name,
                    message: format!("responses = {other:?}: use \"bridge\" or \"native\""),
                })
            }
        },
    })
}

fn ms_or(value: Option<u64>, default: Duration, name: &str, field: &str) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(ConfigError::Zero {
            field: format!("providers.{name}.{field}"),
        }),
        Some(v) => Ok(Duration::from_millis(v)),
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`: hosts where plain HTTP never leaves the machine.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Expands `${VAR}` references. An unset variable is an error: silently using an empty key would
/// either open the gateway or send requests without a credential.
pub fn expand(text: &str, field: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| ConfigError::BadReference {
            field: field.to_string(),
        })?;
        let var = &after[..end];
        let value = env(var).ok_or_else(|| ConfigError::MissingEnv {
            field: field.to_string(),
            var: var.to_string(),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
