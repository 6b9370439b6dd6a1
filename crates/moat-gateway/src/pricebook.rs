//! What each model costs and how much it may write, for reservations: configured prices first, then
//! what the provider's `/models` says (OpenRouter publishes per-token prices and output caps), then
//! the provider's `"*"` price. Models on `local = true` providers are free.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use moat_policy::pricing::Price;
use moat_wire::openai::{ModelList, ModelPricing};

/// What is known about one model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelFacts {
    pub price: Option<Price>,
    /// Most output tokens one answer may have.
    pub max_output: Option<u64>,
}

#[derive(Debug)]
struct ProviderPrices {
    local: bool,
    configured: BTreeMap<String, Price>,
}

/// Prices for every provider's models.
#[derive(Debug)]
pub struct PriceBook {
    providers: Vec<ProviderPrices>,
    learned: RwLock<HashMap<(usize, String), ModelFacts>>,
}

impl PriceBook {
    pub fn new(providers: impl IntoIterator<Item = (bool, BTreeMap<String, Price>)>) -> PriceBook {
        PriceBook {
            providers: providers
                .into_iter()
                .map(|(local, configured)| ProviderPrices { local, configured })
                .collect(),
            learned: RwLock::new(HashMap::new()),
        }
    }

    /// The facts for `model` on `provider`.
    pub fn lookup(&self, provider: usize, model: &str) -> ModelFacts {
        let Some(p) = self.providers.get(provider) else {
            return ModelFacts::default();
        };
        let learned = self
            .learned
            .read()
            .ok()
            .and_then(|l| l.get(&(provider, model.to_string())).copied())
            .unwrap_or_default();
        let price = if p.local {
            Some(Price::FREE)
        } else {
            p.configured
                .get(model)
                .copied()
                .or(learned.price)
                .or_else(|| p.configured.get("*").copied())
        };
        ModelFacts {
            price,
            max_output: learned.max_output,
        }
    }

    /// The price the operator set for `model` (its own entry, else the provider's `"*"`; free on a
    /// local provider), ignoring what the provider's list says.
    pub fn configured(&self, provider: usize, model: &str) -> Option<Price> {
        let p = self.providers.get(provider)?;
        if p.local {
            return Some(Price::FREE);
        }
        p.configured.get(model).or_else(|| p.configured.get("*")).copied()
    }

    /// Records what a provider's model list says.
    pub fn learn(&self, provider: usize, list: &ModelList) {
        let Ok(mut learned) = self.learned.write() else {
            return;
        };
        for m in &list.data {
            let price = m.pricing.as_ref().and_then(|p| {
                let input = ModelPricing::usd(p.prompt.as_ref())?;
                let output = ModelPricing::usd(p.completion.as_ref())?;
                Price::from_usd_per_token(input, output)
            });
            let max_output = m
                .extra
                .get("top_provider")
                .and_then(|t| t.get("max_completion_tokens"))
                .and_then(serde_json::Value::as_u64)
                .or(m.context_length);
            learned.insert((provider, m.id.clone()), ModelFacts { price, max_output });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_then_learned_then_wildcard() {
        let mut configured = BTreeMap::new();
        configured.insert(
            "a".to_string(),
            Price {
                input_per_mtok: 1,
                output_per_mtok: 2,
            },
        );
        configured.insert(
            "*".to_string(),
            Price {
                input_per_mtok: 9,
                output_per_mtok: 9,
            },
        );
        let book = PriceBook::new([(false, configured), (true, BTreeMap::new())]);
        let list: ModelList = serde_json::from_value(serde_json::json!({"data": [
            {"id": "b", "pricing": {"prompt": "0.000001", "completion": "0.000002"}, "context_length": 8000,
             "top_provider": {"max_completion_tokens": 1000}},
            {"id": "a", "pricing": {"prompt": "1", "completion": "1"}}
        ]}))
        .unwrap();
        book.learn(0, &list);
        assert_eq!(
            book.lookup(0, "a").price,
            Some(Price {
                input_per_mtok: 1,
                output_per_mtok: 2
            })
        );
        assert_eq!(
            book.lookup(0, "b").price,
            Price::from_usd_per_token(0.000001, 0.000002)
        );
        assert_eq!(book.lookup(0, "b").max_output, Some(1000));
        assert_eq!(
            book.lookup(0, "c").price,
            Some(Price {
                input_per_mtok: 9,
                output_per_mtok: 9
            })
        );
        assert_eq!(book.lookup(1, "anything").price, Some(Price::FREE));
        assert_eq!(book.lookup(7, "x"), ModelFacts::default());
    }
}
