//! Anthropic's Messages API as the emulator speaks it: `POST /v1/messages` (whole and streamed),
//! `POST /v1/messages/count_tokens`, and
//! `GET /v1/models` when the request carries `anthropic-version`, with Anthropic's headers
//! (`x-api-key` or, as recent SDKs send it, `Authorization: Bearer`; `anthropic-version`) checked and its error shape
//! (`{"type":"error","error":{"type","message"}}`). Answers follow the same rules as the OpenAI side
//! (an echo of the last user turn, or the `emulate.content` text), and the `emulate` directive works
//! the same, with `tool_call` answering with a `tool_use` block.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::completion::{count_words, estimate_tokens};
use crate::directive::Directive;
use crate::server::Shared;
use crate::stream::{self, Plan, Step};
use crate::ResponseBody;

/// Answers the request if it is one of Anthropic's; `None` leaves it to the OpenAI side.
pub(crate) async fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response<ResponseBody>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let is_messages = method == Method::POST && path == "/v1/messages";
    let is_count = method == Method::POST && path == "/v1/messages/count_tokens";
    let is_models =
        method == Method::GET && path == "/v1/models" && headers.contains_key("anthropic-version");
    if !is_messages && !is_models && !is_count {
        return None;
    }
    if let Some(refusal) = check_headers(shared, headers) {
        return Some(refusal);
    }
    if is_models {
        return Some(crate::handler::json(StatusCode::OK, &models(&shared.models)));
    }
    if is_count {
        return Some(count_tokens(body));
    }
    Some(messages(shared, body).await)
}

/// `POST /v1/messages/count_tokens`: the same token estimate the answers' usage reports, over every
/// text of the request (system, messages, tools).
fn count_tokens(body: &Bytes) -> Response<ResponseBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "the request body is not JSON");
    };
    if request.get("model").and_then(Value::as_str).is_none() {
        return error(StatusCode::BAD_REQUEST, "model: Field required");
    }
    let mut text = String::new();
    fn collect(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => out.push_str(s),
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(map) => map.values().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
    for member in ["system", "messages", "tools"] {
        if let Some(v) = request.get(member) {
            collect(v, &mut text);
        }
    }
    let tokens = estimate_tokens(text.chars().count());
    crate::handler::json(StatusCode::OK, &json!({"input_tokens": tokens}))
}

fn check_headers(shared: &Shared, headers: &HeaderMap) -> Option<Response<ResponseBody>> {
    if let Some(key) = &shared.api_key {
        // `x-api-key` is the documented header; recent official SDKs send `Authorization: Bearer`.
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let presented =
            header("x-api-key").or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")));
        if presented != Some(key.as_str()) {
            return Some(error(StatusCode::UNAUTHORIZED, "invalid x-api-key"));
        }
    }
    if !headers.contains_key("anthropic-version") {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "anthropic-version: header is required",
        ));
    }
    None
}

/// Anthropic's error type for a status, as its API documents them.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let body = json!({"type": "error", "error": {"type": error_type(status), "message": message}});
    crate::handler::json(status, &body)
}

/// `GET /v1/models` in Anthropic's paginated shape.
fn models(data: &Value) -> Value {
    let list: Vec<Value> = data
        .as_array()
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .map(|id| {
                    json!({"type": "model", "id": id, "display_name": format!("Emulated {id}"), "created_at": "2025-02-19T00:00:00Z"})
                })
                .collect()
        })
        .unwrap_or_default();
    let first = list.first().and_then(|m| m.get("id")).cloned();
    let last = list.last().and_then(|m| m.get("id")).cloned();
    json!({"data": list, "has_more": false, "first_id": first, "last_id": last})
}

/// What the emulator read from a Messages request.
#[derive(Debug, Clone, PartialEq)]
struct Ask {
    model: String,
    max_tokens: u64,
    stream: bool,
    /// The text of the last user turn, tool results included.
    last_text: String,
    input_tokens: u64,
}

fn text_of(content: &Value) -> (String, usize) {
    match content {
        Value::String(s) => (s.clone(), s.chars().count()),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => texts.extend(b.get("text").and_then(Value::as_str).map(str::to_owned)),
                    Some("tool_result") => texts.push(text_of(b.get("content").unwrap_or(&Value::Null)).0),
                    _ => {}
                }
            }
            let joined = texts.join(" ");
            let n = joined.chars().count();
            (joined, n)
        }
        _ => (String::new(), 0),
    }
}

fn read(body: &Value) -> Result<Ask, String> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or("model: Field required")?;
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or("max_tokens: Field required")?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages: at least one message is required")?;
    let mut chars = body.get("system").map_or(0, |s| text_of(s).1);
    let mut last_text = String::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        let content = m
            .get("content")
            .filter(|c| c.is_string() || c.is_array())
            .ok_or_else(|| format!("messages.{i}.content: Field required"))?;
        let (text, n) = text_of(content);
        chars += n;
        if role == "user" {
            last_text = text;
        }
    }
    Ok(Ask {
        model: model.to_owned(),
        max_tokens,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        last_text,
        input_tokens: estimate_tokens(chars),
    })
}

