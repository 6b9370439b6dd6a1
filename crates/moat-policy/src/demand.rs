//! What a request can make a provider produce, read from its body as the client sent it, whatever
//! the endpoint or wire: the output cap (the largest of `max_tokens`, `max_completion_tokens` and
//! `max_output_tokens`; 0 counts as absent, since providers then apply the model's own cap), how many
//! outputs it asks for (`n`, `best_of`), and how many prompt tokens it holds (its size, or its count
//! of token ids when the prompt is given as token arrays). The reservation multiplies these out, so
//! no member moatd does not model can make a request cost more than was held for it.
//!
//! ```
//! use moat_policy::demand::Demand;
//! use serde_json::json;
//!
//! let body = json!({"model": "m", "n": 10, "max_completion_tokens": 0, "max_tokens": 400, "messages": []});
//! let d = Demand::of_body(&body, 64);
//! assert_eq!((d.max_output, d.outputs), (Some(400), 10));
//! assert_eq!(d.output_tokens(None, 4096), 4000);
//! ```

use serde_json::Value;

use crate::pricing::estimate_prompt_tokens;

/// Members that cap a request's output tokens, per output.
const OUTPUT_CAPS: &[&str] = &["max_tokens", "max_completion_tokens", "max_output_tokens"];
/// Members that multiply a request's outputs (`best_of` outputs are generated and billed even when
/// only `n` are returned).
const MULTIPLIERS: &[&str] = &["n", "best_of"];

/// A request's demand on a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// Estimated prompt tokens (leaning high).
    pub prompt_tokens: u64,
    /// The client's output cap per output; `None` when it set none (or only zeros).
    pub max_output: Option<u64>,
    /// Outputs generated: the largest of `n` and `best_of`, at least 1.
    pub outputs: u64,
}

impl Demand {
    /// Reads a body of `body_bytes` bytes. Numbers may be integers, floats (rounded up) or numeric
    /// strings, since some providers accept all three.
    pub fn of_body(body: &Value, body_bytes: usize) -> Demand {
        let top = body.as_object();
        let read = |names: &[&str]| -> Option<u64> {
            names
                .iter()
                .filter_map(|n| top.and_then(|m| m.get(*n)).and_then(count))
                .filter(|&v| v > 0)
                .max()
        };
        let token_ids = token_ids(body);
        Demand {
            prompt_tokens: estimate_prompt_tokens(body_bytes, 0).max(token_ids),
            max_output: read(OUTPUT_CAPS),
            outputs: read(MULTIPLIERS).unwrap_or(1),
        }
    }

    /// Output tokens to hold for: the client's cap, else the model's, else `default`, times the
    /// number of outputs.
    pub fn output_tokens(&self, model_cap: Option<u64>, default: u64) -> u64 {
        self.max_output
            .or(model_cap)
            .unwrap_or(default)
            .saturating_mul(self.outputs)
    }
}

/// A non-negative count from a JSON number or numeric string, rounded up; `None` otherwise.
fn count(v: &Value) -> Option<u64> {
    let f = match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) => return Some(u),
            None => n.as_f64()?,
        },
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // `as` saturates: 1e300 becomes u64::MAX, which no budget admits.
    (f.is_finite() && f >= 0.0).then(|| f.ceil() as u64)
}

/// Integers inside arrays anywhere in the body: a prompt given as token ids (`[[1, 2, 3]]`) holds at
/// least one token per id, however few bytes each takes.
fn token_ids(v: &Value) -> u64 {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Number(n) if n.is_u64() || n.is_i64() => 1,
                other => token_ids(other),
            })
            .fold(0u64, u64::saturating_add),
        Value::Object(map) => map.values().map(token_ids).fold(0u64, u64::saturating_add),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn every_cap_and_multiplier_counts() {
        let d = |v: Value| Demand::of_body(&v, 30);
        assert_eq!(d(json!({})).max_output, None);
        assert_eq!(d(json!({})).outputs, 1);
        assert_eq!(d(json!({"max_tokens": 10})).max_output, Some(10));
        assert_eq!(
            d(json!({"max_tokens": 10, "max_completion_tokens": 50})).max_output,
            Some(50)
        );
        assert_eq!(
            d(json!({"max_output_tokens": 70, "max_tokens": 20})).max_output,
            Some(70)
        );
        assert_eq!(
            d(json!({"max_tokens": 400, "max_completion_tokens": 0})).max_output,
            Some(400)
        );
        assert_eq!(
            d(json!({"max_tokens": 0})).max_output,
            None,
            "0 leaves the model's cap"
        );
        assert_eq!(d(json!({"max_tokens": 9.2})).max_output, Some(10));
        assert_eq!(d(json!({"max_tokens": "12"})).max_output, Some(12));
        assert_eq!(d(json!({"max_tokens": -5})).max_output, None);
        assert_eq!(d(json!({"n": 10})).outputs, 10);
        assert_eq!(d(json!({"n": 2, "best_of": 5})).outputs, 5);
        assert_eq!(d(json!({"n": 0})).outputs, 1);
        assert_eq!(d(json!({"n": 1e300})).outputs, u64::MAX);
    }

    #[test]
    fn output_tokens_multiply_out_and_saturate() {
        let d = Demand::of_body(&json!({"n": 3}), 10);
        assert_eq!(d.output_tokens(Some(100), 4096), 300);
        assert_eq!(d.output_tokens(None, 4096), 12288);
        let d = Demand::of_body(&json!({"n": u64::MAX, "max_tokens": 2}), 10);
        assert_eq!(d.output_tokens(None, 1), u64::MAX);
    }

    #[test]
    fn token_id_prompts_count_one_token_per_id() {
        let ids: Vec<u64> = (0..3000).map(|i| i % 10).collect();
        let body = json!({"model": "e", "input": [ids]});
        let bytes = body.to_string().len();
        let d = Demand::of_body(&body, bytes);
        assert!(d.prompt_tokens >= 3000, "{d:?}");
        assert!(
            estimate_prompt_tokens(bytes, 0) < 3000,
            "the size alone would under-count"
        );
    }

    proptest! {
        /// More outputs or a higher cap never lowers what is held.
        #[test]
        fn demand_is_monotonic(n in 0u64..100, extra in 1u64..100, cap in 0u64..100_000, more in 1u64..1000) {
            let a = Demand::of_body(&json!({"n": n, "max_tokens": cap}), 100);
            let b = Demand::of_body(&json!({"n": n + extra, "max_tokens": cap + more}), 100);
            prop_assert!(b.output_tokens(None, 4096) >= a.output_tokens(None, 4096));
            let per_output = if cap == 0 { 4096 } else { cap };
            prop_assert_eq!(a.output_tokens(None, 4096), per_output * n.max(1));
        }
    }
}
