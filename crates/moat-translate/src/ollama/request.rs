//! OpenAI chat request → Ollama `/api/chat` body.

use std::collections::HashMap;

use moat_wire::openai::{ChatCompletionRequest, ChatMessage, MessageContent, Stop};
use serde_json::{json, Map, Value};

use crate::anthropic::outbound_parse_data_url as parse_data_url;
use crate::TranslateError;

/// The `/api/chat` body for an OpenAI chat request.
///
/// Sampling settings go to `options` (`temperature`, `top_p`, `top_k`, `num_predict` from
/// `max_completion_tokens`/`max_tokens`, `stop`, `seed`, penalties); images in `data:` URLs go to the
/// message's `images`; tool calls get their arguments as objects, as Ollama wants them. `stream` is
/// always sent, because Ollama streams when it is absent. `response_format` becomes `format`
/// (`"json"` or the schema). Fields with no Ollama counterpart are dropped; unknown ones pass through.
pub fn to_chat_body(req: &ChatCompletionRequest) -> Result<Value, TranslateError> {
    let model = req
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| TranslateError::InvalidRequest("`model` is required".into()))?;
    // Tool results name their function in Ollama; OpenAI names only the call id.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        for call in m.tool_calls.iter().flatten() {
            call_names.insert(&call.id, &call.function.name);
        }
        messages.push(message(m, &call_names)?);
    }
    let mut options = Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            options.insert(k.to_owned(), v);
        }
    };
    set("temperature", req.temperature.map(Value::from));
    set("top_p", req.top_p.map(Value::from));
    set("top_k", req.top_k.map(Value::from));
    set(
        "num_predict",
        req.max_completion_tokens.or(req.max_tokens).map(Value::from),
    );
    set(
        "stop",
        req.stop.as_ref().map(|s| match s {
            Stop::One(s) => json!([s]),
            Stop::Many(v) => json!(v),
        }),
    );
    set("seed", req.seed.map(Value::from));
    set("frequency_penalty", req.frequency_penalty.map(Value::from));
    set("presence_penalty", req.presence_penalty.map(Value::from));
    let mut body = req.extra.clone();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(req.stream == Some(true)));
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    if let Some(tools) = &req.tools {
        body.insert(
            "tools".into(),
            serde_json::to_value(tools).map_err(|e| TranslateError::InvalidRequest(e.to_string()))?,
        );
    }
    if let Some(format) = req.response_format.as_ref().and_then(response_format) {
        body.insert("format".into(), format);
    }
    Ok(Value::Object(body))
}

fn response_format(rf: &Value) -> Option<Value> {
    match rf.get("type").and_then(Value::as_str)? {
        "json_object" => Some(json!("json")),
        "json_schema" => rf.pointer("/json_schema/schema").cloned(),
        _ => None,
    }
}

fn message(m: &ChatMessage, call_names: &HashMap<&str, &str>) -> Result<Value, TranslateError> {
    let role = if m.role == "developer" {
        "system"
    } else {
        m.role.as_str()
    };
    let mut out = Map::new();
    out.insert("role".into(), json!(role));
    let mut images = Vec::new();
    let text = match &m.content {
        None => String::new(),
        Some(MessageContent::Text(t)) => t.clone(),
        Some(MessageContent::Parts(parts)) => {
            let mut texts = Vec::new();
            for p in parts {
                match p.r#type.as_str() {
                    "text" => texts.extend(p.text.clone()),
                    "image_url" => {
                        if let Some((_, data)) = p.image_url.as_ref().and_then(|i| parse_data_url(&i.url)) {
                            images.push(json!(data));
                        }
                    }
                    _ => {}
                }
            }
            texts.join("\n")
        }
    };
    out.insert("content".into(), json!(text));
    if !images.is_empty() {
        out.insert("images".into(), Value::Array(images));
    }
    if let Some(calls) = &m.tool_calls {
        let mut list = Vec::with_capacity(calls.len());
        for call in calls {
            let args = call.function.arguments.trim();
            let arguments: Value = if args.is_empty() {
                json!({})
            } else {
                serde_json::from_str(args).map_err(|_| {
                    TranslateError::InvalidRequest(format!(
                        "tool call `{}`: `arguments` is not valid JSON",
                        call.id
                    ))
                })?
            };
            list.push(json!({"function": {"name": call.function.name, "arguments": arguments}}));
        }
        out.insert("tool_calls".into(), Value::Array(list));
    }
    if let Some(name) = m.tool_call_id.as_deref().and_then(|id| call_names.get(id)) {
        out.insert("tool_name".into(), json!(name));
    }
    Ok(Value::Object(out))
}
