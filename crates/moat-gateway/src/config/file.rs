//! The configuration file as written by people: every field optional where a default makes sense, and
//! unknown keys rejected so a typo is an error rather than a silently ignored setting.

use std::path::PathBuf;
use std::sync::Arc;

use moat_upstream::adapter::{Kind, ProviderAdapter};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on (default 127.0.0.1:7400).
    pub listen: Option<String>,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub providers: Vec<ProviderSection>,
    #[serde(default)]
    pub models: Vec<ModelSection>,
    #[serde(default)]
    pub store: StoreSection,
    /// Shared limits for several nodes (absent: one node).
    #[serde(default)]
    pub cluster: super::cluster::ClusterSection,
    #[serde(default)]
    pub privacy: PrivacySection,
    #[serde(default)]
    pub audit: AuditSection,
    /// The gateway's own cache of whole answers (off by default).
    #[serde(default)]
    pub response_cache: super::cache::ResponseCacheSection,
    /// Role-bearing admin keys, single sign-on and console sessions.
    #[serde(default)]
    pub admin: super::admin::AdminSection,
    /// Responses API conversation state (kept per tenant, sealed).
    #[serde(default)]
    pub responses: super::responses::ResponsesSection,
}

/// What the privacy scan does with each finding (see docs/PRIVACY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyAction {
    /// Forward as is.
    Allow,
    /// Forward only to `local = true` providers; 403 if none can serve.
    LocalOnly,
    /// Replace with typed placeholders before forwarding; restore them in the answer.
    Redact,
    /// Refuse with 403 `policy_blocked`.
    Block,
}

/// `[privacy]`: the scan of every prompt before it leaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySection {
    /// Action for the built-in secret detectors (API keys, private keys, credentials). Default local_only.
    #[serde(default = "default_secrets_action")]
    pub secrets: PrivacyAction,
    /// Action for every built-in personal-data detector (emails, phones, cards, IBANs, SSNs). Unset,
    /// each has its own default: cards, IBANs and SSNs `redact`, emails and phones `allow`.
    #[serde(default)]
    pub personal: Option<PrivacyAction>,
    /// Per-detector overrides by detector id, e.g. `{ email = "redact", jwt = "block" }`.
    #[serde(default)]
    pub detectors: std::collections::BTreeMap<String, PrivacyAction>,
    /// Custom rules: a regex or a list of terms, each with its action.
    #[serde(default)]
    pub rules: Vec<PrivacyRuleSection>,
    /// OpenRouter's `provider.data_collection` added to requests for `kind = "openrouter"` providers
    /// unless the request sets it: "deny" (default) or "allow".
    #[serde(default = "default_data_collection")]
    pub data_collection: String,
    /// Also require OpenRouter's zero-data-retention endpoints (`provider.zdr = true`).
    #[serde(default)]
    pub zdr: bool,
}

fn default_secrets_action() -> PrivacyAction {
    PrivacyAction::LocalOnly
}
fn default_data_collection() -> String {
    "deny".to_string()
}

impl Default for PrivacySection {
    fn default() -> Self {
        PrivacySection {
            secrets: default_secrets_action(),
            personal: None,
            detectors: Default::default(),
            rules: Vec::new(),
            data_collection: default_data_collection(),
            zdr: false,
        }
    }
}

/// `[[privacy.rules]]`: a custom detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRuleSection {
    /// Names the rule in errors, logs and audit records (the matched text never appears).
    pub id: String,
    /// A regular expression (Rust `regex` syntax).
    pub regex: Option<String>,
    /// Literal terms, matched case-insensitively as whole words.
    #[serde(default)]
    pub terms: Vec<String>,
    pub action: PrivacyAction,
}

/// `[audit]`: the tamper-evident log of requests and admin actions (see docs/AUDIT.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `sqlite:///path/audit.db` (default: `audit.db` in the data directory).
    pub url: Option<String>,
    /// Also record prompt and answer bodies (after redaction). Default false.
    #[serde(default)]
    pub bodies: bool,
    /// Sign a checkpoint every this many records (default 1000)...
    pub checkpoint_every: Option<u64>,
    /// ...or every this many seconds, whichever comes first (default 60).
    pub checkpoint_secs: Option<u64>,
    /// Prune records older than this many days, after a checkpoint covers them (default: keep all).
    pub retention_days: Option<u64>,
    /// The Ed25519 signing key file (default: `audit_signing_key` in the data directory; made on first start).
    pub key_file: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            enabled: true,
            url: None,
            bodies: false,
            checkpoint_every: None,
            checkpoint_secs: None,
            retention_days: None,
            key_file: None,
        }
    }
}

/// `[store]`: where keys, teams and usage live.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite:///path/moatd.db` (default: `moatd.db` in the data directory, `$XDG_DATA_HOME/moat`),
    /// or `postgres://USER@HOST:PORT/DB` for several nodes.
    pub url: Option<String>,
    /// The server secret file (default: `secret` in the data directory). `MOAT_SECRET` overrides it.
    pub secret_file: Option<PathBuf>,
    /// PostgreSQL only: where usage rows wait while the database is unreachable (default:
    /// `usage-spool.jsonl` in the data directory).
    pub spool_file: Option<PathBuf>,
    /// PostgreSQL only: the most rows the spool holds (default 200 000); beyond, rows are dropped
    /// and counted.
    pub spool_max_rows: Option<u64>,
}

