//! Gemini answers → OpenAI: a whole `GenerateContentResponse`, errors, usage and the model list.

use moat_wire::error::ErrorBody;
use moat_wire::openai::{
    ChatCompletionResponse, ChatMessage, Choice, CompletionTokensDetails, FunctionCall, MessageContent,
    Model, ModelList, PromptTokensDetails, ToolCall, Usage,
};
use serde_json::{Map, Value};

use super::request::made_up_id;
use crate::TranslateError;

/// OpenAI usage from Gemini's `usageMetadata`. Thinking tokens are billed as output, so they count
/// as completion tokens (and are reported as reasoning tokens); tokens read from a cached context
/// are part of the prompt and reported as cached.
pub(super) fn usage_of(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount") + n("toolUsePromptTokenCount");
    let thoughts = n("thoughtsTokenCount");
    let mut usage = Usage::new(prompt, n("candidatesTokenCount") + thoughts);
    if let Some(cached) = meta.get("cachedContentTokenCount").and_then(Value::as_u64) {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(cached),
            ..PromptTokensDetails::default()
        });
    }
    if thoughts > 0 {
        usage.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: Some(thoughts),
            ..CompletionTokensDetails::default()
        });
    }
    usage
}

/// What one candidate's parts say: answer text, thought text and function calls.
#[derive(Debug, Default)]
pub(super) struct Parts {
    pub text: String,
    pub reasoning: String,
    /// (id from Gemini, if any; name; arguments as JSON text)
    pub calls: Vec<(Option<String>, String, String)>,
}

pub(super) fn read_parts(content: &Value) -> Parts {
    let mut out = Parts::default();
    for part in content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(fc) = part.get("functionCall") {
            out.calls.push((
                fc.get("id").and_then(Value::as_str).map(str::to_owned),
                fc.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
                fc.get("args").map_or_else(|| "{}".to_owned(), Value::to_string),
            ));
        } else if let Some(t) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(t);
            } else {
                out.text.push_str(t);
            }
        }
    }
    out
}

/// A whole Gemini answer as an OpenAI `chat.completion`. `id` and `created` stand in when the answer
/// carries no `responseId` or `createTime`; `model` when it has no `modelVersion`. A prompt Gemini
/// blocked (`promptFeedback.blockReason`, no candidates) is an empty answer with `finish_reason:
/// "content_filter"`, as OpenAI reports filtered output.
pub fn to_chat_response(
    body: &[u8],
    id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, TranslateError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        TranslateError::InvalidResponse(format!("provider sent a malformed Gemini answer: {e}"))
    })?;
    let candidates = v.get("candidates").and_then(Value::as_array);
    let mut choices = Vec::new();
    let mut call_number = 0;
    for (i, c) in candidates.into_iter().flatten().enumerate() {
        let parts = read_parts(c.get("content").unwrap_or(&Value::Null));
        let calls: Vec<ToolCall> = parts
            .calls
            .into_iter()
            .map(|(cid, name, arguments)| {
                let id = cid.unwrap_or_else(|| made_up_id(call_number));
                call_number += 1;
                ToolCall {
                    id,
                    r#type: "function".into(),
                    function: FunctionCall {
                        name,
                        arguments,
                        extra: Map::new(),
                    },
                    extra: Map::new(),
                }
            })
            .collect();
        let reason = c.get("finishReason").and_then(Value::as_str).unwrap_or("STOP");
        let index = c
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(i as u32);
        choices.push(Choice {
            index,
            finish_reason: Some(super::finish_reason(reason, !calls.is_empty()).to_owned()),
            message: ChatMessage {
                role: "assistant".into(),
                content: (!parts.text.is_empty() || calls.is_empty())
                    .then_some(MessageContent::Text(parts.text)),
                tool_calls: (!calls.is_empty()).then_some(calls),
                reasoning: (!parts.reasoning.is_empty()).then_some(parts.reasoning),
                ..ChatMessage::default()
            },
            ..Choice::default()
        });
    }
    if choices.is_empty() {
        // No candidates: the prompt was blocked (or the model said nothing at all).
        let blocked = v.pointer("/promptFeedback/blockReason").is_some();
        choices.push(Choice {
            index: 0,
            finish_reason: Some(if blocked { "content_filter" } else { "stop" }.to_owned()),
            message: ChatMessage {
                role: "assistant".into(),
                content: Some(MessageContent::Text(String::new())),
                ..ChatMessage::default()
            },
            ..Choice::default()
        });
    }
    let str_at = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    Ok(ChatCompletionResponse {
        id: str_at("responseId").map_or_else(|| id.to_owned(), |r| format!("chatcmpl-{r}")),
        object: "chat.completion".into(),
        created: str_at("createTime")
            .and_then(crate::unix_seconds)
            .unwrap_or(created),
        model: str_at("modelVersion").unwrap_or(model).to_owned(),
        choices,
        usage: Some(usage_of(v.get("usageMetadata").unwrap_or(&Value::Null))),
        ..ChatCompletionResponse::default()
    })
}

