//! moatd → an Anthropic provider: OpenAI chat requests become Messages requests, and Anthropic's
//! answers, errors and model lists become OpenAI's.

use moat_wire::error::ErrorBody;
use moat_wire::openai::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart, FunctionCall,
    MessageContent, Model, ModelList, Stop, ToolCall,
};
use serde_json::{json, Map, Value};

use super::types::{AnthropicTool, Content, Message, MessagesRequest, MessagesResponse};
use crate::TranslateError;

/// `max_tokens` is required by Anthropic; this is sent when the OpenAI request sets no cap.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// An OpenAI chat request as an Anthropic Messages request.
///
/// System and developer messages become `system`; tool results become `tool_result` blocks in a user
/// turn; consecutive turns of one role are merged, as Anthropic wants them alternating. Fields with no
/// Anthropic counterpart (`n`, penalties, `logprobs`, `seed`, `response_format`, OpenRouter's routing
/// fields, cache partition fields) are dropped; unknown fields pass through.
pub fn to_messages_request(req: &ChatCompletionRequest) -> Result<MessagesRequest, TranslateError> {
    let model = req
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| TranslateError::InvalidRequest("`model` is required".into()))?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                if let Some(c) = &m.content {
                    system.push(c.texts().collect::<Vec<_>>().join("\n"));
                }
                continue;
            }
            "assistant" => ("assistant", assistant_blocks(m)?),
            "tool" | "function" => ("user", vec![tool_result_block(m)]),
            _ => ("user", content_blocks(m.content.as_ref())),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if last == role => existing.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, blocks)| Message {
            role,
            content: Content::Blocks(blocks),
        })
        .collect();
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .filter_map(|t| t.function.as_ref())
            .map(|f| AnthropicTool {
                name: f.name.clone(),
                description: f.description.clone(),
                input_schema: Some(
                    f.parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                ),
                extra: Map::new(),
            })
            .collect()
    });
    Ok(MessagesRequest {
        model,
        messages,
        max_tokens: Some(
            req.max_completion_tokens
                .or(req.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS),
        ),
        system: (!system.is_empty()).then(|| Content::Text(system.join("\n\n"))),
        stop_sequences: req.stop.as_ref().map(|s| match s {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }),
        stream: req.stream,
        // OpenAI's range is 0..2, Anthropic's 0..1.
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: req.top_k,
        tools,
        tool_choice: tool_choice(req.tool_choice.as_ref(), req.parallel_tool_calls),
        metadata: req.user.as_ref().map(|u| json!({"user_id": u})),
        thinking: None,
        service_tier: None,
        extra: req.extra.clone(),
    })
}

fn tool_choice(choice: Option<&Value>, parallel: Option<bool>) -> Option<Value> {
    let mut out = match choice {
        None => {
            if parallel == Some(false) {
                json!({"type": "auto"})
            } else {
                return None;
            }
        }
        Some(Value::String(s)) => match s.as_str() {
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            _ => json!({"type": "auto"}),
        },
        Some(obj) => match obj.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => json!({"type": "tool", "name": name}),
            None => json!({"type": "auto"}),
        },
    };
    if parallel == Some(false) && out["type"] != "none" {
        out["disable_parallel_tool_use"] = json!(true);
    }
    Some(out)
}

/// A user message's content as Anthropic blocks; images become `image` blocks.
fn content_blocks(content: Option<&MessageContent>) -> Vec<Value> {
    match content {
        None => Vec::new(),
        Some(MessageContent::Text(t)) if t.is_empty() => Vec::new(),
        Some(MessageContent::Text(t)) => vec![json!({"type": "text", "text": t})],
        Some(MessageContent::Parts(parts)) => parts.iter().filter_map(part_block).collect(),
    }
}

/// One content part; parts with no Anthropic form (audio, files) are dropped.
fn part_block(part: &ContentPart) -> Option<Value> {
    match part.r#type.as_str() {
        "text" => part.text.as_ref().map(|t| json!({"type": "text", "text": t})),
        "image_url" => {
            let url = &part.image_url.as_ref()?.url;
            let source = match parse_data_url(url) {
                Some((media_type, data)) => {
                    json!({"type": "base64", "media_type": media_type, "data": data})
                }
                None if url.starts_with("http://") || url.starts_with("https://") => {
                    json!({"type": "url", "url": url})
                }
                None => return None,
            };
            Some(json!({"type": "image", "source": source}))
        }
        _ => None,
    }
}

/// `data:<media type>;base64,<data>` → (media type, data).
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

