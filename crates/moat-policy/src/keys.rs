//! Rules attached to virtual keys that need no I/O: which models a key may use, and the small text
//! formats operators type (`--expires 30d`).

use globset::{Glob, GlobSet, GlobSetBuilder};

/// A key's model allow-list: shell-style globs over the model name as the client sends it
/// (`openrouter/*`, `local/llama-*`, `fast`). `*` also matches `/`. No patterns means any model.
#[derive(Debug, Clone, Default)]
pub struct ModelFilter {
    set: Option<GlobSet>,
    patterns: Vec<String>,
}

/// A malformed pattern or duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRuleError {
    #[error("model pattern {pattern:?}: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("duration {0:?}: expected a number with a unit, e.g. 30d, 12h, 45m, 2w")]
    BadDuration(String),
}

impl ModelFilter {
    /// Compiles the patterns once; a key's filter is checked on every request.
    pub fn new(patterns: &[String]) -> Result<ModelFilter, KeyRuleError> {
        let patterns: Vec<String> = patterns
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if patterns.is_empty() {
            return Ok(ModelFilter::default());
        }
        let mut builder = GlobSetBuilder::new();
        for p in &patterns {
            let glob = Glob::new(p).map_err(|e| KeyRuleError::BadPattern {
                pattern: p.clone(),
                reason: e.kind().to_string(),
            })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| KeyRuleError::BadPattern {
            pattern: patterns.join(","),
            reason: e.to_string(),
        })?;
        Ok(ModelFilter {
            set: Some(set),
            patterns,
        })
    }

    /// True when `model` may be used.
    pub fn allows(&self, model: &str) -> bool {
        self.set.as_ref().is_none_or(|s| s.is_match(model))
    }

    /// The patterns as given, for listings.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Parses `30d`, `12h`, `45m`, `2w`, `90s` into seconds.
pub fn parse_duration_secs(text: &str) -> Result<i64, KeyRuleError> {
    let bad = || KeyRuleError::BadDuration(text.to_string());
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|s| *s > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_model_names() {
        let f = ModelFilter::new(&["openrouter/*".into(), "local/llama-?".into()]).unwrap();
        assert!(f.allows("openrouter/anthropic/claude-sonnet-4"));
        assert!(f.allows("local/llama-3"));
        assert!(!f.allows("local/llama-31"));
        assert!(!f.allows("openai/gpt-4o"));
        assert!(ModelFilter::new(&[]).unwrap().allows("anything"));
        assert!(ModelFilter::new(&["[".into()]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration_secs("2w"), Ok(14 * 86_400));
        assert_eq!(parse_duration_secs("90s"), Ok(90));
        for bad in ["", "d", "30", "30x", "-1d", "0d", "99999999999999999w"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }
}
