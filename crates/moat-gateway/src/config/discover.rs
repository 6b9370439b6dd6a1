//! Zero-config start: with no config file, moatd offers what it can find — OpenRouter when
//! `OPENROUTER_API_KEY` is set, and a llama.cpp server or Ollama when one answers on its usual port.

use std::time::Duration;

use http::HeaderMap;
use moat_upstream::adapter::registry;
use moat_upstream::{Upstream, UpstreamSettings};

use super::file::{FileConfig, ProviderKind, ProviderSection, ServerSection};

/// Where to look. Defaults are the engines' usual ports; the environment may point elsewhere
/// (`MOAT_LLAMACPP_URL`, `MOAT_OLLAMA_URL`), which is also how tests aim discovery at their own servers.
#[derive(Debug, Clone)]
pub struct DiscoveryTargets {
    /// True when `OPENROUTER_API_KEY` is set and non-empty.
    pub openrouter: bool,
    /// llama.cpp server root, e.g. `http://127.0.0.1:8080`.
    pub llamacpp: String,
    /// Ollama root, e.g. `http://127.0.0.1:11434`.
    pub ollama: String,
    /// How long a probe may take; short, since nothing listening answers at once.
    pub probe_timeout: Duration,
}

impl DiscoveryTargets {
    /// Reads the environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        DiscoveryTargets {
            openrouter: var("OPENROUTER_API_KEY").is_some(),
            llamacpp: var("MOAT_LLAMACPP_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            ollama: var("MOAT_OLLAMA_URL").unwrap_or_else(|| "http://127.0.0.1:11434".into()),
            probe_timeout: Duration::from_millis(700),
        }
    }
}

fn local_provider(name: &str, root: &str) -> ProviderSection {
    ProviderSection {
        name: name.to_string(),
        kind: ProviderKind::from(&registry::OPENAI),
        base_url: Some(format!("{}/v1", root.trim_end_matches('/'))),
        api_key: None,
        ca_file: None,
        local: true,
        allow_plaintext: false,
        connect_timeout_ms: None,
        first_byte_timeout_ms: None,
        idle_timeout_ms: None,
        max_retries: None,
        retry_base_ms: None,
        max_retry_after_ms: None,
        max_response_bytes: None,
        prices: Default::default(),
        health_check: None,
        health_check_interval_ms: None,
        health_path: None,
        breaker_failures: None,
        breaker_cooldown_ms: None,
        cache_partition: None,
        cache_prompt: None,
        responses: None,
        rpm: Default::default(),
        tpm: Default::default(),
        context_window: Default::default(),
        api_version: None,
        region: None,
        project: None,
        entra: None,
        service_account_file: None,
        aws_profile: None,
    }
}

/// True when `GET {root}{path}` answers 2xx within the probe time-out.
async fn answers(root: &str, path: &str, timeout: Duration) -> bool {
    let mut settings = UpstreamSettings::new("probe", format!("{}{path}", root.trim_end_matches('/')));
    settings.timeouts.connect = timeout;
    settings.timeouts.first_byte = timeout;
    settings.timeouts.idle = timeout;
    settings.retry.max_retries = 0;
    settings.no_proxy = true;
    let Ok(up) = Upstream::new(settings) else {
        return false;
    };
    up.send("", None, false, &HeaderMap::new()).await.is_ok()
}

/// Builds the config a bare `moatd` runs with, and one line per decision for the start-up log.
pub async fn discover(targets: &DiscoveryTargets) -> (FileConfig, Vec<String>) {
    let mut file = FileConfig {
        server: ServerSection::default(),
        ..FileConfig::default()
    };
    let mut notes = Vec::new();
    if targets.openrouter {
        let mut p = local_provider("openrouter", "");
        p.kind = ProviderKind::from(&registry::OPENROUTER);
        p.base_url = None;
        p.local = false;
        p.api_key = Some("${OPENROUTER_API_KEY}".into());
        file.providers.push(p);
        file.server.default_provider = Some("openrouter".into());
        notes
            .push("provider `openrouter` from OPENROUTER_API_KEY (also takes unprefixed model names)".into());
    } else {
        notes.push("OPENROUTER_API_KEY not set: no cloud provider".into());
    }
    let timeout = targets.probe_timeout;
    let (llama, llama_health, ollama) = tokio::join!(
        answers(&targets.llamacpp, "/v1/models", timeout),
        answers(&targets.llamacpp, "/health", timeout),
        answers(&targets.ollama, "/v1/models", timeout)
    );
    for (found, name, root, health_path) in [
        // llama.cpp's own server has `/health`, which also says whether the model is still loading;
        // servers without it (llama-cpp-python) are checked on their model list.
        (
            llama,
            "llamacpp",
            &targets.llamacpp,
            llama_health.then_some("/health"),
        ),
        (ollama, "ollama", &targets.ollama, None),
    ] {
        if found {
            let mut provider = local_provider(name, root);
            provider.health_path = health_path.map(str::to_string);
            file.providers.push(provider);
            notes.push(format!("provider `{name}` found at {root}"));
        } else {
            notes.push(format!("no {name} server at {root}"));
        }
    }
    (file, notes)
}

#[cfg(test)]
mod tests;
