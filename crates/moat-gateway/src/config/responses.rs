//! `[responses]`: how long moatd keeps Responses API turns (for `previous_response_id` and retrieval)
//! and how large one conversation may grow. See docs/PROVIDERS.md for what is kept and where.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsesSection {
    /// How long a stored turn can be continued or retrieved, in seconds (default 2 592 000 = 30 days,
    /// OpenAI's own retention). Sealed turns older than this are neither served nor kept.
    pub ttl_secs: Option<u64>,
    /// Largest conversation (replayed input plus output, as stored) a turn may continue, in bytes
    /// (default 8 MiB, and never more than `server.max_body_bytes`: the replayed conversation is part
    /// of the request); a longer one is refused with 400 rather than replayed.
    pub max_conversation_bytes: Option<usize>,
}

/// The validated settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsesSettings {
    pub ttl: Duration,
    pub max_conversation_bytes: usize,
}

impl Default for ResponsesSettings {
    fn default() -> Self {
        ResponsesSettings {
            ttl: Duration::from_secs(30 * 24 * 3600),
            max_conversation_bytes: 8 * 1024 * 1024,
        }
    }
}

impl ResponsesSection {
    /// Checks the section: zero is an error for both limits.
    pub fn resolve(&self) -> Result<ResponsesSettings, ConfigError> {
        let defaults = ResponsesSettings::default();
        let zero = |field: &str| ConfigError::Zero {
            field: format!("responses.{field}"),
        };
        if self.ttl_secs == Some(0) {
            return Err(zero("ttl_secs"));
        }
        if self.max_conversation_bytes == Some(0) {
            return Err(zero("max_conversation_bytes"));
        }
        Ok(ResponsesSettings {
            ttl: self.ttl_secs.map_or(defaults.ttl, Duration::from_secs),
            max_conversation_bytes: self
                .max_conversation_bytes
                .unwrap_or(defaults.max_conversation_bytes),
        })
    }
}
