//! The one place provider kinds are registered: the config's `kind` string to its adapter.

use std::fmt;
use std::sync::Arc;

use super::{anthropic, azure, bedrock, gemini, ollama, openai, AdapterOptions, ProviderAdapter};

/// A registered kind: its name in the config file, the per-provider options it takes, and how its
/// adapter is made.
pub struct Kind {
    name: &'static str,
    /// The [`AdapterOptions`] (by config name) this kind uses; others are configuration errors.
    accepts: &'static [&'static str],
    build: fn(&AdapterOptions) -> Arc<dyn ProviderAdapter>,
}

impl Kind {
    /// The `kind` string in the config file.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A new adapter for one provider of this kind, with no options.
    pub fn adapter(&self) -> Arc<dyn ProviderAdapter> {
        (self.build)(&AdapterOptions::default())
    }

    /// A new adapter for one provider of this kind with its options; an option the kind does not
    /// use is an error naming it.
    pub fn adapter_with(&self, options: &AdapterOptions) -> Result<Arc<dyn ProviderAdapter>, String> {
        if let Some(unused) = options.set().into_iter().find(|o| !self.accepts.contains(o)) {
            return Err(format!("`{unused}` does not apply to kind = \"{}\"", self.name));
        }
        Ok((self.build)(options))
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Kind) -> bool {
        self.name == other.name
    }
}

impl Eq for Kind {}

/// `kind = "openai"`: any OpenAI-compatible server.
pub static OPENAI: Kind = Kind {
    name: "openai",
    accepts: &[],
    build: |_| Arc::new(openai::OpenAi),
};

/// `kind = "openrouter"`.
pub static OPENROUTER: Kind = Kind {
    name: "openrouter",
    accepts: &[],
    build: |_| Arc::new(openai::OpenRouter),
};

/// `kind = "anthropic"`: the Messages API.
pub static ANTHROPIC: Kind = Kind {
    name: "anthropic",
    accepts: &[],
    build: |_| Arc::new(anthropic::Anthropic),
};

/// `kind = "ollama"`: Ollama's native API.
pub static OLLAMA: Kind = Kind {
    name: "ollama",
    accepts: &[],
    build: |_| Arc::new(ollama::Ollama),
};

/// `kind = "azure"`: Azure OpenAI deployments.
pub static AZURE: Kind = Kind {
    name: "azure",
    accepts: &["api_version", "entra"],
    build: |o| Arc::new(azure::Azure::new(o)),
};

/// `kind = "bedrock"`: AWS Bedrock Runtime's Converse API.
pub static BEDROCK: Kind = Kind {
    name: "bedrock",
    accepts: &["region", "aws_profile"],
    build: |o| Arc::new(bedrock::Bedrock::new(o)),
};

/// `kind = "gemini"`: Google's Gemini API, or Gemini on Vertex AI.
pub static GEMINI: Kind = Kind {
    name: "gemini",
    accepts: &["region", "project", "service_account_file"],
    build: |o| Arc::new(gemini::Gemini::new(o)),
};

/// Every kind moatd speaks. A new provider adds its line here (and its entry in the conformance
/// suite, `crates/moat-gateway/tests/conformance.rs`).
static KINDS: [&Kind; 7] = [
    &OPENAI,
    &OPENROUTER,
    &ANTHROPIC,
    &OLLAMA,
    &AZURE,
    &BEDROCK,
    &GEMINI,
];

/// The kind named `name`, if moatd has it.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.name == name)
}

/// Every registered kind, in registration order.
pub fn kinds() -> impl Iterator<Item = &'static Kind> {
    KINDS.iter().copied()
}