impl FileConfig {
    /// Parses TOML text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &str) -> Result<FileConfig, super::ConfigError> {
        toml::from_str(text).map_err(|e| super::ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a file (validation is [`super::Config::resolve`]).
    pub fn load(path: &std::path::Path) -> Result<FileConfig, super::ConfigError> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| super::ConfigError::Read {
            path: label.clone(),
            source,
        })?;
        FileConfig::from_toml(&text, &label)
    }
}

/// `[server]`: who may call moatd, and the limits that protect it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Static bearer keys clients must present. `${VAR}` is expanded.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Keys for the admin API (`/admin/...`): managing virtual keys, teams and usage. `${VAR}` is expanded.
    #[serde(default)]
    pub admin_keys: Vec<String>,
    /// Output tokens reserved for a request that sets no `max_tokens` and whose model's cap is unknown.
    pub default_max_output_tokens: Option<u64>,
    /// Largest request body accepted (default 8 MiB); larger gets 413.
    pub max_body_bytes: Option<usize>,
    /// Allow listening beyond loopback with no client key. Warned about at every start.
    #[serde(default)]
    pub insecure_open: bool,
    /// Serve HTTPS with this certificate chain (PEM) and `tls_key_file`. Required beyond loopback
    /// unless `plaintext = true`.
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) for `tls_cert_file`; keep it mode 0600.
    pub tls_key_file: Option<PathBuf>,
    /// Allow plain HTTP beyond loopback (e.g. behind a proxy that terminates TLS). Warned at start.
    #[serde(default)]
    pub plaintext: bool,
    /// Provider that takes model names with no known provider prefix, unchanged.
    pub default_provider: Option<String>,
    /// Most client connections open at once (default 4096); more wait in the kernel's backlog.
    pub max_connections: Option<usize>,
    /// Time a client has from connecting (TLS handshake included) to complete request headers, and
    /// between requests on a connection with none in flight (default 10 s). Past it the connection is
    /// closed.
    pub header_read_timeout_ms: Option<u64>,
    /// Time a client may leave a response unread (a full socket buffer, a closed HTTP/2 window) before
    /// its connection is closed, which cancels the provider request and releases its budget hold
    /// (default 30 s).
    pub write_timeout_ms: Option<u64>,
    /// Largest single SSE event (or Ollama NDJSON line) relayed from a provider, and the bound on what
    /// every stream translator holds (default 1 MiB). A stream that exceeds it ends with an error event.
    pub max_event_bytes: Option<usize>,
    /// Time a client has to send its whole request body (default 30 s).
    pub body_read_timeout_ms: Option<u64>,
    /// How long the merged `/v1/models` list is reused (default 60 s).
    pub models_cache_ttl_ms: Option<u64>,
    /// Browser origins allowed to call the API (CORS), e.g. `["https://app.example.com"]`; `"*"`
    /// allows any. Empty (the default) answers no preflight, so browsers refuse cross-origin calls.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// Which wire family a provider speaks: one of the kinds registered in
/// `moat_upstream::adapter::registry` (`openai`: any OpenAI-compatible server; `openrouter`;
/// `anthropic`: the Messages API, translated; `ollama`: Ollama's native API, translated). What each
/// kind does differently lives in its adapter, never here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderKind(&'static Kind);

impl ProviderKind {
    /// The registered kind called `name`.
    pub fn named(name: &str) -> Option<ProviderKind> {
        moat_upstream::adapter::kind(name).map(ProviderKind)
    }

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    /// A new adapter for one provider of this kind.
    pub fn adapter(self) -> Arc<dyn ProviderAdapter> {
        self.0.adapter()
    }

    /// The registered kind.
    pub fn kind(self) -> &'static Kind {
        self.0
    }
}

impl From<&'static Kind> for ProviderKind {
    fn from(kind: &'static Kind) -> ProviderKind {
        ProviderKind(kind)
    }
}

impl<'de> Deserialize<'de> for ProviderKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ProviderKind::named(&name).ok_or_else(|| {
            let known: Vec<String> = moat_upstream::adapter::kinds()
                .map(|k| format!("`{}`", k.name()))
                .collect();
            serde::de::Error::custom(format!(
                "unknown provider kind `{name}`, expected one of {}",
                known.join(", ")
            ))
        })
    }
}

