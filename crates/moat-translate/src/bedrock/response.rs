//! Bedrock Converse answers → OpenAI: a whole `Converse` answer, usage and errors.

use moat_wire::error::ErrorBody;
use moat_wire::openai::{
    ChatCompletionResponse, ChatMessage, Choice, FunctionCall, MessageContent, PromptTokensDetails, ToolCall,
    Usage,
};
use serde_json::{Map, Value};

use crate::TranslateError;

/// OpenAI usage from Converse's `usage`. Like Anthropic's, Bedrock's `inputTokens` leaves out
/// tokens read from or written to the prompt cache, so they are added back into the prompt.
pub(super) fn usage_of(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cache_read = n("cacheReadInputTokens");
    let prompt = n("inputTokens") + cache_read + n("cacheWriteInputTokens");
    let mut usage = Usage::new(prompt, n("outputTokens"));
    if cache_read > 0 {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(cache_read),
            ..PromptTokensDetails::default()
        });
    }
    usage
}

/// A whole Converse answer as an OpenAI `chat.completion`. Converse answers carry no id, model or
/// time, so the caller gives them.
pub fn to_chat_response(
    body: &[u8],
    id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, TranslateError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        TranslateError::InvalidResponse(format!("provider sent a malformed Converse answer: {e}"))
    })?;
    let content = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::InvalidResponse("Converse answer has no output.message".into()))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            calls.push(ToolCall {
                id: tu
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                r#type: "function".into(),
                function: FunctionCall {
                    name: tu.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
                    arguments: tu.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                    extra: Map::new(),
                },
                extra: Map::new(),
            });
        } else if let Some(t) = block
            .pointer("/reasoningContent/reasoningText/text")
            .and_then(Value::as_str)
        {
            reasoning.push_str(t);
        }
    }
    let stop = v.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
    Ok(ChatCompletionResponse {
        id: id.to_owned(),
        object: "chat.completion".into(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ChatMessage {
                role: "assistant".into(),
                content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
                tool_calls: (!calls.is_empty()).then_some(calls),
                reasoning: (!reasoning.is_empty()).then_some(reasoning),
                ..ChatMessage::default()
            },
            finish_reason: Some(super::finish_reason(stop).to_owned()),
            ..Choice::default()
        }],
        usage: Some(usage_of(v.get("usage").unwrap_or(&Value::Null))),
        ..ChatCompletionResponse::default()
    })
}

/// OpenAI's error type and code for a Bedrock exception name (`ValidationException`, …, as in the
/// `x-amzn-ErrorType` header, the body's `__type`, or a stream's `:exception-type`) and message.
pub(super) fn openai_kind(exception: &str, status: u16, message: &str) -> (&'static str, &'static str) {
    let lower = message.to_ascii_lowercase();
    let exception = exception.to_ascii_lowercase();
    let is = |name: &str| exception.contains(name);
    if (is("validation") || status == 400)
        && [
            "input is too long",
            "too many input tokens",
            "prompt is too long",
            "context window",
        ]
        .iter()
        .any(|p| lower.contains(p))
    {
        return ("invalid_request_error", "context_length_exceeded");
    }
    if is("throttling") || status == 429 {
        ("rate_limit_error", "rate_limit_exceeded")
    } else if is("accessdenied") || status == 403 {
        ("permission_error", "permission_denied")
    } else if is("unrecognizedclient") || is("signature") || status == 401 {
        ("authentication_error", "invalid_api_key")
    } else if is("resourcenotfound") || status == 404 {
        ("invalid_request_error", "model_not_found")
    } else if is("validation") || status == 400 {
        ("invalid_request_error", "invalid_request")
    } else if is("timeout") || status == 408 {
        ("server_error", "timeout")
    } else {
        ("server_error", "upstream_error")
    }
}

/// A Bedrock error answer (`{"message": "…"}`, the exception name in `x-amzn-ErrorType` or the
/// body's `__type`) as an OpenAI error body. `exception` is that header's value when the caller has
/// it. Bedrock's 424 (the model itself failed) becomes 502, which OpenAI clients know as an
/// upstream failure. A prompt longer than the model's context gets `context_length_exceeded`.
pub fn error_to_openai(status: u16, exception: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map_or_else(|| format!("provider answered {status}"), str::to_owned);
    // `x-amzn-ErrorType: ValidationException:http://internal.amazon.com/...`
    let exception = exception
        .or_else(|| v.get("__type").and_then(Value::as_str))
        .map(|e| e.split(':').next().unwrap_or(e).rsplit('#').next().unwrap_or(e))
        .unwrap_or("");
    let (kind, code) = openai_kind(exception, status, &message);
    let status = if status == 424 { 502 } else { status };
    (status, ErrorBody::new(message, kind, Some(code)).to_json_bytes())
}
