//! `moat doctor`: everything between this terminal and a spent budget, checked and explained — the
//! endpoint, proxy settings, trust anchors, the TLS handshake and certificate chain, where the key
//! comes from (and that file's permissions), and the key's spend limit from `GET /key` with a loud
//! warning when a leaked key could spend without bound.

use serde::Deserialize;

use crate::cli::{Common, DoctorArgs};
use crate::config::{ConfigFile, Endpoint};
use crate::keys::{self, KeySource};
use crate::net::{proxy, Client, Trust};
use crate::paths::Env;
use crate::stats::format_cost;
use crate::{tlsinfo, Error};

const LIMIT_HELP: &str = "set one at https://openrouter.ai/settings/keys (or ask your moatd admin)";

/// OpenRouter's `GET /api/v1/key` answer: `{"data": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KeyInfo {
    #[serde(default)]
    pub label: Option<String>,
    /// Credit limit in USD; `null` means unlimited.
    #[serde(default)]
    pub limit: Option<f64>,
    /// `daily`, `weekly`, `monthly`, or `null` for a limit that never resets.
    #[serde(default)]
    pub limit_reset: Option<String>,
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    #[serde(default)]
    pub usage: Option<f64>,
    #[serde(default)]
    pub usage_daily: Option<f64>,
    #[serde(default)]
    pub is_free_tier: Option<bool>,
}

#[derive(Deserialize)]
struct Envelope {
    data: KeyInfo,
}

/// Reads a key report body.
pub fn parse_key_info(body: &[u8]) -> Result<KeyInfo, Error> {
    serde_json::from_slice::<Envelope>(body)
        .map(|e| e.data)
        .map_err(|e| Error::Network(format!("the key report is not in OpenRouter's shape: {e}")))
}

/// The limit and usage as one line.
pub fn describe_key(info: &KeyInfo) -> String {
    let limit = match (info.limit, info.limit_reset.as_deref()) {
        (None, _) => "no spend limit".to_owned(),
        (Some(l), Some(reset)) => format!(
            "limit {} per {}",
            format_cost(l),
            reset.trim_end_matches("ly").replace("dai", "day")
        ),
        (Some(l), None) => format!("limit {} (never resets)", format_cost(l)),
    };
    let mut parts = vec![limit];
    if let Some(left) = info.limit_remaining {
        parts.push(format!("{} left", format_cost(left)));
    }
    if let Some(used) = info.usage {
        parts.push(format!("used {} so far", format_cost(used)));
    }
    if let Some(today) = info.usage_daily {
        parts.push(format!("{} today", format_cost(today)));
    }
    parts.join(", ")
}

/// The warnings a key report deserves: no limit at all, or a limit that is not reset daily.
pub fn limit_warnings(info: &KeyInfo) -> Vec<String> {
    match (info.limit, info.limit_reset.as_deref()) {
        (None, _) => vec![format!(
            "WARNING: this key has NO SPEND LIMIT. Anyone who obtains it can spend your entire balance; \
             give it a limit with a daily reset: {LIMIT_HELP}"
        )],
        (Some(_), None) => vec![format!(
            "WARNING: this key's limit never resets, so a leak spends all of it at once; \
             prefer a daily reset: {LIMIT_HELP}"
        )],
        (Some(_), Some("daily")) => Vec::new(),
        (Some(_), Some(other)) => vec![format!(
            "WARNING: this key's limit resets {other}, not daily: a leak can spend a whole {} of budget; \
             {LIMIT_HELP}",
            other.trim_end_matches("ly")
        )],
    }
}

pub fn run(env: &Env, common: &Common, _args: &DoctorArgs) -> Result<(), Error> {
    let mut problems = 0usize;
    let config_path = env.config_file()?;
    let config = ConfigFile::load(env)?;
    let (profile_name, profile) = config.select(common.profile.as_deref())?;
    let endpoint = Endpoint::resolve(&profile, common)?;
    let exists = if config_path.exists() {
        ""
    } else {
        " (not present; defaults)"
    };
    line("endpoint", &endpoint.base_url);
    line(
        "profile",
        &format!("{profile_name} from {}{exists}", config_path.display()),
    );

    let chosen = proxy::choose(env, endpoint.https, &endpoint.host);
    let settings = proxy::describe(env);
    let proxy_line = match (&chosen, settings.is_empty()) {
        (Some(p), _) => format!(
            "{} (from {}) for this endpoint",
            proxy::hide_credentials(&p.url),
            p.var
        ),
        (None, true) => "none set".to_owned(),
        (None, false) => "not used for this endpoint".to_owned(),
    };
    line("proxy", &proxy_line);
    for s in settings {
        line("", &s);
    }

    if endpoint.https {
        problems += check_tls(env, &endpoint, chosen.is_some());
    } else {
        line(
            "tls",
            "none: plain http (only allowed to loopback, or with allow_plaintext)",
        );
    }

    let key = match keys::find(env, &profile_name, &profile) {
        Ok((key, source)) => {
            line("key", &key_line(&source));
            key
        }
        Err(e) => {
            line("key", &format!("PROBLEM: {e}"));
            problems += 1;
            None
        }
    };
    if !keys::keyring_enabled(env) {
        line("", "OS keyring disabled by MOAT_KEYRING");
    }

    let client = Client::new(env, endpoint, key.clone())?;
    match client.get("/key") {
        Ok(body) => match parse_key_info(&body) {
            Ok(info) => {
                line("limit", &describe_key(&info));
                for warning in limit_warnings(&info) {
                    println!("{warning}");
                }
            }
            Err(e) => line("limit", &format!("unknown: {e}")),
        },
        Err(Error::Api { message, .. }) if key.is_none() => {
            line("limit", &format!("unknown without a key ({message})"));
        }
        Err(Error::Api { message, .. }) if message.starts_with("HTTP 404") => {
            line(
                "limit",
                "unknown: this endpoint does not report key limits (GET /key is 404)",
            );
        }
        Err(e) => {
            line("limit", &format!("PROBLEM: {e}"));
            problems += 1;
        }
    }
    match problems {
        0 => Ok(()),
        n => Err(Error::Network(format!("doctor found {n} problem(s); see above"))),
    }
}

