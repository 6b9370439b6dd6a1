//! `[cluster]`: the shared limits store (Valkey or Redis) that lets several nodes enforce one set of
//! budgets and rate limits, and how a node behaves when it cannot reach it (docs/DEPLOY.md).

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// As written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// `redis://HOST:PORT` (Valkey or Redis; plain TCP, see docs/DEPLOY.md). Absent: one node, limits
    /// in memory.
    pub url: Option<String>,
    /// `refuse` (default): metered requests get 503 `limits_unavailable` while the limits store is
    /// unreachable. `local_share`: each node enforces 1/`nodes` of every limit on its own meanwhile.
    pub on_unavailable: Option<String>,
    /// How many nodes share the limits (required for `local_share`).
    pub nodes: Option<u32>,
    /// How long a hold lives unless its node renews it (default 30 000 ms): a node that dies strands
    /// its holds for at most this long.
    pub hold_ttl_ms: Option<u64>,
    /// The most a reservation waits for the limits store (default 250 ms): that request is refused
    /// with 503, and three such in a row count the store unreachable.
    pub timeout_ms: Option<u64>,
    /// This node's name in logs and its audit chain (default: the host name).
    pub node_id: Option<String>,
}

/// What a node does while the shared limits are unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnavailable {
    /// Fail closed: 503 for metered requests.
    Refuse,
    /// Enforce this many nodes' share locally.
    LocalShare { nodes: u32 },
}

/// Validated.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub url: String,
    pub on_unavailable: OnUnavailable,
    pub hold_ttl: Duration,
    pub timeout: Duration,
    pub node_id: String,
}

/// This host's name, for the default node id.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string())
}

impl ClusterSection {
    /// None when no `url` is set (single node). `url` has already had `${VAR}`s expanded.
    pub fn resolve(&self, url: Option<String>) -> Result<Option<ClusterSettings>, ConfigError> {
        let bad = |field: &str, message: String| ConfigError::Parse {
            path: format!("cluster.{field}"),
            message,
        };
        let Some(url) = url else {
            if self.on_unavailable.is_some() || self.nodes.is_some() {
                return Err(bad("url", "the other [cluster] settings need a url".into()));
            }
            return Ok(None);
        };
        if !(url.starts_with("redis://") || url.starts_with("valkey://")) {
            return Err(bad(
                "url",
                "expected redis://HOST:PORT (Valkey or Redis; TLS is not supported yet, see docs/DEPLOY.md)"
                    .into(),
            ));
        }
        let on_unavailable = match self.on_unavailable.as_deref().unwrap_or("refuse") {
            "refuse" => OnUnavailable::Refuse,
            "local_share" => match self.nodes {
                Some(n) if n >= 1 => OnUnavailable::LocalShare { nodes: n },
                _ => {
                    return Err(bad(
                        "nodes",
                        "local_share needs `nodes`, the number of nodes sharing each limit".into(),
                    ))
                }
            },
            other => {
                return Err(bad(
                    "on_unavailable",
                    format!("{other:?}: use \"refuse\" or \"local_share\""),
                ))
            }
        };
        let ms = |v: Option<u64>, default: u64, field: &str| match v.unwrap_or(default) {
            0 => Err(ConfigError::Zero {
                field: format!("cluster.{field}"),
            }),
            v => Ok(Duration::from_millis(v)),
        };
        let node_id = self.node_id.clone().unwrap_or_else(host_name);
        if node_id.is_empty()
            || node_id.len() > 64
            || !node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(bad(
                "node_id",
                format!("{node_id:?}: use 1-64 of a-z A-Z 0-9 - _ ."),
            ));
        }
        Ok(Some(ClusterSettings {
            url: url.replacen("valkey://", "redis://", 1),
            on_unavailable,
            hold_ttl: ms(self.hold_ttl_ms, 30_000, "hold_ttl_ms")?,
            timeout: ms(self.timeout_ms, 250, "timeout_ms")?,
            node_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml: &str) -> ClusterSection {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn no_url_is_a_single_node_and_other_settings_need_one() {
        assert!(section("").resolve(None).unwrap().is_none());
        assert!(section("nodes = 2").resolve(None).is_err());
    }

    #[test]
    fn defaults_fail_closed_and_local_share_needs_the_node_count() {
        let s = section("node_id = \"a\"")
            .resolve(Some("redis://127.0.0.1:6379".into()))
            .unwrap()
            .unwrap();
        assert_eq!(s.on_unavailable, OnUnavailable::Refuse);
        assert_eq!(s.hold_ttl, Duration::from_secs(30));
        assert_eq!(s.timeout, Duration::from_millis(250));
        let url = Some("valkey://v:6379".to_string());
        assert!(section("on_unavailable = \"local_share\"")
            .resolve(url.clone())
            .is_err());
        let s = section("on_unavailable = \"local_share\"\nnodes = 3\nnode_id = \"b\"")
            .resolve(url.clone())
            .unwrap()
            .unwrap();
        assert_eq!(s.on_unavailable, OnUnavailable::LocalShare { nodes: 3 });
        assert_eq!(s.url, "redis://v:6379");
        assert!(section("on_unavailable = \"open\"").resolve(url.clone()).is_err());
        assert!(section("hold_ttl_ms = 0").resolve(url.clone()).is_err());
        assert!(section("node_id = \"a b\"").resolve(url.clone()).is_err());
        assert!(section("").resolve(Some("http://x".into())).is_err());
        assert!(
            toml::from_str::<ClusterSection>("nodez = 2").is_err(),
            "unknown keys are errors"
        );
    }
}
