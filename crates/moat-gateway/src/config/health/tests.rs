#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::config::{Config, ConfigError, HealthSettings};

fn health_of(provider_toml: &str) -> Result<HealthSettings, ConfigError> {
    let text = format!("[[providers]]\nname = \"p\"\n{provider_toml}");
    Ok(Config::from_toml(&text, "t")?.providers.remove(0).health)
}

#[test]
fn loopback_providers_are_checked_by_default_on_their_models_list() {
    let h = health_of("kind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"").unwrap();
    assert!(h.check);
    assert_eq!(h.interval, Duration::from_secs(5));
    assert_eq!(h.check_url, "http://127.0.0.1:8080/v1/models");
    assert_eq!(h.breaker.failure_threshold, 3);
    assert_eq!(h.breaker.cool_down, Duration::from_secs(10));
}

#[test]
fn remote_providers_are_not_probed_unless_asked_or_local() {
    let h = health_of("kind = \"openrouter\"").unwrap();
    assert!(!h.check);
    assert_eq!(h.check_url, "https://openrouter.ai/api/v1/models");
    let h = health_of("kind = \"openrouter\"\nhealth_check = true").unwrap();
    assert!(h.check);
    let h = health_of("kind = \"openai\"\nbase_url = \"https://gpu.lan/v1\"\nlocal = true").unwrap();
    assert!(h.check);
    let h =
        health_of("kind = \"openai\"\nbase_url = \"http://[::1]:8080/v1\"\nhealth_check = false").unwrap();
    assert!(!h.check);
}

#[test]
fn health_path_is_a_path_on_the_providers_host() {
    let h = health_of(
        "kind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nhealth_path = \"/health\"\n\
         health_check_interval_ms = 250\nbreaker_failures = 1\nbreaker_cooldown_ms = 700",
    )
    .unwrap();
    assert_eq!(h.check_url, "http://127.0.0.1:8080/health");
    assert_eq!(h.interval, Duration::from_millis(250));
    assert_eq!(h.breaker.failure_threshold, 1);
    assert_eq!(h.breaker.cool_down, Duration::from_millis(700));
}

#[test]
fn bad_health_settings_are_rejected_with_the_field_named() {
    let base = "kind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\n";
    for (extra, needle) in [
        ("health_path = \"health\"", "health_path"),
        ("health_path = \"//evil.example/x\"", "health_path"),
        (
            "health_check_interval_ms = 0",
            "providers.p.health_check_interval_ms",
        ),
        ("breaker_failures = 0", "providers.p.breaker_failures"),
        ("breaker_cooldown_ms = 0", "providers.p.breaker_cooldown_ms"),
        ("health_interval = 5", "unknown field"),
    ] {
        let err = health_of(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err.contains(needle), "{extra}: {err}");
    }
}

#[test]
fn ollama_and_anthropic_are_probed_on_their_own_cheap_endpoints() {
    let h = health_of("kind = \"ollama\"\nbase_url = \"http://127.0.0.1:11434\"").unwrap();
    assert_eq!(h.check_url, "http://127.0.0.1:11434/api/version");
    let h = health_of("kind = \"anthropic\"\nhealth_check = true").unwrap();
    assert_eq!(h.check_url, "https://api.anthropic.com/v1/models");
}
