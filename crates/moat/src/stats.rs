//! The one stats line after an answer: model, provider, cost, time to first token, tokens per second.

use std::time::Duration;

/// What the stats line reports about one answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub model: String,
    pub provider: Option<String>,
    /// USD, as reported by the server (OpenRouter's `usage.cost`); absent elsewhere.
    pub cost: Option<f64>,
    /// Request sent → first token (answer or reasoning).
    pub first_token: Option<Duration>,
    /// Request sent → last byte.
    pub total: Duration,
    pub completion_tokens: Option<u64>,
}

impl Stats {
    /// Output tokens per second over the time the tokens were arriving (after the first one).
    pub fn tokens_per_second(&self) -> Option<f64> {
        let tokens = self.completion_tokens.filter(|t| *t > 0)?;
        let streaming = self.total.saturating_sub(self.first_token.unwrap_or_default());
        let secs = streaming.as_secs_f64();
        (secs > 0.0).then(|| tokens as f64 / secs)
    }

    /// `model · provider · $0.000123 · first token 0.42 s · 57 tok/s`, leaving out what is unknown.
    pub fn line(&self) -> String {
        let mut parts = vec![self.model.clone()];
        if let Some(p) = &self.provider {
            parts.push(p.clone());
        }
        if let Some(cost) = self.cost {
            parts.push(format_cost(cost));
        }
        match self.first_token {
            Some(t) => parts.push(format!("first token {}", format_secs(t))),
            None => parts.push(format!("total {}", format_secs(self.total))),
        }
        if let Some(tps) = self.tokens_per_second() {
            parts.push(format!("{tps:.0} tok/s"));
        } else if let Some(tokens) = self.completion_tokens {
            parts.push(format!("{tokens} tokens"));
        }
        parts.join(" · ")
    }
}

/// Dollars with enough digits that a fraction of a cent still shows.
pub fn format_cost(usd: f64) -> String {
    if usd == 0.0 {
        "$0".to_owned()
    } else if usd >= 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.6}")
    }
}

fn format_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_line() {
        let s = Stats {
            model: "anthropic/claude-sonnet-4".into(),
            provider: Some("Anthropic".into()),
            cost: Some(0.000_123),
            first_token: Some(Duration::from_millis(420)),
            total: Duration::from_millis(1420),
            completion_tokens: Some(57),
        };
        assert_eq!(
            s.line(),
            "anthropic/claude-sonnet-4 · Anthropic · $0.000123 · first token 0.42 s · 57 tok/s"
        );
    }

    #[test]
    fn sparse_line() {
        let s = Stats {
            model: "llama".into(),
            total: Duration::from_secs(12),
            completion_tokens: Some(3),
            first_token: Some(Duration::from_secs(12)),
            ..Stats::default()
        };
        assert_eq!(s.line(), "llama · first token 12.0 s · 3 tokens");
        assert_eq!(format_cost(0.0), "$0");
        assert_eq!(format_cost(1.5), "$1.5000");
    }
}
