//! JSON shapes that are not completions: OpenAI and OpenRouter error bodies, the model list, and the
//! OpenRouter key report. Pure functions over `serde_json::Value`.

use http::StatusCode;
use serde_json::{json, Value};

/// Prices used when a model is not in the list or has no parseable pricing, per token in dollars.
const DEFAULT_PRICE: Price = Price {
    prompt: 0.000_001,
    completion: 0.000_002,
};

/// OpenAI's error body: `{"error":{"message","type","param","code"}}`.
pub(crate) fn openai_error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// OpenRouter's error body: the HTTP status as an integer `code`, plus `metadata`.
pub(crate) fn openrouter_error(status: StatusCode, message: &str) -> Value {
    json!({"error": {"code": status.as_u16(), "message": message, "metadata": {"provider_name": "Emu"}}})
}

/// The OpenAI error `type` and `code` that go with a status, as OpenAI itself pairs them.
pub(crate) fn error_kind(status: StatusCode) -> (&'static str, Option<&'static str>) {
    match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        s if s >= 500 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

/// A default message for an emulated failure, worded like the provider's.
pub(crate) fn default_message(status: StatusCode) -> String {
    match status.as_u16() {
        429 => "Rate limit reached for requests. Please try again later.".to_owned(),
        500 => "The server had an error while processing your request. Sorry about that!".to_owned(),
        503 => "The engine is currently overloaded, please try again later.".to_owned(),
        _ => format!("Emulated error {}", status.as_u16()),
    }
}

/// The emulator's model list when the options do not replace it: OpenAI's required fields plus the
/// extra fields OpenRouter adds, which a gateway must pass through untouched.
pub(crate) fn default_models() -> Value {
    json!([
        model("tiny", "Tiny", 4096, "0.000001", "0.000002"),
        model(
            "anthropic/claude-sonnet-4",
            "Anthropic: Claude Sonnet 4",
            200_000,
            "0.000003",
            "0.000015"
        ),
        model(
            "openai/gpt-4o-mini",
            "OpenAI: GPT-4o-mini",
            128_000,
            "0.00000015",
            "0.0000006"
        ),
        model("emu-embed", "Emulator embeddings", 8192, "0.00000002", "0"),
    ])
}

fn model(id: &str, name: &str, context: u64, prompt: &str, completion: &str) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": 1_700_000_000,
        "owned_by": "emulator",
        "canonical_slug": id,
        "name": name,
        "description": format!("{name}, served by the moat upstream emulator."),
        "context_length": context,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": null
        },
        "pricing": {"prompt": prompt, "completion": completion, "request": "0", "image": "0"},
        "top_provider": {"context_length": context, "max_completion_tokens": 4096, "is_moderated": false},
        "per_request_limits": null,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "stream", "seed"]
    })
}

/// `GET /models`.
pub(crate) fn model_list(data: &Value) -> Value {
    json!({"object": "list", "data": data})
}

/// `GET /models/{id}`: the entry whose `id` matches.
pub(crate) fn find_model<'a>(data: &'a Value, id: &str) -> Option<&'a Value> {
    data.as_array()?
        .iter()
        .find(|m| m.get("id").and_then(Value::as_str) == Some(id))
}

/// OpenRouter's `GET /api/v1/key` report for the calling key: the configured `data` object if the
/// options gave one (its `usage` filled in with the spend so far when it has none), else a key
/// without limits.
pub(crate) fn key_report(configured: Option<&Value>, usage: f64) -> Value {
    if let Some(data) = configured {
        let mut data = data.clone();
        if let Some(obj) = data.as_object_mut() {
            obj.entry("usage").or_insert(json!(usage));
        }
        return json!({ "data": data });
    }
    json!({"data": {
        "label": "sk-or-v1-emu...",
        "limit": null,
        "limit_reset": null,
        "usage": usage,
        "limit_remaining": null,
        "is_free_tier": false,
        "is_provisioning_key": false,
        "rate_limit": {"requests": -1, "interval": "10s"}
    }})
}

/// Dollars per token for one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Price {
    pub(crate) prompt: f64,
    pub(crate) completion: f64,
}

/// The price of `model` from the list's OpenRouter `pricing` strings, or the default.
pub(crate) fn price_of(data: &Value, model: &str) -> Price {
    let pricing = find_model(data, model).and_then(|m| m.get("pricing"));
    let read = |field: &str| {
        pricing
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
    };
    match (read("prompt"), read("completion")) {
        (Some(prompt), Some(completion)) => Price { prompt, completion },
        _ => DEFAULT_PRICE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes() {
        let e = openai_error("nope", "invalid_request_error", None, None);
        assert_eq!(e["error"]["param"], Value::Null);
        assert_eq!(e["error"]["type"], "invalid_request_error");
        let o = openrouter_error(StatusCode::TOO_MANY_REQUESTS, "slow");
        assert_eq!(o["error"]["code"], 429);
        assert_eq!(o["error"]["metadata"]["provider_name"], "Emu");
        assert_eq!(
            error_kind(StatusCode::SERVICE_UNAVAILABLE),
            ("server_error", None)
        );
        assert_eq!(
            error_kind(StatusCode::TOO_MANY_REQUESTS).1,
            Some("rate_limit_exceeded")
        );
    }

    #[test]
    fn key_reports() {
        let open = key_report(None, 0.5);
        assert_eq!(
            (open["data"]["limit"].clone(), open["data"]["usage"].clone()),
            (Value::Null, json!(0.5))
        );
        let daily = json!({"limit": 5.0, "limit_reset": "daily"});
        let r = key_report(Some(&daily), 0.25);
        assert_eq!(r["data"]["limit_reset"], "daily");
        assert_eq!(r["data"]["usage"], 0.25);
    }

    #[test]
    fn prices_come_from_the_list() {
        let models = default_models();
        let p = price_of(&models, "anthropic/claude-sonnet-4");
        assert_eq!(
            p,
            Price {
                prompt: 0.000_003,
                completion: 0.000_015
            }
        );
        assert_eq!(price_of(&models, "unknown"), DEFAULT_PRICE);
        assert!(find_model(&models, "tiny").is_some());
    }
}