fn assistant_blocks(m: &ChatMessage) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = content_blocks(m.content.as_ref());
    for call in m.tool_calls.iter().flatten() {
        let args = call.function.arguments.trim();
        let input: Value = if args.is_empty() {
            json!({})
        } else {
            serde_json::from_str(args).map_err(|_| {
                TranslateError::InvalidRequest(format!(
                    "tool call `{}`: `arguments` is not valid JSON",
                    call.id
                ))
            })?
        };
        blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}));
    }
    Ok(blocks)
}

fn tool_result_block(m: &ChatMessage) -> Value {
    let text = m
        .content
        .as_ref()
        .map(|c| c.texts().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default();
    json!({
        "type": "tool_result",
        "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
        "content": text,
    })
}

/// An Anthropic answer as an OpenAI `chat.completion`. `created` is the Unix time to stamp it with
/// (Anthropic's answer carries none).
pub fn to_chat_response(body: &[u8], created: u64) -> Result<ChatCompletionResponse, TranslateError> {
    let resp: MessagesResponse = serde_json::from_slice(body).map_err(|e| {
        TranslateError::InvalidResponse(format!("provider sent a malformed Messages answer: {e}"))
    })?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in &resp.content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => calls.push(ToolCall {
                id: str_of(block, "id"),
                r#type: "function".into(),
                function: FunctionCall {
                    name: str_of(block, "name"),
                    arguments: block
                        .get("input")
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                    extra: Map::new(),
                },
                extra: Map::new(),
            }),
            _ => {}
        }
    }
    let message = ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        ..ChatMessage::default()
    };
    Ok(ChatCompletionResponse {
        id: resp.id,
        object: "chat.completion".into(),
        created,
        model: resp.model,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(
                super::finish_reason(resp.stop_reason.as_deref().unwrap_or("end_turn")).to_owned(),
            ),
            ..Choice::default()
        }],
        usage: Some(resp.usage.to_openai()),
        ..ChatCompletionResponse::default()
    })
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// An Anthropic error answer (`{"type":"error","error":{"type","message"}}`) as an OpenAI error:
/// the status to send (Anthropic's 529 "overloaded" becomes 503, which OpenAI clients know) and the
/// body. A body in no known shape keeps the status and gets a generic message.
pub fn error_to_openai(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let parsed: Option<(String, String)> = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let e = v.get("error")?;
        Some((
            e.get("type")
                .and_then(Value::as_str)
                .unwrap_or("api_error")
                .to_owned(),
            e.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
        ))
    });
    let (anthropic_type, message) =
        parsed.unwrap_or_else(|| (String::new(), format!("provider answered {status}")));
    let (status, kind, code) = match anthropic_type.as_str() {
        "invalid_request_error" => (status, "invalid_request_error", "invalid_request"),
        "authentication_error" => (status, "authentication_error", "invalid_api_key"),
        "billing_error" => (status, "insufficient_quota", "billing_error"),
        "permission_error" => (status, "permission_error", "permission_denied"),
        "not_found_error" => (status, "invalid_request_error", "not_found"),
        "request_too_large" => (status, "invalid_request_error", "request_too_large"),
        "rate_limit_error" => (status, "rate_limit_error", "rate_limit_exceeded"),
        "timeout_error" => (status, "server_error", "timeout"),
        "overloaded_error" => (503, "server_error", "overloaded"),
        _ if status == 529 => (503, "server_error", "overloaded"),
        _ => (status, "server_error", "upstream_error"),
    };
    (status, ErrorBody::new(message, kind, Some(code)).to_json_bytes())
}

/// Anthropic's `GET /v1/models` (`{"data":[{"id","display_name","created_at","type"}],…}`) as an
/// OpenAI model list.
pub fn models_to_openai(body: &[u8]) -> Result<ModelList, TranslateError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::InvalidResponse(format!("malformed model list: {e}")))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::InvalidResponse("model list has no `data` array".into()))?;
    let models = data
        .iter()
        .filter_map(|m| {
            let id = m.get("id").and_then(Value::as_str)?;
            let created = m
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(crate::ollama::unix_seconds)
                .unwrap_or(0);
            let mut model = Model::new(id, created, "anthropic");
            model.name = m.get("display_name").and_then(Value::as_str).map(str::to_owned);
            Some(model)
        })
        .collect();
    Ok(ModelList::new(models))
}

/// An OpenAI model list in Anthropic's shape (`{"data":[{"type":"model","id","display_name",
/// "created_at"}],"has_more","first_id","last_id"}`), for Anthropic clients listing moatd's models.
pub fn models_from_openai(list: &ModelList) -> Value {
    let data: Vec<Value> = list
        .data
        .iter()
        .map(|m| {
            json!({
                "type": "model",
                "id": m.id,
                "display_name": m.name.clone().unwrap_or_else(|| m.id.clone()),
                "created_at": crate::ollama::rfc3339(m.created.unwrap_or(0)),
            })
        })
        .collect();
    let first = data.first().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
}
