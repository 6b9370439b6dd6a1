//! An Anthropic client → moatd (`POST /v1/messages`): its request becomes an OpenAI chat request that
//! goes through the same admission and routing as any other, and the OpenAI answer goes back as
//! Anthropic's.

use moat_wire::openai::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, ContentPart, FunctionCall,
    FunctionDefinition, MessageContent, Stop, StreamOptions, Tool, ToolCall,
};
use serde_json::{json, Map, Value};

use super::types::{AnthropicUsage, Content, MessagesRequest, MessagesResponse};
use crate::TranslateError;

/// A Messages request as an OpenAI chat request.
///
/// `tool_result` blocks become `tool` messages (ahead of the rest of their user turn, as OpenAI wants
/// them right after the assistant's calls); `tool_use` blocks become `tool_calls`. Streams always ask
/// for usage, because Anthropic's stream reports it. `thinking`, `service_tier`, document and other
/// block types without an OpenAI form are dropped; unknown top-level fields pass through.
pub fn to_chat_request(req: &MessagesRequest) -> Result<ChatCompletionRequest, TranslateError> {
    let max_tokens = req
        .max_tokens
        .ok_or_else(|| TranslateError::InvalidRequest("max_tokens: Field required".to_owned()))?;
    if req.model.is_empty() {
        return Err(TranslateError::InvalidRequest("model: Field required".to_owned()));
    }
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        let text = system.text();
        if !text.is_empty() {
            messages.push(ChatMessage::system(text));
        }
    }
    for m in &req.messages {
        match m.role.as_str() {
            "assistant" => messages.push(assistant_message(&m.content)),
            "user" => user_messages(&m.content, &mut messages),
            other => {
                return Err(TranslateError::InvalidRequest(format!(
                    "messages: unexpected role {other:?}; roles must be \"user\" or \"assistant\""
                )))
            }
        }
    }
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .map(|t| Tool {
                r#type: "function".into(),
                function: Some(FunctionDefinition {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: t.input_schema.clone(),
                    ..FunctionDefinition::default()
                }),
                extra: Map::new(),
            })
            .collect()
    });
    let (tool_choice, parallel_tool_calls) = tool_choice(req.tool_choice.as_ref());
    let stream = req.stream == Some(true);
    Ok(ChatCompletionRequest {
        model: Some(req.model.clone()),
        messages,
        stream: req.stream,
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: Some(max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences.clone().map(Stop::Many),
        tools,
        tool_choice,
        parallel_tool_calls,
        user: req
            .metadata
            .as_ref()
            .and_then(|m| m.get("user_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        extra: req.extra.clone(),
        ..ChatCompletionRequest::default()
    })
}

fn tool_choice(choice: Option<&Value>) -> (Option<Value>, Option<bool>) {
    let Some(choice) = choice else {
        return (None, None);
    };
    let parallel =
        (choice.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true)).then_some(false);
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).unwrap_or_default();
            json!({"type": "function", "function": {"name": name}})
        }
        _ => json!("auto"),
    };
    (Some(mapped), parallel)
}

fn block_type(b: &Value) -> &str {
    b.get("type").and_then(Value::as_str).unwrap_or("")
}

fn assistant_message(content: &Content) -> ChatMessage {
    let blocks = match content {
        Content::Text(t) => return ChatMessage::assistant(t.clone()),
        Content::Blocks(b) => b,
    };
    let text: String = blocks
        .iter()
        .filter(|b| block_type(b) == "text")
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let calls: Vec<ToolCall> = blocks
        .iter()
        .filter(|b| block_type(b) == "tool_use")
        .map(|b| ToolCall {
            id: b.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
            r#type: "function".into(),
            function: FunctionCall {
                name: b.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
                arguments: b.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                extra: Map::new(),
            },
            extra: Map::new(),
        })
        .collect();
    ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..ChatMessage::default()
    }
}

fn user_messages(content: &Content, out: &mut Vec<ChatMessage>) {
    let blocks = match content {
        Content::Text(t) => {
            out.push(ChatMessage::user(t.clone()));
            return;
        }
        Content::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    for b in blocks {
        match block_type(b) {
            "tool_result" => {
                let mut text = match b.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(items)) => Content::Blocks(items.clone()).text(),
                    _ => String::new(),
                };
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                out.push(ChatMessage {
                    role: "tool".into(),
                    content: Some(MessageContent::Text(text)),
                    tool_call_id: b.get("tool_use_id").and_then(Value::as_str).map(str::to_owned),
                    ..ChatMessage::default()
                });
            }
            "text" => {
                if let Some(t) = b.get("text").and_then(Value::as_str) {
                    parts.push(ContentPart::text(t));
                }
            }
            "image" => {
                let source = b.get("source").unwrap_or(&Value::Null);
                let s = |k: &str| source.get(k).and_then(Value::as_str).unwrap_or("");
                match s("type") {
                    "base64" => parts.push(ContentPart::image_url(format!(
                        "data:{};base64,{}",
                        s("media_type"),
                        s("data")
                    ))),
                    "url" => parts.push(ContentPart::image_url(s("url"))),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        return;
    }
    let all_text = parts.iter().all(|p| p.r#type == "text");
    let content = if all_text {
        MessageContent::Text(
            parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n\n"),
        )
    } else {
        MessageContent::Parts(parts)
    };
    out.push(ChatMessage {
        role: "user".into(),
        content: Some(content),
        ..ChatMessage::default()
    });
}

/// An OpenAI `chat.completion` as an Anthropic message. `model` is what the client asked for.
pub fn to_messages_response(resp: &ChatCompletionResponse, model: &str) -> MessagesResponse {
    let choice = resp.choices.first();
    let mut content = Vec::new();
    if let Some(message) = choice.map(|c| &c.message) {
        let text: String = message
            .content
            .as_ref()
            .map(|c| c.texts().collect())
            .unwrap_or_default();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in message.tool_calls.iter().flatten() {
            let input = serde_json::from_str::<Value>(&call.function.arguments)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            content
                .push(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}));
        }
    }
    let stop_reason = choice
        .and_then(|c| c.finish_reason.as_deref())
        .map_or("end_turn", super::stop_reason);
    MessagesResponse {
        id: message_id(&resp.id),
        r#type: "message".into(),
        role: "assistant".into(),
        content,
        model: model.to_owned(),
        stop_reason: Some(stop_reason.to_owned()),
        stop_sequence: None,
        usage: resp
            .usage
            .as_ref()
            .map(AnthropicUsage::from_openai)
            .unwrap_or_default(),
        extra: Map::new(),
    }
}

/// Anthropic ids start with `msg_`; an OpenAI id is kept inside one so logs still match.
pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else if id.is_empty() {
        "msg_moat".to_owned()
    } else {
        format!("msg_{id}")
    }
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 405 | 408 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// An Anthropic error body: `{"type":"error","error":{"type","message"}}`.
pub fn error_body(kind: &str, message: &str) -> Vec<u8> {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"type":"error","error":{"type":"api_error","message":"internal error"}}"#.to_vec()
    })
}