fn check_tls(env: &Env, endpoint: &Endpoint, proxied: bool) -> usize {
    let trust = match Trust::load(&endpoint.cacert) {
        Ok(trust) => trust,
        Err(e) => {
            line("trust", &format!("PROBLEM: {e}"));
            return 1;
        }
    };
    let system = match (
        env.get("SSL_CERT_FILE"),
        env.get("SSL_CERT_DIR"),
        trust.webpki_fallback,
    ) {
        (_, _, true) => "no system roots found; using Mozilla's roots (compiled in)".to_owned(),
        (Some(f), _, _) => format!("{} roots from SSL_CERT_FILE={f}", trust.system_count()),
        (None, Some(d), _) => format!("{} roots from SSL_CERT_DIR={d}", trust.system_count()),
        (None, None, _) => format!("{} system roots", trust.system_count()),
    };
    let extra = match trust.extra_count() {
        0 => String::new(),
        n => format!(
            " + {n} from {}",
            trust
                .extra_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    line("trust", &format!("{system}{extra}; verification is always on"));
    for w in &trust.warnings {
        line("", &format!("note: {w}"));
    }
    if proxied {
        line(
            "tls",
            "not probed directly: requests go through the proxy (the key check below still verifies)",
        );
        return 0;
    }
    match tlsinfo::probe(&endpoint.host, endpoint.port, trust.root_store()) {
        Ok(report) => {
            let alpn = report.alpn.as_deref().unwrap_or("none");
            line(
                "tls",
                &format!("{}, {}, ALPN {alpn}", report.version, report.cipher),
            );
            for (i, cert) in report.chain.iter().enumerate() {
                let expired = if cert.expired { " EXPIRED" } else { "" };
                line(
                    if i == 0 { "chain" } else { "" },
                    &format!("{i}: {}", cert.subject),
                );
                line(
                    "",
                    &format!(
                        "   issued by {}, valid until {}{expired}",
                        cert.issuer, cert.not_after
                    ),
                );
            }
            match report.verified {
                Ok(()) => {
                    line("", "certificate verified");
                    0
                }
                Err(reason) => {
                    line("", &format!("PROBLEM: {reason}"));
                    1
                }
            }
        }
        Err(e) => {
            line("tls", &format!("PROBLEM: {e}"));
            1
        }
    }
}

fn key_line(source: &KeySource) -> String {
    match source {
        KeySource::File(path) => {
            #[cfg(unix)]
            let mode = {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(path)
                    .map(|m| format!(" (mode {:04o})", m.permissions().mode() & 0o7777))
                    .unwrap_or_default()
            };
            #[cfg(not(unix))]
            let mode = String::new();
            format!("from {source}{mode}")
        }
        KeySource::Nowhere => {
            "none found (MOAT_API_KEY, OPENROUTER_API_KEY, key_env, key_command, `moat login`)".into()
        }
        other => format!("from {other}"),
    }
}

fn line(label: &str, text: &str) {
    println!("{label:<9} {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_by_limit_kind() {
        let none = parse_key_info(br#"{"data":{"label":"x","limit":null,"usage":1.5}}"#).unwrap();
        assert!(limit_warnings(&none)[0].contains("NO SPEND LIMIT"));
        assert_eq!(describe_key(&none), "no spend limit, used $1.5000 so far");
        let daily = KeyInfo {
            limit: Some(5.0),
            limit_reset: Some("daily".into()),
            limit_remaining: Some(4.0),
            usage_daily: Some(1.0),
            ..KeyInfo::default()
        };
        assert!(limit_warnings(&daily).is_empty());
        assert_eq!(
            describe_key(&daily),
            "limit $5.0000 per day, $4.0000 left, $1.0000 today"
        );
        let never = KeyInfo {
            limit: Some(5.0),
            ..KeyInfo::default()
        };
        assert!(limit_warnings(&never)[0].contains("never resets"));
        let monthly = KeyInfo {
            limit: Some(5.0),
            limit_reset: Some("monthly".into()),
            ..KeyInfo::default()
        };
        assert!(limit_warnings(&monthly)[0].contains("whole month"));
        assert!(describe_key(&monthly).contains("per month"));
        assert!(parse_key_info(b"[]").is_err());
    }
}
