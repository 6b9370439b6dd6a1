//! The model list (`GET /v1/models`), with the extra facts OpenRouter publishes per model.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `{"object": "list", "data": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// `"list"` at OpenAI; OpenRouter leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default)]
    pub data: Vec<Model>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ModelList {
    /// The list moatd serves, with OpenAI's `"object": "list"`.
    pub fn new(data: Vec<Model>) -> Self {
        Self {
            object: Some("list".to_owned()),
            data,
            extra: Map::new(),
        }
    }
}

/// One model.
///
/// Everything but `id` is optional because the sources disagree: OpenAI sends `object`, `created`
/// and `owned_by`; OpenRouter sends `created` but neither `object` nor `owned_by`, and adds `name`,
/// `context_length` and `pricing`, among others kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// OpenRouter: display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// OpenRouter: context window in tokens; bounds a request's token estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// OpenRouter: per-token prices, the source of moat's price table for OpenRouter models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<ModelPricing>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Model {
    /// An entry in OpenAI's shape, as moatd lists its own models.
    pub fn new(id: impl Into<String>, created: u64, owned_by: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            object: Some("model".to_owned()),
            created: Some(created),
            owned_by: Some(owned_by.into()),
            ..Self::default()
        }
    }
}

/// OpenRouter's prices in USD per token (per request, per image).
///
/// OpenRouter sends decimal strings so no precision is lost; other catalogues send numbers. The
/// values stay `Value`s so both parse, and [`ModelPricing::usd`] reads either.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPricing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_write: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_reasoning: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ModelPricing {
    /// A price field as `f64`, whether it came as a number or a decimal string.
    pub fn usd(price: Option<&Value>) -> Option<f64> {
        price.and_then(super::openrouter::usd_value)
    }
}
