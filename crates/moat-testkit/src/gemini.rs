//! Google's Gemini API as the emulator speaks it: `POST …/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse` under the Gemini API's `/v1beta` and `/v1` and under Vertex
//! AI's `/v1[beta1]/projects/{p}/locations/{l}/publishers/google`, `GET /v1beta/models`, the key as
//! `x-goog-api-key` (or `?key=`) or an OAuth bearer token issued by [`crate::cloud`], and Google's
//! error shape. Unknown request members are refused, as Gemini refuses them. Answers follow the
//! OpenAI side's rules (an echo of the last user turn, `emulate` directives set with
//! `Emulator::set_directive`, `tool_call` answering with a `functionCall` part).

use std::collections::VecDeque;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::completion::{count_words, estimate_tokens};
use crate::handler::json;
use crate::server::Shared;
use crate::stream::{self, Plan, Step};
use crate::ResponseBody;

const KNOWN_MEMBERS: [&str; 8] = [
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
    "labels",
];

/// Answers the request if it is one of Gemini's; `None` leaves it to the other wires.
pub(crate) async fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response<ResponseBody>> {
    let models = model_path(path)?;
    // `GET /v1/models` is also the OpenAI side's list: it is Gemini's only when Google's key header
    // says so.
    if path.starts_with("/v1/models") && method == Method::GET && !headers.contains_key("x-goog-api-key") {
        return None;
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !authorized(shared, headers, param("key")) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        ));
    }
    match (method, models) {
        (&Method::GET, "") => Some(list(shared)),
        (&Method::POST, rest) => {
            let (model, action) = rest.split_once(':')?;
            match action {
                "generateContent" => Some(generate(shared, model, body, false).await),
                "streamGenerateContent" if param("alt") == Some("sse") => {
                    Some(generate(shared, model, body, true).await)
                }
                "streamGenerateContent" => Some(error(
                    StatusCode::BAD_REQUEST,
                    "this emulator streams only with alt=sse",
                )),
                _ => Some(error(StatusCode::NOT_FOUND, "Method not found.")),
            }
        }
        _ => None,
    }
}

/// What follows `models` in a Gemini or Vertex path: `""` for the list, `/{model}:{action}` trimmed
/// of its slash otherwise.
fn model_path(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/v1beta/models")
        .or_else(|| path.strip_prefix("/v1/models"))
        .or_else(|| {
            let after = path
                .strip_prefix("/v1/projects/")
                .or_else(|| path.strip_prefix("/v1beta1/projects/"))?;
            let (_, models) = after.split_once("/publishers/google/models")?;
            Some(models)
        })?;
    Some(rest.strip_prefix('/').unwrap_or(rest))
}

fn authorized(shared: &Shared, headers: &HeaderMap, query_key: Option<&str>) -> bool {
    if shared.api_key.is_none() && shared.google.is_none() {
        return true;
    }
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or(query_key);
    if key.is_some() && key == shared.api_key.as_deref() {
        return true;
    }
    crate::cloud::bearer(headers).is_some_and(|t| shared.issued.bearer_valid(t))
}

fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

fn error(status: StatusCode, message: &str) -> Response<ResponseBody> {
    json(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "status": status_name(status)}}),
    )
}

fn list(shared: &Shared) -> Response<ResponseBody> {
    let models: Vec<Value> = shared
        .models
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(|id| {
            json!({"name": format!("models/{id}"), "displayName": format!("Emulated {id}"),
                   "inputTokenLimit": 32768, "outputTokenLimit": 8192,
                   "supportedGenerationMethods": ["generateContent", "countTokens"]})
        })
        .collect();
    json(StatusCode::OK, &json!({"models": models}))
}

