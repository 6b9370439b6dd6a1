//! A provider's health settings: whether and how often it is probed, which URL is probed, and its
//! circuit breaker. Validated with the rest of the provider (see `resolve.rs`).

use std::time::Duration;

use moat_policy::breaker::BreakerPolicy;

use moat_upstream::adapter::ProviderAdapter;

use super::file::ProviderSection;
use super::ConfigError;

/// Default time between health checks.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// How one provider's health is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    /// Periodic probes run; otherwise only real requests move the breaker.
    pub check: bool,
    pub interval: Duration,
    /// The full URL probed with `GET`; any 2xx is healthy.
    pub check_url: String,
    pub breaker: BreakerPolicy,
}

/// Resolves the `health_*` and `breaker_*` keys of one provider whose base URL is already valid.
pub(super) fn resolve(
    p: &ProviderSection,
    adapter: &dyn ProviderAdapter,
    url: &moat_upstream::Url,
    loopback: bool,
) -> Result<HealthSettings, ConfigError> {
    let name = &p.name;
    let field = |f: &str| format!("providers.{name}.{f}");
    let path = match &p.health_path {
        Some(path) if path.starts_with('/') && !path.starts_with("//") => path.clone(),
        Some(path) => {
            return Err(ConfigError::Upstream {
                name: name.clone(),
                message: format!("health_path {path:?} must be a path starting with '/', e.g. \"/health\""),
            })
        }
        None => adapter.health_path(url.path()),
    };
    let mut check_url = url.clone();
    // A probe path may carry a query (Azure's `?api-version=`).
    let (path_only, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path.as_str(), None),
    };
    check_url.set_path(path_only);
    check_url.set_query(query);
    let interval = match p.health_check_interval_ms {
        None => DEFAULT_CHECK_INTERVAL,
        Some(0) => {
            return Err(ConfigError::Zero {
                field: field("health_check_interval_ms"),
            })
        }
        Some(ms) => Duration::from_millis(ms),
    };
    let defaults = BreakerPolicy::default();
    let failure_threshold = match p.breaker_failures {
        None => defaults.failure_threshold,
        Some(0) => {
            return Err(ConfigError::Zero {
                field: field("breaker_failures"),
            })
        }
        Some(n) => n,
    };
    let cool_down = match p.breaker_cooldown_ms {
        None => defaults.cool_down,
        Some(0) => {
            return Err(ConfigError::Zero {
                field: field("breaker_cooldown_ms"),
            })
        }
        Some(ms) => Duration::from_millis(ms),
    };
    Ok(HealthSettings {
        check: p.health_check.unwrap_or(p.local || loopback),
        interval,
        check_url: check_url.to_string(),
        breaker: BreakerPolicy {
            failure_threshold,
            cool_down,
        },
    })
}

#[cfg(test)]
mod tests;
