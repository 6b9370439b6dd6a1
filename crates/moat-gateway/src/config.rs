//! moatd's configuration: the TOML file's shape ([`FileConfig`]), and its one validation step into the
//! resolved [`Config`] the server runs on. Layering: built-in defaults, then the file, then `${VAR}`
//! references expanded from the environment (so secrets need not sit in the file), then command-line
//! overrides applied by the binary.

mod admin;
mod cache;
mod cloud;
mod cluster;
mod discover;
mod explain;
mod file;
mod health;
mod resolve;
mod responses;
mod routing;

pub use admin::{AdminKeySection, AdminSection, AdminSettings, RoleKey, SsoSection, SsoSettings};
pub use cache::{ResponseCacheSection, ResponseCacheSettings};
pub use cluster::{host_name, ClusterSection, ClusterSettings, OnUnavailable};
pub use discover::{discover, DiscoveryTargets};
pub use explain::explain;
pub use file::{
    AuditSection, FileConfig, ModelSection, PrivacyAction, PrivacyRuleSection, PrivacySection, ProviderKind,
    ProviderSection, ServerSection, StoreSection,
};
pub use health::{HealthSettings, DEFAULT_CHECK_INTERVAL};
pub use resolve::{Config, ConfigError, ProviderConfig, ServerSettings, StoreSettings};
pub use responses::{ResponsesSection, ResponsesSettings};
pub use routing::{RoutePolicy, TargetLimits};

/// Where moatd listens when nothing says otherwise: loopback, so a fresh start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7400";

/// The data directory: `$XDG_DATA_HOME/moat`, else `~/.local/share/moat`, else `./.moat`.
pub fn data_dir() -> std::path::PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    if let Some(d) = var("XDG_DATA_HOME") {
        return d.join("moat");
    }
    if let Some(h) = var("HOME") {
        return h.join(".local/share/moat");
    }
    std::path::PathBuf::from(".moat")
}