/// The status, message and Google status name of a Gemini error body (`{"error":{…}}`, or that in a
/// one-element array as some endpoints send it).
pub(super) fn read_error(body: &[u8]) -> Option<(Option<u16>, String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error").or_else(|| v.get(0)?.get("error"))?;
    Some((
        e.get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok()),
        e.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
        e.get("status").and_then(Value::as_str).unwrap_or("").to_owned(),
    ))
}

/// OpenAI's error type and code for a Google status name (`INVALID_ARGUMENT`, …) and message.
pub(super) fn openai_kind(status: &str, message: &str) -> (&'static str, &'static str) {
    let lower = message.to_ascii_lowercase();
    if status == "INVALID_ARGUMENT"
        && (lower.contains("exceeds the maximum number of tokens") || lower.contains("input token count"))
    {
        return ("invalid_request_error", "context_length_exceeded");
    }
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            ("invalid_request_error", "invalid_request")
        }
        "UNAUTHENTICATED" => ("authentication_error", "invalid_api_key"),
        "PERMISSION_DENIED" => ("permission_error", "permission_denied"),
        "NOT_FOUND" => ("invalid_request_error", "model_not_found"),
        "RESOURCE_EXHAUSTED" => ("rate_limit_error", "rate_limit_exceeded"),
        "DEADLINE_EXCEEDED" => ("server_error", "timeout"),
        _ => ("server_error", "upstream_error"),
    }
}

/// A Gemini error answer as an OpenAI error body; the HTTP status stays. A prompt longer than the
/// model's context gets OpenAI's `context_length_exceeded` code, so clients (and moatd's
/// context-window fallback) recognise it.
pub fn error_to_openai(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let (message, google_status) = match read_error(body) {
        Some((_, m, s)) if !m.is_empty() => (m, s),
        Some((_, _, s)) => (format!("provider answered {status}"), s),
        None => (format!("provider answered {status}"), String::new()),
    };
    let google_status = if google_status.is_empty() {
        match status {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            _ => "",
        }
        .to_owned()
    } else {
        google_status
    };
    let (kind, code) = openai_kind(&google_status, &message);
    (status, ErrorBody::new(message, kind, Some(code)).to_json_bytes())
}

/// Gemini's `GET /models` (`{"models":[{"name":"models/…","displayName","inputTokenLimit",
/// "supportedGenerationMethods"}]}`) as an OpenAI list: models that can `generateContent`, ids
/// without the `models/` prefix, context windows as `context_length`.
pub fn models_to_openai(body: &[u8]) -> Result<ModelList, TranslateError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::InvalidResponse(format!("malformed model list: {e}")))?;
    let models = v
        .get("models")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::InvalidResponse("model list has no `models` array".into()))?;
    let data = models
        .iter()
        .filter(|m| {
            m.get("supportedGenerationMethods")
                .and_then(Value::as_array)
                .is_none_or(|methods| methods.iter().any(|x| x == "generateContent"))
        })
        .filter_map(|m| {
            let name = m.get("name").and_then(Value::as_str)?;
            let id = name.strip_prefix("models/").unwrap_or(name);
            let mut model = Model::new(id, 0, "google");
            model.name = m.get("displayName").and_then(Value::as_str).map(str::to_owned);
            model.context_length = m.get("inputTokenLimit").and_then(Value::as_u64);
            Some(model)
        })
        .collect();
    Ok(ModelList::new(data))
}
