//! OpenRouter's request extensions: provider routing preferences, unified reasoning settings, and
//! usage accounting.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How OpenRouter (and moat, which honours the same object) picks providers for a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderPreferences {
    /// Providers to try first, in this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
    /// Whether providers outside `order` may be used when those fail (default: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_fallbacks: Option<bool>,
    /// Only use providers that support every parameter of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_parameters: Option<bool>,
    /// `"allow" | "deny"`: whether providers that may store or train on prompts are acceptable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_collection: Option<String>,
    /// Only zero-data-retention endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdr: Option<bool>,
    /// Allow-list of providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
    /// Deny-list of providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<String>>,
    /// Acceptable quantization levels (`"fp8"`, `"int4"`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantizations: Option<Vec<String>>,
    /// `"price" | "throughput" | "latency"`, or an object in newer API versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<Value>,
    /// Ceiling on what the request may cost per unit; providers above it are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<MaxPrice>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Price ceilings in USD per million tokens (or per request/image).
///
/// The values stay `Value`s because clients send both numbers and decimal strings;
/// [`MaxPrice::as_usd`] reads either.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaxPrice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MaxPrice {
    /// A price given as a JSON number or a decimal string, as `f64`; `None` for anything else.
    pub fn as_usd(value: &Value) -> Option<f64> {
        usd_value(value)
    }
}

/// Prices arrive as JSON numbers or as decimal strings (which lose no precision); read both.
pub(super) fn usd_value(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// OpenRouter's unified reasoning settings, translated per provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    /// `"minimal" | "low" | "medium" | "high"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// A token budget for reasoning; counts towards the output a reservation must cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Reason, but leave the reasoning out of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `"usage": {"include": true}` asks OpenRouter to put cost and token details in the usage object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageAccounting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
