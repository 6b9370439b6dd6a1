//! Prices and cost: what a request may cost at most (for the reservation) and what it did cost (from
//! the provider's usage), in nano-dollars.

use crate::budget::{usd_to_nanos, Nanos};

/// A model's price, in nano-dollars per million tokens (exact for every published price we know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input_per_mtok: Nanos,
    pub output_per_mtok: Nanos,
}

impl Price {
    /// Free (local models).
    pub const FREE: Price = Price {
        input_per_mtok: 0,
        output_per_mtok: 0,
    };

    /// From dollars per million tokens, as written in config (`[0.15, 0.60]`).
    pub fn from_usd_per_mtok(input: f64, output: f64) -> Option<Price> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        (ok(input) && ok(output)).then(|| Price {
            input_per_mtok: usd_to_nanos(input),
            output_per_mtok: usd_to_nanos(output),
        })
    }

    /// From OpenRouter's `/models` pricing: decimal strings (or numbers) in dollars per token.
    pub fn from_usd_per_token(input: f64, output: f64) -> Option<Price> {
        Price::from_usd_per_mtok(input * 1e6, output * 1e6)
    }

    /// Cost of this many tokens, rounded up.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Nanos {
        let raw = u128::from(prompt_tokens) * u128::from(self.input_per_mtok)
            + u128::from(completion_tokens) * u128::from(self.output_per_mtok);
        let nanos = raw.div_ceil(1_000_000);
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }
}

/// An upper-leaning estimate of a prompt's tokens from its text size, before any tokenizer has seen
/// it: one token per three bytes (real tokenizers average about four for English) plus a few tokens
/// of framing per message. Over-estimating only holds budget a little longer; under-estimating could
/// let a burst overspend, so the estimate leans high.
pub fn estimate_prompt_tokens(text_bytes: usize, messages: usize) -> u64 {
    (text_bytes as u64).div_ceil(3) + 4 * messages as u64 + 3
}

/// The actual cost of an answer: the provider's own figure when it reports one (OpenRouter's
/// `usage.cost`), otherwise tokens × price.
pub fn actual_cost(
    reported_usd: Option<f64>,
    price: Option<Price>,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> Nanos {
    match (reported_usd, price) {
        (Some(usd), _) => usd_to_nanos(usd),
        (None, Some(p)) => p.cost(prompt_tokens, completion_tokens),
        (None, None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn openrouter_style_prices() {
        let p = Price::from_usd_per_token(0.000003, 0.000015).unwrap();
        assert_eq!(p.input_per_mtok, 3_000_000_000);
        assert_eq!(p.cost(1_000_000, 0), 3_000_000_000);
        assert_eq!(p.cost(1, 1), 18_000); // $0.000018
    }

    #[test]
    fn reported_cost_wins_and_rounds_up() {
        let p = Price::from_usd_per_mtok(1.0, 2.0);
        assert_eq!(actual_cost(Some(0.0000000011), p, 1000, 1000), 2);
        assert_eq!(actual_cost(None, p, 1000, 1000), 3000 * 1000);
        assert_eq!(actual_cost(None, None, 1000, 1000), 0);
    }

    #[test]
    fn bad_prices_are_refused() {
        assert_eq!(Price::from_usd_per_mtok(-1.0, 1.0), None);
        assert_eq!(Price::from_usd_per_mtok(f64::NAN, 1.0), None);
    }

    proptest! {
        #[test]
        fn cost_is_monotonic_and_never_rounds_down(a in 0u64..10_000_000, b in 0u64..10_000_000, i in 0u64..100_000_000_000, o in 0u64..100_000_000_000) {
            let p = Price { input_per_mtok: i, output_per_mtok: o };
            let c = p.cost(a, b);
            prop_assert!(p.cost(a + 1, b) >= c);
            prop_assert!(p.cost(a, b + 1) >= c);
            prop_assert!(u128::from(c) * 1_000_000 >= u128::from(a) * u128::from(i) + u128::from(b) * u128::from(o));
        }

        #[test]
        fn estimate_grows_with_text(bytes in 0usize..10_000_000, msgs in 0usize..1000) {
            prop_assert!(estimate_prompt_tokens(bytes + 3, msgs) > estimate_prompt_tokens(bytes, msgs));
            prop_assert!(estimate_prompt_tokens(bytes, msgs) >= (bytes as u64) / 4);
        }
    }
}
