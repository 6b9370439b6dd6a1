//! `moatd check-config`: a plain-language account of what a validated configuration will do, so an
//! operator can see the effect of a file before running it. Never prints a key.

use std::fmt::Write;
use std::time::Duration;

use super::Config;

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Describes `config` in a few lines per section.
pub fn explain(config: &Config) -> String {
    let mut out = String::new();
    let s = &config.server;
    let scope = if config.listen.ip().is_loopback() {
        "loopback only"
    } else {
        "reachable from the network"
    };
    let transport = match &s.tls {
        Some((cert, _)) => format!("HTTPS with {}", cert.display()),
        None => "plain HTTP".to_string(),
    };
    let _ = writeln!(out, "listen: {} ({scope}, {transport})", config.listen);
    let auth = match s.api_keys.len() {
        0 if config.listen.ip().is_loopback() => {
            "none: any local process may call (add server.api_keys to require a key)".to_string()
        }
        0 => "NONE, and the gateway is open to the network (insecure_open = true)".to_string(),
        1 => "1 static key (server.api_keys)".to_string(),
        n => format!("{n} static keys (server.api_keys)"),
    };
    let _ = writeln!(out, "client auth: {auth}");
    let _ = writeln!(out, "store: {}", moat_store::redacted_url(&config.store.url));
    match &config.cluster {
        None => {
            let _ = writeln!(out, "limits: in memory, this node only (no [cluster])");
        }
        Some(c) => {
            let unavailable = match c.on_unavailable {
                super::OnUnavailable::Refuse => "metered requests get 503 limits_unavailable".to_string(),
                super::OnUnavailable::LocalShare { nodes } => {
                    format!("this node enforces 1/{nodes} of each limit on its own")
                }
            };
            let _ = writeln!(
                out,
                "limits: shared through {} as node {} (holds lapse after {} unrenewed); when it is unreachable, {unavailable}",
                moat_store::redacted_url(&c.url),
                c.node_id,
                secs(c.hold_ttl)
            );
        }
    }
    let _ = writeln!(
        out,
        "limits: max_body_bytes={} max_connections={} header_read_timeout={} body_read_timeout={} models_cache_ttl={}",
        s.max_body_bytes,
        s.max_connections,
        secs(s.header_read_timeout),
        secs(s.body_read_timeout),
        secs(s.models_cache_ttl)
    );
    let _ = writeln!(out, "providers ({}):", config.providers.len());
    for p in &config.providers {
        let u = &p.upstream;
        let transport = if u.base_url.starts_with("https://") {
            match &u.ca_file {
                Some(ca) => format!("TLS verified (system roots + {})", ca.display()),
                None => "TLS verified (system roots)".to_string(),
            }
        } else {
            "plain HTTP".to_string()
        };
        let _ = writeln!(
            out,
            "  {name}: kind={kind} {url} [{transport}] {place} key={key} timeouts(connect={c} first_byte={f} idle={i}) retries={r}",
            name = u.name,
            kind = p.kind.as_str(),
            url = u.base_url,
            place = if p.local { "local" } else { "remote" },
            key = if u.api_key.is_some() { "set" } else { "none" },
            c = secs(u.timeouts.connect),
            f = secs(u.timeouts.first_byte),
            i = secs(u.timeouts.idle),
            r = u.retry.max_retries,
        );
        let _ = writeln!(out, "    models addressed as \"{}/<model>\"", u.name);
        let _ = writeln!(out, "    credential: {}", p.credential);
        let limits = &p.limits;
        if !limits.caps.is_empty() || !limits.context_windows.is_empty() {
            let mut parts: Vec<String> = limits
                .caps
                .iter()
                .map(|(m, c)| {
                    let mut cap = Vec::new();
                    if let Some(r) = c.rpm {
                        cap.push(format!("{r} requests/min"));
                    }
                    if let Some(t) = c.tpm {
                        cap.push(format!("{t} tokens/min"));
                    }
                    let who = if m == "*" {
                        "every other model together".to_owned()
                    } else {
                        format!("`{m}`")
                    };
                    format!("{who} capped at {} (skipped at its cap)", cap.join(" and "))
                })
                .collect();
            parts.extend(limits.context_windows.iter().map(|(m, w)| {
                let who = if m == "*" {
                    "other models".to_owned()
                } else {
                    format!("`{m}`")
                };
                format!("{who} context window {w} tokens")
            }));
            let _ = writeln!(out, "    limits: {}", parts.join("; "));
        }
        let h = &p.health;
        let checks = match h.check {
            true => format!("GET {} every {}", h.check_url, secs(h.interval)),
            false => "off (real requests only)".to_string(),
        };
        let _ = writeln!(
            out,
            "    health checks: {checks}; out of routing after {} failures in a row, for {}",
            h.breaker.failure_threshold,
            secs(h.breaker.cool_down)
        );
        let _ = writeln!(
            out,
            "    cache partition: {}{}",
            match p.cache_partition.field() {
                Some(f) => format!("`{f}` = HMAC(secret, tenant)"),
                None => "none".to_string(),
            },
            match p.cache_prompt {
                Some(v) => format!(", cache_prompt = {v}"),
                None => String::new(),
            }
        );
    }
    let mut aliases: Vec<_> = config.catalog.aliases().collect();
    aliases.sort_by(|a, b| a.0.cmp(b.0));
    if !aliases.is_empty() {
        let _ = writeln!(out, "model aliases:");
        for (alias, route) in aliases {
            let route: Vec<String> = route
                .iter()
                .map(|t| format!("{}/{}", config.catalog.provider_name(t.provider), t.model))
                .collect();
            let policy = config.routes.get(alias).cloned().unwrap_or_default();
            let strategy = policy.strategy;
            let joiner = if strategy == moat_policy::balance::Strategy::Order {
                ", then "
            } else {
                ", "
            };
            let _ = writeln!(out, "  {alias} -> {}", route.join(joiner));
            let weights = if policy.weights.is_empty() {
                String::new()
            } else {
                format!(
                    " (weights {})",
                    policy
                        .weights
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(":")
                )
            };
            let _ = writeln!(
                out,
                "    strategy {}: {}{weights}; the others are fallbacks on provider failures{}",
                strategy.as_str(),
                strategy.explain(),
                if policy.content_policy_fallback {
                    " and content-policy refusals"
                } else {
                    ""
                }
            );
        }
    }
    match config.catalog.default_provider() {
        Some(p) => {
            let _ = writeln!(out, "unprefixed model names go to `{p}` unchanged");
        }
        None => {
            let _ = writeln!(out, "unprefixed model names that are not aliases get 404");
        }
    }
    let rc = &config.response_cache;
    if rc.enabled {
        let models = match rc.models.patterns() {
            [] => "every model".to_string(),
            p => p.join(", "),
        };
        let _ = writeln!(
            out,
            "response cache: on for {models} (non-streamed, per tenant), ttl={} max_bytes={} max_entry_bytes={}",
            secs(rc.ttl),
            rc.max_bytes,
            rc.max_entry_bytes
        );
    } else {
        let _ = writeln!(out, "response cache: off");
    }
    for w in &config.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}
