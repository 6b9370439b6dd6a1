//! A Responses request, plus the conversation it continues, as an OpenAI chat request.

use moat_wire::openai::{
    ChatCompletionRequest, ChatMessage, FunctionDefinition, ProviderPreferences, StreamOptions, Tool,
};
use serde_json::{json, Map, Value};

use super::items::{normalize, resolve_references, to_messages, ItemIds};
use super::types::{Input, ResponsesRequest};
use crate::TranslateError;

/// What one Responses request becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Bridged {
    /// The chat request that goes through admission and to the provider: instructions, the replayed
    /// conversation and the new input, all of it (so all of it is privacy-scanned and reserved).
    pub chat: ChatCompletionRequest,
    /// The conversation's input items, replayed history first, each with an id: what the stored turn
    /// keeps (and the next turn replays, followed by this turn's output).
    pub input_items: Vec<Value>,
}

/// Members with no chat form whose silent loss would change the contract. (`include` and
/// `max_tool_calls` only ask for detail or limit built-in tools; the bridge has neither, so they are
/// ignored.)
const REFUSED: [(&str, &str); 2] = [
    (
        "conversation",
        "the Conversations API is not bridged; continue with previous_response_id",
    ),
    (
        "prompt",
        "stored prompt templates live at OpenAI; send the prompt itself",
    ),
];

/// Responses members with no chat meaning, never forwarded to a chat provider.
const RESPONSES_ONLY: [&str; 12] = [
    "background",
    "conversation",
    "include",
    "max_tool_calls",
    "prompt",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "stream_options",
    "top_logprobs",
    "truncation",
    "provider",
];

fn bad(message: impl Into<String>) -> TranslateError {
    TranslateError::InvalidRequest(message.into())
}

/// Puts the conversation `previous_response_id` continues (`history`: the stored turn's input and
/// output items) in front of the request's own input, with `item_reference`s resolved against it, so
/// that the request itself carries everything the model will read: whatever admits the request (the
/// privacy scan, the budget reservation) then sees the replayed turns as part of it.
pub fn inline_history(
    req: &mut ResponsesRequest,
    history: Vec<Value>,
    ids: &mut ItemIds,
) -> Result<(), TranslateError> {
    let new_items = match req.input.take() {
        Some(Input::Text(text)) => vec![json!({"type": "message", "role": "user", "content": text})],
        Some(Input::Items(items)) => items,
        None => Vec::new(),
    };
    let new_items = resolve_references(normalize(new_items, ids)?, &history)?;
    let mut items = history;
    items.extend(new_items);
    req.input = Some(Input::Items(items));
    Ok(())
}

/// The chat request for `req`, continuing `history` (the stored conversation's input and output items,
/// empty for a first turn). `ids` names the input items that came without an id.
pub fn to_chat_request(
    req: &ResponsesRequest,
    history: &[Value],
    ids: &mut ItemIds,
) -> Result<Bridged, TranslateError> {
    check_refused(req)?;
    let new_items = match &req.input {
        Some(Input::Text(text)) => vec![json!({"type": "message", "role": "user", "content": text})],
        Some(Input::Items(items)) => items.clone(),
        None if history.is_empty() => return Err(bad("input: Field required")),
        None => Vec::new(),
    };
    let new_items = resolve_references(normalize(new_items, ids)?, history)?;
    let mut input_items = history.to_vec();
    input_items.extend(new_items);

    let mut messages = Vec::with_capacity(input_items.len() + 1);
    match &req.instructions {
        Some(Value::String(text)) if !text.is_empty() => messages.push(ChatMessage::system(text.clone())),
        Some(Value::Array(items)) => to_messages(&normalize(items.clone(), ids)?, &mut messages)?,
        Some(Value::Null | Value::String(_)) | None => {}
        Some(_) => return Err(bad("instructions: must be a string or a list of input items")),
    }
    to_messages(&input_items, &mut messages)?;

    let stream = req.is_stream();
    let reasoning_effort = match &req.reasoning {
        Some(r) => r.get("effort").and_then(Value::as_str).map(str::to_owned),
        None => None,
    };
    let provider: Option<ProviderPreferences> = match req.extra.get("provider") {
        Some(p) => Some(serde_json::from_value(p.clone()).map_err(|e| bad(format!("provider: {e}")))?),
        None => None,
    };
    // Members the bridge does not know pass through, as they do on chat completions; the Responses
    // API's own ones mean nothing to a chat server (and strict servers refuse them).
    let mut extra = req.extra.clone();
    for member in RESPONSES_ONLY {
        extra.remove(member);
    }
    let chat = ChatCompletionRequest {
        model: req.model.clone(),
        models: req.models.clone(),
        messages,
        stream: req.stream,
        // The Response object reports usage, streamed or not.
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        tools: tools(req.tools.as_deref())?,
        tool_choice: tool_choice(req.tool_choice.as_ref())?,
        parallel_tool_calls: req.parallel_tool_calls,
        response_format: response_format(req.text.as_ref())?,
        user: req.user.clone(),
        reasoning_effort,
        provider,
        extra,
        ..ChatCompletionRequest::default()
    };
    Ok(Bridged { chat, input_items })
}

fn check_refused(req: &ResponsesRequest) -> Result<(), TranslateError> {
    if req.extra.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(bad(
            "background: background responses are not supported; stream the response instead",
        ));
    }
    for (member, why) in REFUSED {
        if req.extra.get(member).is_some_and(|v| !v.is_null()) {
            return Err(bad(format!("{member}: {why}")));
        }
    }
    if req
        .extra
        .get("truncation")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "auto" && t != "disabled")
    {
        return Err(bad("truncation: use \"auto\" or \"disabled\""));
    }
    Ok(())
}

/// Function tools become chat tools; built-in tools (web search, file search, code interpreter,
/// computer use, MCP, …) run at OpenAI and have no chat form.
fn tools(tools: Option<&[Value]>) -> Result<Option<Vec<Tool>>, TranslateError> {
    let Some(tools) = tools else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {}
            other => {
                return Err(bad(format!(
                    "tools[{i}]: tool type `{}` runs at OpenAI and cannot be bridged to a chat-completions provider; only function tools are",
                    other.unwrap_or("(none)")
                )))
            }
        }
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("tools[{i}].name: Field required")))?;
        out.push(Tool {
            r#type: "function".into(),
            function: Some(FunctionDefinition {
                name: name.to_owned(),
                description: t.get("description").and_then(Value::as_str).map(str::to_owned),
                parameters: t.get("parameters").cloned().filter(|p| !p.is_null()),
                strict: t.get("strict").and_then(Value::as_bool),
                extra: Map::new(),
            }),
            extra: Map::new(),
        });
    }
    Ok((!out.is_empty()).then_some(out))
}

fn tool_choice(choice: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => Ok(Some(json!(s))),
        Some(c) if c.get("type").and_then(Value::as_str) == Some("function") => {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice.name: Field required"))?;
            Ok(Some(json!({"type": "function", "function": {"name": name}})))
        }
        Some(_) => Err(bad(
            "tool_choice: use \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": …}",
        )),
    }
}

/// `text.format` as chat's `response_format`.
fn response_format(text: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let Some(format) = text.and_then(|t| t.get("format")) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for member in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(member) {
                    schema.insert(member.into(), v.clone());
                }
            }
            if !schema.contains_key("name") {
                return Err(bad("text.format.name: Field required"));
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(other) => Err(bad(format!(
            "text.format.type `{other}`: use text, json_object or json_schema"
        ))),
    }
}
