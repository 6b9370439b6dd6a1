//! Ollama's native API as the emulator speaks it: `POST /api/chat` (one JSON object, or NDJSON lines
//! when streaming, which is Ollama's default), `GET /api/tags` and `GET /api/version`, with Ollama's
//! `{"error": "…"}` errors. Ollama has no API keys, so none is checked. Answers follow the OpenAI side's rules, and the
//! `emulate` directive works the same (`tool_call` answers with `message.tool_calls`).

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::completion::{count_words, estimate_tokens};
use crate::directive::Directive;
use crate::server::Shared;
use crate::stream::{self, Plan, Step};
use crate::ResponseBody;

/// Answers the request if it is one of Ollama's; `None` leaves it to the other wires.
pub(crate) async fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: &Bytes,
) -> Option<Response<ResponseBody>> {
    match (method, path.strip_suffix('/').unwrap_or(path)) {
        (&Method::GET, "/api/tags") => Some(crate::handler::json(StatusCode::OK, &tags(&shared.models))),
        (&Method::POST, "/api/chat") => Some(chat(shared, body).await),
        // What health checks probe: cheap, and answers with no model loaded.
        (&Method::GET, "/api/version") => {
            Some(crate::handler::json(StatusCode::OK, &json!({"version": "0.5.7"})))
        }
        _ => None,
    }
}

fn error(status: StatusCode, message: &str) -> Response<ResponseBody> {
    crate::handler::json(status, &json!({"error": message}))
}

/// `GET /api/tags`: every emulated model as a local tag.
fn tags(data: &Value) -> Value {
    let models: Vec<Value> = data
        .as_array()
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .map(|id| {
                    json!({
                        "name": id,
                        "model": id,
                        "modified_at": "2024-05-01T12:00:00.000000-07:00",
                        "size": 2_019_393_189u64,
                        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                        "details": {
                            "parent_model": "",
                            "format": "gguf",
                            "family": "llama",
                            "families": ["llama"],
                            "parameter_size": "3.2B",
                            "quantization_level": "Q4_K_M"
                        }
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"models": models})
}

/// RFC 3339 for a Unix time, as Ollama writes `created_at` (microseconds, always zero here).
fn rfc3339(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

async fn chat(shared: &Shared, body: &Bytes) -> Response<ResponseBody> {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid character looking for beginning of value",
            )
        }
    };
    let directive = match Directive::from_request(&request) {
        Ok(d) => d,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let Some(model) = request
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return error(StatusCode::BAD_REQUEST, "model is required");
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "messages is required");
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
                .unwrap_or_else(|| format!("Emulated error {}", failure.status.as_u16()));
            return error(failure.status, &message);
        }
    }
    let mut chars = 0;
    let mut last_user = String::new();
    for m in messages {
        let text = m.get("content").and_then(Value::as_str).unwrap_or("");
        chars += text.chars().count();
        if m.get("role").and_then(Value::as_str) == Some("user") {
            last_user = text.to_owned();
        }
    }
    let text = match (&directive.tool_call, &directive.content) {
        (Some(_), content) => content.clone().unwrap_or_default(),
        (None, Some(content)) => content.clone(),
        (None, None) => format!("You said: {last_user}"),
    };
    let mut pieces = stream::split(&text, None);
    let limit = request
        .pointer("/options/num_predict")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok());
    let truncated = limit.is_some_and(|l| pieces.len() > l);
    if let Some(l) = limit {
        pieces.truncate(l);
    }
    let created_at = rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    );
    let prompt_eval_count = estimate_tokens(chars);
    let eval_count = count_words(&pieces.concat());
    let tool_calls = directive
        .tool_call
        .as_ref()
        .map(|t| json!([{"function": {"name": t.name, "arguments": t.arguments}}]));
    let last = |content: &str| {
        let mut message = json!({"role": "assistant", "content": content});
        if let (Some(calls), false) = (&tool_calls, truncated) {
            message["tool_calls"] = calls.clone();
        }
        json!({
            "model": model,
            "created_at": created_at,
            "message": message,
            "done_reason": if truncated { "length" } else { "stop" },
            "done": true,
            "total_duration": 4_883_583_458u64,
            "load_duration": 1_334_875,
            "prompt_eval_count": prompt_eval_count,
            "prompt_eval_duration": 342_546_000,
            "eval_count": eval_count,
            "eval_duration": 4_535_599_000u64
        })
    };
    // Ollama streams unless told not to.
    if request.get("stream").and_then(Value::as_bool) == Some(false) {
        return crate::handler::json(StatusCode::OK, &last(&pieces.concat()));
    }
    let mut steps = std::collections::VecDeque::new();
    let send = |steps: &mut std::collections::VecDeque<Step>, v: Value| {
        if let (Some(delay), false) = (directive.chunk_delay, steps.is_empty()) {
            steps.push_back(Step::Wait(delay));
        }
        steps.push_back(Step::Send(Bytes::from(format!("{v}\n"))));
    };
    let mut broken = false;
    for (sent, piece) in pieces.iter().enumerate() {
        if stream::interrupt(&mut steps, &directive, sent) {
            broken = true;
            break;
        }
        if directive.error_after_chunks == Some(sent) {
            send(
                &mut steps,
                json!({"error": "an error was encountered while running the model"}),
            );
            break;
        }
        send(
            &mut steps,
            json!({"model": model, "created_at": created_at, "message": {"role": "assistant", "content": piece}, "done": false}),
        );
    }
    if !broken && directive.error_after_chunks.is_none_or(|n| n >= pieces.len()) {
        send(&mut steps, last(""));
    }
    if !broken {
        steps.push_back(Step::End);
    }
    let plan = Plan {
        steps,
        keepalive: None,
    };
    let mut response = Response::new(stream::shaped_body(plan, &directive, shared.streams.clone()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_tags() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000000Z");
        let t = tags(&json!([{"id": "llama3.2:latest"}]));
        assert_eq!(t["models"][0]["name"], "llama3.2:latest");
        assert_eq!(t["models"][0]["details"]["format"], "gguf");
    }
}