/// `[[providers]]`: one upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Models are addressed as `NAME/MODEL`. Lowercase letters, digits, `-` and `_`.
    pub name: String,
    pub kind: ProviderKind,
    /// API base, e.g. `http://127.0.0.1:8080/v1`. `${VAR}` is expanded.
    pub base_url: Option<String>,
    /// Provider credential. `${VAR}` is expanded.
    pub api_key: Option<String>,
    /// Extra trust anchors (PEM) for this provider.
    pub ca_file: Option<PathBuf>,
    /// Runs on our own hardware (privacy routing relies on this). Default false.
    #[serde(default)]
    pub local: bool,
    /// Permit `http://` to a non-loopback host. Default false.
    #[serde(default)]
    pub allow_plaintext: bool,
    pub connect_timeout_ms: Option<u64>,
    pub first_byte_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    /// Extra attempts on retryable failures before moving to the next fallback (default 2).
    pub max_retries: Option<u32>,
    /// First back-off step in ms (default 200), doubling per retry.
    pub retry_base_ms: Option<u64>,
    /// Longest `Retry-After` honoured before skipping to the next fallback (default 10 000 ms).
    pub max_retry_after_ms: Option<u64>,
    /// Largest non-streamed response accepted (default 64 MiB).
    pub max_response_bytes: Option<usize>,
    /// Prices in USD per million tokens, `[input, output]`, by model name as this provider knows it;
    /// `"*"` covers the rest. Used for budgets when the provider's `/models` gives no pricing.
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, [f64; 2]>,
    /// Probe the provider every `health_check_interval_ms` and keep it out of routing while the probe
    /// fails. Default: true for local providers and loopback URLs, false for remote ones (their
    /// health then comes from real requests only, so an idle moatd sends nothing to a cloud API).
    pub health_check: Option<bool>,
    /// Time between health checks (default 5000 ms).
    pub health_check_interval_ms: Option<u64>,
    /// Path probed with `GET` on the provider's host, e.g. `/health` (default: base_url's path plus
    /// `/models`, e.g. `/v1/models`). Any 2xx answer is healthy.
    pub health_path: Option<String>,
    /// Provider failures in a row (after retries) that take it out of routing (default 3).
    pub breaker_failures: Option<u32>,
    /// How long a failing provider stays out of routing before one request probes it (default 10 000 ms).
    pub breaker_cooldown_ms: Option<u64>,
    /// The request member that carries each tenant's prompt-cache partition: `cache_salt`,
    /// `prompt_cache_key`, `user` or `none` (default: `user` for OpenRouter, `prompt_cache_key` for
    /// api.openai.com, `none` for Anthropic and Ollama, else `cache_salt`). See docs/SECURITY.md.
    pub cache_partition: Option<String>,
    /// llama.cpp: send `cache_prompt` with this value; `false` stops a server shared by several tenants
    /// from reusing one tenant's cached prompt for another. Default: not sent.
    pub cache_prompt: Option<bool>,
    /// `/v1/responses` for this provider: `"bridge"` (default: moatd translates to chat completions)
    /// or `"native"` (the provider has the Responses API; requests are relayed to its `/responses`).
    pub responses: Option<String>,
    /// Requests per minute each model may be sent (`"*"` counts every other model together); a
    /// target at its cap is skipped. See docs/PROVIDERS.md (routing).
    #[serde(default)]
    pub rpm: std::collections::BTreeMap<String, u32>,
    /// Tokens per minute each model may be sent, as `rpm`.
    #[serde(default)]
    pub tpm: std::collections::BTreeMap<String, u64>,
    /// Context windows in tokens by model (`"*"` for the rest): a context-window refusal falls back
    /// to targets with a larger one.
    #[serde(default)]
    pub context_window: std::collections::BTreeMap<String, u64>,
    /// Azure: the `api-version` query parameter (default `2024-10-21`).
    pub api_version: Option<String>,
    /// Bedrock: the AWS region; Gemini on Vertex AI: the location.
    pub region: Option<String>,
    /// Gemini: the Google Cloud project, which selects Vertex AI.
    pub project: Option<String>,
    /// Azure: Entra ID client credentials instead of `api_key`.
    pub entra: Option<EntraSection>,
    /// Gemini/Vertex: a service-account key file instead of `api_key`.
    pub service_account_file: Option<PathBuf>,
    /// Bedrock: read keys from this AWS profile (skips the environment).
    pub aws_profile: Option<String>,
}

/// `entra = { … }` on an Azure provider: an Entra ID application's client credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraSection {
    pub tenant_id: String,
    pub client_id: String,
    /// `${VAR}` is expanded.
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// A federated identity token (workload identity), re-read at every token fetch.
    pub federated_token_file: Option<PathBuf>,
    /// The Entra authority (default `https://login.microsoftonline.com`).
    pub authority: Option<String>,
}

/// `[[models]]`: an alias and its ordered route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub name: String,
    /// `PROVIDER/MODEL` entries.
    pub route: Vec<String>,
    /// How the first target is chosen: `order` (default), `weighted`, `least_busy`, `latency`, `cost`.
    pub strategy: Option<String>,
    /// `weighted`: one non-negative weight per route entry.
    pub weights: Option<Vec<u32>>,
    /// Fall back to the next target when a provider's content policy refuses the prompt (default
    /// false: a refusal is the answer).
    #[serde(default)]
    pub content_policy_fallback: bool,
}