/// The last user turn's text (function responses as their JSON) and the prompt's size in chars.
fn read(request: &Value) -> Result<(String, usize), String> {
    let obj = request.as_object().ok_or("Invalid JSON payload received.")?;
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_MEMBERS.contains(&k.as_str())) {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        ));
    }
    let contents = obj
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let text_of = |content: &Value| -> Result<String, String> {
        let parts = content
            .get("parts")
            .and_then(Value::as_array)
            .ok_or("* GenerateContentRequest.contents.parts: must not be empty")?;
        let mut texts = Vec::new();
        for p in parts {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                texts.push(t.to_owned());
            } else if let Some(fr) = p.get("functionResponse") {
                texts.push(fr.get("response").map(Value::to_string).unwrap_or_default());
            }
        }
        Ok(texts.join(" "))
    };
    let mut chars = match obj.get("systemInstruction") {
        Some(si) => text_of(si)?.chars().count(),
        None => 0,
    };
    let mut last = String::new();
    for c in contents {
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        if role != "user" && role != "model" {
            return Err(format!("Please use a valid role: user, model. Got \"{role}\"."));
        }
        let text = text_of(c)?;
        chars += text.chars().count();
        if role == "user" {
            last = text;
        }
    }
    Ok((last, chars))
}

async fn generate(shared: &Shared, model: &str, body: &Bytes, stream: bool) -> Response<ResponseBody> {
    let Some(request) = crate::cloud::object(body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON payload received.");
    };
    let (last, chars) = match read(&request) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let directive = match shared.directive_for(&Value::Null) {
        Ok(d) => d,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    if let Some(delay) = directive.first_byte_delay {
        tokio::time::sleep(delay).await;
    }
    if directive.hang {
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
    let text = match (&directive.tool_call, &directive.content) {
        (Some(_), content) => content.clone().unwrap_or_default(),
        (None, content) => crate::cloud::answer_text(&last, content.as_deref()),
    };
    let prompt_tokens = estimate_tokens(chars);
    let output_tokens = count_words(&text);
    let usage = json!({"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
                       "totalTokenCount": prompt_tokens + output_tokens});
    let id = format!("emu{}", shared.next_id());
    let call = directive
        .tool_call
        .as_ref()
        .map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments}}));
    let envelope = |parts: Vec<Value>, finish: bool, usage: Value| {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if finish {
            candidate["finishReason"] = json!("STOP");
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": id})
    };
    if !stream {
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(json!({"text": text}));
        }
        parts.extend(call);
        return json(StatusCode::OK, &envelope(parts, true, usage));
    }
    let mut steps = VecDeque::new();
    let event = |v: &Value| Bytes::from(format!("data: {v}\r\n\r\n"));
    let pieces = stream::split(&text, directive.chunks);
    let partial_usage = json!({"promptTokenCount": prompt_tokens});
    for sent in 0..=pieces.len() {
        if stream::interrupt(&mut steps, &directive, sent) {
            return streaming(steps, shared);
        }
        if directive.error_after_chunks == Some(sent) {
            // Gemini's in-band failure: an error object as the stream's last event.
            let e = json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}});
            steps.push_back(Step::Send(event(&e)));
            steps.push_back(Step::End);
            return streaming(steps, shared);
        }
        let Some(piece) = pieces.get(sent) else { break };
        if let (Some(d), true) = (directive.chunk_delay, sent > 0) {
            steps.push_back(Step::Wait(d));
        }
        steps.push_back(Step::Send(event(&envelope(
            vec![json!({"text": piece})],
            false,
            partial_usage.clone(),
        ))));
    }
    let last_parts: Vec<Value> = call.into_iter().collect();
    let last_parts = if last_parts.is_empty() {
        vec![json!({"text": ""})]
    } else {
        last_parts
    };
    steps.push_back(Step::Last(event(&envelope(last_parts, true, usage))));
    streaming(steps, shared)
}

fn streaming(steps: VecDeque<Step>, shared: &Shared) -> Response<ResponseBody> {
    let mut response = Response::new(stream::body(
        Plan {
            steps,
            keepalive: None,
        },
        shared.streams.clone(),
    ));
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
