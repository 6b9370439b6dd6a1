//! Cache-partition decisions: which request field carries a tenant's provider-side cache partition,
//! the default per provider, and which client-sent partition values are acceptable.
//!
//! Providers cache prompt prefixes; a cache shared by everyone behind one gateway credential lets one
//! tenant time another's prompts (Gu et al., ICML 2025). moatd therefore puts a per-tenant value in
//! whichever field the provider partitions (or at least routes) its cache by. The value itself is a
//! keyed hash computed by the gateway (it holds the secret); this module only decides *where* it goes
//! and whether a client's own value may be namespaced into it.

use std::fmt;
use std::str::FromStr;

/// The request field a provider's prompt cache is partitioned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CachePartition {
    /// vLLM / SGLang: `cache_salt` is mixed into the prefix-cache block hashes, a real namespace.
    CacheSalt,
    /// OpenAI: `prompt_cache_key` steers which cache a request lands on (a routing hint, not a
    /// namespace).
    PromptCacheKey,
    /// OpenRouter: `user` makes routing sticky per end user (and identifies abuse), not a namespace.
    User,
    /// No field is set: the provider offers no control, or it rejects unknown fields.
    None,
}

/// Every field a partition can live in, in a fixed order.
pub const PARTITION_FIELDS: [CachePartition; 3] = [
    CachePartition::CacheSalt,
    CachePartition::PromptCacheKey,
    CachePartition::User,
];

/// Longest client-sent partition value accepted (OpenAI documents no limit below this for `user`).
pub const MAX_CLIENT_VALUE_BYTES: usize = 256;

impl CachePartition {
    /// The JSON member the value goes in; `None` for [`CachePartition::None`].
    pub fn field(self) -> Option<&'static str> {
        match self {
            CachePartition::CacheSalt => Some("cache_salt"),
            CachePartition::PromptCacheKey => Some("prompt_cache_key"),
            CachePartition::User => Some("user"),
            CachePartition::None => None,
        }
    }

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        self.field().unwrap_or("none")
    }

    /// The default for a provider: OpenRouter partitions by `user`; OpenAI's own API by
    /// `prompt_cache_key`; every other OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama…) gets
    /// `cache_salt`, which vLLM and SGLang honour and the others ignore as an unknown field.
    pub fn default_for(openrouter: bool, host: &str) -> CachePartition {
        if openrouter {
            CachePartition::User
        } else if host.eq_ignore_ascii_case("api.openai.com") {
            CachePartition::PromptCacheKey
        } else {
            CachePartition::CacheSalt
        }
    }
}

impl fmt::Display for CachePartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `cache_partition` value that is not one of the four names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache_partition {0:?}: use \"cache_salt\", \"prompt_cache_key\", \"user\" or \"none\"")]
pub struct BadPartition(pub String);

impl FromStr for CachePartition {
    type Err = BadPartition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cache_salt" => Ok(CachePartition::CacheSalt),
            "prompt_cache_key" => Ok(CachePartition::PromptCacheKey),
            "user" => Ok(CachePartition::User),
            "none" => Ok(CachePartition::None),
            other => Err(BadPartition(other.to_string())),
        }
    }
}

/// Why a client-sent partition value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientValueError {
    #[error("`{field}` must not be empty")]
    Empty { field: &'static str },
    #[error("`{field}` is longer than {MAX_CLIENT_VALUE_BYTES} bytes")]
    TooLong { field: &'static str },
    #[error("`{field}` may contain only printable ASCII characters")]
    Charset { field: &'static str },
}

/// Checks a client's own partition value before it is namespaced under its tenant: non-empty, at
/// most [`MAX_CLIENT_VALUE_BYTES`], printable ASCII (letters, digits, punctuation, space). The
/// value never reaches the provider as sent, but bounding it keeps the hashing input and the audit
/// record sane.
pub fn validate_client_value(field: &'static str, value: &str) -> Result<(), ClientValueError> {
    if value.is_empty() {
        return Err(ClientValueError::Empty { field });
    }
    if value.len() > MAX_CLIENT_VALUE_BYTES {
        return Err(ClientValueError::TooLong { field });
    }
    if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(ClientValueError::Charset { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for p in PARTITION_FIELDS.into_iter().chain([CachePartition::None]) {
            assert_eq!(p.as_str().parse::<CachePartition>(), Ok(p));
        }
        assert_eq!("salt".parse::<CachePartition>(), Err(BadPartition("salt".into())));
        assert_eq!(CachePartition::None.field(), None);
        assert_eq!(CachePartition::User.field(), Some("user"));
    }

    #[test]
    fn defaults_by_kind_and_host() {
        assert_eq!(
            CachePartition::default_for(true, "openrouter.ai"),
            CachePartition::User
        );
        assert_eq!(
            CachePartition::default_for(false, "API.OpenAI.com"),
            CachePartition::PromptCacheKey
        );
        assert_eq!(
            CachePartition::default_for(false, "10.0.0.5"),
            CachePartition::CacheSalt
        );
        assert_eq!(
            CachePartition::default_for(false, "localhost"),
            CachePartition::CacheSalt
        );
    }

    #[test]
    fn client_values_are_bounded_and_printable() {
        assert!(validate_client_value("user", "alice@example.com").is_ok());
        assert!(validate_client_value("user", "a b:c/d=e+f").is_ok());
        assert_eq!(
            validate_client_value("user", ""),
            Err(ClientValueError::Empty { field: "user" })
        );
        let long = "x".repeat(MAX_CLIENT_VALUE_BYTES + 1);
        assert_eq!(
            validate_client_value("cache_salt", &long),
            Err(ClientValueError::TooLong { field: "cache_salt" })
        );
        assert!(validate_client_value("cache_salt", &long[1..]).is_ok());
        for bad in ["tab\there", "new\nline", "é", "\u{0}"] {
            assert_eq!(
                validate_client_value("prompt_cache_key", bad),
                Err(ClientValueError::Charset {
                    field: "prompt_cache_key"
                }),
                "{bad:?}"
            );
        }
    }
}
