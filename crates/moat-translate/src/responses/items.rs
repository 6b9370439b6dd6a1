//! Responses items: their ids, the output items a chat answer becomes, and the chat messages a list of
//! input items becomes.

use moat_wire::openai::{ChatMessage, ContentPart, FunctionCall, ImageUrl, MessageContent, ToolCall};
use serde_json::{json, Map, Value};

use crate::TranslateError;

/// Item ids for one response, derived from its id so they are unique without a source of randomness
/// here: `resp_abc` gives `msg_abc_0`, `fc_abc_1`, `rs_abc_2`, …
#[derive(Debug, Clone, Default)]
pub struct ItemIds {
    base: String,
    next: u32,
}

impl ItemIds {
    /// Ids under the response id `response_id` (its `resp_` prefix is dropped).
    pub fn new(response_id: &str) -> Self {
        let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
        ItemIds {
            base: base.to_owned(),
            next: 0,
        }
    }

    /// The next id with `prefix` (`msg`, `fc`, `rs`).
    pub fn next(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}_{}_{}", self.base, self.next);
        self.next += 1;
        id
    }
}

pub(crate) fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(crate) fn message_item(id: &str, content: Vec<Value>, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

pub(crate) fn function_call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
}

pub(crate) fn reasoning_item(id: &str, text: &str) -> Value {
    let content = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "reasoning_text", "text": text}])
    };
    json!({"type": "reasoning", "id": id, "summary": [], "content": content, "status": "completed"})
}

fn kind(item: &Value) -> &str {
    match item.get("type").and_then(Value::as_str) {
        Some(t) => t,
        // An "easy input message" has a role and no type.
        None if item.get("role").is_some() => "message",
        None => "",
    }
}

fn text_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// The input as items, each with an id (kept when the client gave one), in the form OpenAI lists
/// them: messages with typed content parts.
pub(crate) fn normalize(items: Vec<Value>, ids: &mut ItemIds) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, mut item) in items.into_iter().enumerate() {
        let Value::Object(map) = &mut item else {
            return Err(TranslateError::InvalidRequest(format!(
                "input[{i}]: each input item must be an object"
            )));
        };
        let t = match map.get("type").and_then(Value::as_str) {
            Some(t) => t.to_owned(),
            None if map.contains_key("role") => "message".to_owned(),
            None => {
                return Err(TranslateError::InvalidRequest(format!(
                    "input[{i}]: an input item needs a `type` (or a `role` for a message)"
                )))
            }
        };
        map.insert("type".into(), Value::String(t.clone()));
        if t == "message" {
            if let Some(Value::String(text)) = map.get("content") {
                let part_type = match map.get("role").and_then(Value::as_str) {
                    Some("assistant") => "output_text",
                    _ => "input_text",
                };
                let part = json!([{"type": part_type, "text": text}]);
                map.insert("content".into(), part);
            }
        }
        if t != "item_reference" && !map.contains_key("id") {
            let prefix = match t.as_str() {
                "message" => "msg",
                "function_call" => "fc",
                "function_call_output" => "fco",
                "reasoning" => "rs",
                _ => "item",
            };
            map.insert("id".into(), Value::String(ids.next(prefix)));
        }
        out.push(item);
    }
    Ok(out)
}

/// Resolves each `item_reference` against `history`: an item the replayed conversation already holds
/// is not repeated (so a client that references its previous turn's items and also continues it by
/// `previous_response_id` sends each item once). A reference to anything else is refused.
pub(crate) fn resolve_references(items: Vec<Value>, history: &[Value]) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if kind(&item) != "item_reference" {
            out.push(item);
            continue;
        }
        let id = text_of(item.get("id"));
        if !history
            .iter()
            .any(|h| h.get("id").and_then(Value::as_str) == Some(id))
        {
            return Err(TranslateError::InvalidRequest(format!(
                "input: item_reference `{id}` names no item of the conversation continued by previous_response_id"
            )));
        }
    }
    Ok(out)
}

/// The chat messages for a conversation's items, in order.
pub(crate) fn to_messages(items: &[Value], out: &mut Vec<ChatMessage>) -> Result<(), TranslateError> {
    for (i, item) in items.iter().enumerate() {
        match kind(item) {
            "message" => out.push(message(i, item)?),
            "function_call" => function_call(item, out),
            "function_call_output" => out.push(ChatMessage {
                role: "tool".into(),
                content: Some(MessageContent::Text(output_text(item.get("output")))),
                tool_call_id: Some(text_of(item.get("call_id")).to_owned()),
                ..ChatMessage::default()
            }),
            // Reasoning belongs to the model that made it; chat providers take none back.
            "reasoning" => {}
            other => {
                return Err(TranslateError::InvalidRequest(format!(
                    "input[{i}]: item type `{other}` has no chat-completions form; only messages, function calls and their outputs are bridged (mark a provider `responses = \"native\"` to relay it)"
                )))
            }
        }
    }
    Ok(())
}

