//! The one place provider kinds are registered: the config's `kind` string to its adapter.

use std::fmt;
use std::sync::Arc;

use super::{anthropic, ollama, openai, ProviderAdapter};

/// A registered kind: its name in the config file and how its adapter is made.
pub struct Kind {
    name: &'static str,
    build: fn() -> Arc<dyn ProviderAdapter>,
}

impl Kind {
    /// The `kind` string in the config file.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A new adapter for one provider of this kind.
    pub fn adapter(&self) -> Arc<dyn ProviderAdapter> {
        (self.build)()
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
    build: || Arc::new(openai::OpenAi),
};

/// `kind = "openrouter"`.
pub static OPENROUTER: Kind = Kind {
    name: "openrouter",
    build: || Arc::new(openai::OpenRouter),
};

/// `kind = "anthropic"`: the Messages API.
pub static ANTHROPIC: Kind = Kind {
    name: "anthropic",
    build: || Arc::new(anthropic::Anthropic),
};

/// `kind = "ollama"`: Ollama's native API.
pub static OLLAMA: Kind = Kind {
    name: "ollama",
    build: || Arc::new(ollama::Ollama),
};

/// Every kind moatd speaks. A new provider adds its line here (and its entry in the conformance
/// suite, `crates/moat-gateway/tests/conformance.rs`).
static KINDS: [&Kind; 4] = [&OPENAI, &OPENROUTER, &ANTHROPIC, &OLLAMA];

/// The kind named `name`, if moatd has it.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.name == name)
}

/// Every registered kind, in registration order.
pub fn kinds() -> impl Iterator<Item = &'static Kind> {
    KINDS.iter().copied()
}
