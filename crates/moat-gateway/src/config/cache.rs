//! `[response_cache]`: the gateway's own cache of whole (non-streamed) answers, as written and as
//! validated. Off unless enabled; see docs/SECURITY.md for what it shares with whom (nothing across
//! tenants).

use std::time::Duration;

use moat_policy::keys::ModelFilter;
use serde::Deserialize;

use super::ConfigError;

/// The section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseCacheSection {
    /// Default false: every request goes to a provider.
    #[serde(default)]
    pub enabled: bool,
    /// Model names (as clients request them, globs like `local/*` or an alias) whose answers may be
    /// cached; empty = every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Memory budget for cached answers, in bytes (default 64 MiB); the least recently used go first.
    pub max_bytes: Option<usize>,
    /// Largest single answer kept (default 1 MiB); larger ones are served but not cached.
    pub max_entry_bytes: Option<usize>,
    /// How long an answer stays valid, in ms (default 300 000 = 5 minutes).
    pub ttl_ms: Option<u64>,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct ResponseCacheSettings {
    pub enabled: bool,
    pub models: ModelFilter,
    pub max_bytes: usize,
    pub max_entry_bytes: usize,
    pub ttl: Duration,
}

impl Default for ResponseCacheSettings {
    fn default() -> Self {
        ResponseCacheSettings {
            enabled: false,
            models: ModelFilter::default(),
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            ttl: Duration::from_secs(300),
        }
    }
}

impl ResponseCacheSection {
    /// Checks the section: zero sizes or TTL and bad globs are errors.
    pub fn resolve(&self) -> Result<ResponseCacheSettings, ConfigError> {
        let defaults = ResponseCacheSettings::default();
        let zero = |field: &str| ConfigError::Zero {
            field: format!("response_cache.{field}"),
        };
        let max_bytes = self.max_bytes.unwrap_or(defaults.max_bytes);
        let max_entry_bytes = self.max_entry_bytes.unwrap_or(defaults.max_entry_bytes);
        if max_bytes == 0 {
            return Err(zero("max_bytes"));
        }
        if max_entry_bytes == 0 {
            return Err(zero("max_entry_bytes"));
        }
        if self.ttl_ms == Some(0) {
            return Err(zero("ttl_ms"));
        }
        let models = ModelFilter::new(&self.models).map_err(|e| ConfigError::Parse {
            path: "response_cache.models".into(),
            message: e.to_string(),
        })?;
        Ok(ResponseCacheSettings {
            enabled: self.enabled,
            models,
            max_bytes,
            max_entry_bytes: max_entry_bytes.min(max_bytes),
            ttl: self.ttl_ms.map_or(defaults.ttl, Duration::from_millis),
        })
    }
}