/// A tool result's text: a string, or the text parts of a list.
fn output_text(output: Option<&Value>) -> String {
    match output {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Appends a function call to the assistant message just before it, or starts one.
fn function_call(item: &Value, out: &mut Vec<ChatMessage>) {
    let call = ToolCall {
        id: text_of(item.get("call_id")).to_owned(),
        r#type: "function".into(),
        function: FunctionCall {
            name: text_of(item.get("name")).to_owned(),
            arguments: text_of(item.get("arguments")).to_owned(),
            extra: Map::new(),
        },
        extra: Map::new(),
    };
    match out.last_mut() {
        Some(last) if last.role == "assistant" => last.tool_calls.get_or_insert_with(Vec::new).push(call),
        _ => out.push(ChatMessage {
            role: "assistant".into(),
            tool_calls: Some(vec![call]),
            ..ChatMessage::default()
        }),
    }
}

fn message(i: usize, item: &Value) -> Result<ChatMessage, TranslateError> {
    let role = match text_of(item.get("role")) {
        // `developer` is OpenAI's newer name for `system`; chat servers beyond OpenAI know only the latter.
        "developer" | "system" => "system",
        "user" => "user",
        "assistant" => "assistant",
        other => {
            return Err(TranslateError::InvalidRequest(format!(
                "input[{i}]: role `{other}`: use user, assistant, system or developer"
            )))
        }
    };
    let mut parts = Vec::new();
    let mut refusal = None;
    match item.get("content") {
        Some(Value::String(s)) => parts.push(ContentPart::text(s.clone())),
        Some(Value::Array(list)) => {
            for p in list {
                content_part(i, p, &mut parts, &mut refusal)?;
            }
        }
        _ => {}
    }
    let all_text = parts.iter().all(|p| p.r#type == "text");
    let content = if all_text {
        let text: Vec<&str> = parts.iter().filter_map(|p| p.text.as_deref()).collect();
        (!text.is_empty() || refusal.is_none()).then(|| MessageContent::Text(text.join("\n")))
    } else {
        Some(MessageContent::Parts(parts))
    };
    Ok(ChatMessage {
        role: role.into(),
        content,
        refusal,
        ..ChatMessage::default()
    })
}

fn content_part(
    i: usize,
    p: &Value,
    parts: &mut Vec<ContentPart>,
    refusal: &mut Option<String>,
) -> Result<(), TranslateError> {
    let refused = |what: &str| {
        TranslateError::InvalidRequest(format!(
            "input[{i}]: {what} cannot be bridged to a chat-completions provider (send the data inline)"
        ))
    };
    match text_of(p.get("type")) {
        "input_text" | "output_text" | "text" => parts.push(ContentPart::text(text_of(p.get("text")))),
        "refusal" => *refusal = Some(text_of(p.get("refusal")).to_owned()),
        "input_image" => {
            let url = p
                .get("image_url")
                .and_then(Value::as_str)
                .ok_or_else(|| refused("an input_image by file_id"))?;
            parts.push(ContentPart {
                r#type: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: url.to_owned(),
                    detail: p.get("detail").and_then(Value::as_str).map(str::to_owned),
                    extra: Map::new(),
                }),
                ..ContentPart::default()
            });
        }
        "input_file" => {
            let data = p
                .get("file_data")
                .and_then(Value::as_str)
                .ok_or_else(|| refused("an input_file by file_id or file_url"))?;
            let mut file = Map::new();
            file.insert("file_data".into(), Value::String(data.to_owned()));
            if let Some(name) = p.get("filename").and_then(Value::as_str) {
                file.insert("filename".into(), Value::String(name.to_owned()));
            }
            let mut extra = Map::new();
            extra.insert("file".into(), Value::Object(file));
            parts.push(ContentPart {
                r#type: "file".into(),
                extra,
                ..ContentPart::default()
            });
        }
        "input_audio" => {
            let mut extra = Map::new();
            extra.insert(
                "input_audio".into(),
                p.get("input_audio").cloned().unwrap_or(Value::Null),
            );
            parts.push(ContentPart {
                r#type: "input_audio".into(),
                extra,
                ..ContentPart::default()
            });
        }
        other => return Err(refused(&format!("a content part of type `{other}`"))),
    }
    Ok(())
}