async fn messages(shared: &Shared, body: &Bytes) -> Response<ResponseBody> {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(StatusCode::BAD_REQUEST, "The request body is not valid JSON."),
    };
    let directive = match Directive::from_request(&request) {
        Ok(d) => d,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let ask = match read(&request) {
        Ok(a) => a,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    if let Some(delay) = directive.first_byte_delay {
        tokio::time::sleep(delay).await;
    }
    if directive.hang {
        // Dropped with its connection, or with the server on shutdown.
        std::future::pending::<()>().await;
    }
    if let Some(failure) = &directive.failure {
        if shared.should_fail(&directive.key, failure.times) {
            let message = failure
                .message
                .clone()
                .unwrap_or_else(|| match failure.status.as_u16() {
                    529 => "Overloaded".to_owned(),
                    s => format!("Emulated error {s}"),
                });
            let mut response = error(failure.status, &message);
            if let Some(seconds) = failure.retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            return response;
        }
    }
    let answer = Answer::new(shared, &ask, &directive);
    if !ask.stream {
        return crate::handler::json(StatusCode::OK, &answer.whole());
    }
    let plan = answer.plan(&directive);
    let mut response = Response::new(stream::shaped_body(plan, &directive, shared.streams.clone()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One answer, whole or streamed.
struct Answer {
    id: String,
    model: String,
    /// The text pieces sent (one per word), already cut to `max_tokens`.
    pieces: Vec<String>,
    truncated: bool,
    tool: Option<(String, String, Value)>,
    input_tokens: u64,
}

impl Answer {
    fn new(shared: &Shared, ask: &Ask, directive: &Directive) -> Answer {
        let text = match (&directive.tool_call, &directive.content) {
            (Some(_), content) => content.clone().unwrap_or_default(),
            (None, Some(content)) => content.clone(),
            (None, None) => format!("You said: {}", ask.last_text),
        };
        let mut pieces = stream::split(&text, None);
        let limit = usize::try_from(ask.max_tokens).unwrap_or(usize::MAX);
        let truncated = pieces.len() > limit;
        pieces.truncate(limit);
        let n = shared.next_id();
        Answer {
            id: format!("msg_emu_{n}"),
            model: ask.model.clone(),
            pieces,
            truncated,
            tool: directive
                .tool_call
                .as_ref()
                .filter(|_| !truncated)
                .map(|t| (format!("toolu_emu_{n}"), t.name.clone(), t.arguments.clone())),
            input_tokens: ask.input_tokens,
        }
    }

    fn text(&self) -> String {
        self.pieces.concat()
    }

    fn stop_reason(&self) -> &'static str {
        if self.truncated {
            "max_tokens"
        } else if self.tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
    }

    fn output_tokens(&self) -> u64 {
        count_words(&self.text()) + u64::from(self.tool.is_some()) * 8
    }

    fn whole(&self) -> Value {
        let mut content = Vec::new();
        if !self.pieces.is_empty() {
            content.push(json!({"type": "text", "text": self.text()}));
        }
        if let Some((id, name, input)) = &self.tool {
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason(),
            "stop_sequence": null,
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": self.output_tokens()
            }
        })
    }

    /// The stream, event by event, in the documented order.
    fn plan(&self, directive: &Directive) -> Plan {
        let mut steps = std::collections::VecDeque::new();
        let send = |steps: &mut std::collections::VecDeque<Step>, name: &str, data: Value| {
            if let (Some(delay), false) = (directive.chunk_delay, steps.is_empty()) {
                steps.push_back(Step::Wait(delay));
            }
            steps.push_back(Step::Send(Bytes::from(format!(
                "event: {name}\ndata: {data}\n\n"
            ))));
        };
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
        });
        send(
            &mut steps,
            "message_start",
            json!({"type": "message_start", "message": message}),
        );
        let mut index = 0;
        if !self.pieces.is_empty() {
            send(
                &mut steps,
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
            );
            send(&mut steps, "ping", json!({"type": "ping"}));
            for (sent, piece) in self.pieces.iter().enumerate() {
                if stream::interrupt(&mut steps, directive, sent) {
                    return Plan {
                        steps,
                        keepalive: None,
                    };
                }
                if directive.error_after_chunks == Some(sent) {
                    send(
                        &mut steps,
                        "error",
                        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                    );
                    steps.push_back(Step::End);
                    return Plan {
                        steps,
                        keepalive: None,
                    };
                }
                send(
                    &mut steps,
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
                );
            }
            send(
                &mut steps,
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            );
            index += 1;
        }
        if let Some((id, name, input)) = &self.tool {
            send(
                &mut steps,
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            );
            let args = input.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            for part in ["", a, b] {
                send(
                    &mut steps,
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}}),
                );
            }
            send(
                &mut steps,
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            );
        }
        send(
            &mut steps,
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": self.stop_reason(), "stop_sequence": null}, "usage": {"output_tokens": self.output_tokens()}}),
        );
        send(&mut steps, "message_stop", json!({"type": "message_stop"}));
        steps.push_back(Step::End);
        Plan {
            steps,
            keepalive: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_and_refuses_what_anthropic_refuses() {
        let ask = read(&json!({"model": "claude", "max_tokens": 10, "system": "sys", "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "rain"}, {"type": "text", "text": "ok?"}]}
        ]}))
        .unwrap();
        assert_eq!(ask.last_text, "rain ok?");
        assert_eq!(ask.max_tokens, 10);
        assert_eq!(
            read(&json!({"model": "c", "messages": [{"role": "user", "content": "x"}]})).unwrap_err(),
            "max_tokens: Field required"
        );
        assert!(read(
            &json!({"model": "c", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]})
        )
        .is_err());
        assert!(read(&json!({"model": "c", "max_tokens": 1, "messages": []})).is_err());
    }

    #[test]
    fn model_list_is_anthropics_shape() {
        let m = models(&json!([{"id": "claude-a"}, {"id": "claude-b"}]));
        assert_eq!(m["data"][0]["type"], "model");
        assert_eq!(m["first_id"], "claude-a");
        assert_eq!(m["last_id"], "claude-b");
        assert_eq!(m["has_more"], false);
    }
}
