//! OpenAI's Responses API as the emulator speaks it natively (`POST /v1/responses`, also under
//! `/api/v1`), for testing moatd's relay to providers marked `responses = "native"`. Answers follow the
//! chat side's rule (an echo of the last user text); usage counts a token per four characters of input
//! and one per word of output. The emulator keeps no responses: a request naming
//! `previous_response_id` is refused, so a test shows the gateway replayed the conversation itself.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use crate::completion::{count_words, estimate_tokens};
use crate::server::Shared;
use crate::ResponseBody;

/// Answers the request if it is a Responses call; `None` leaves it to the other wires.
pub(crate) fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response<ResponseBody>> {
    let rest = path
        .strip_prefix("/api/v1")
        .or_else(|| path.strip_prefix("/v1"))?;
    if method != Method::POST || rest.trim_end_matches('/') != "/responses" {
        return None;
    }
    let error = |status, message: &str| {
        crate::handler::json(
            status,
            &json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
        )
    };
    if let Some(key) = &shared.api_key {
        let presented = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        if presented.and_then(|v| v.strip_prefix("Bearer ")) != Some(key.as_str()) {
            return Some(error(StatusCode::UNAUTHORIZED, "Incorrect API key provided."));
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
        ));
    };
    if request.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "this emulator keeps no responses: send the conversation",
        ));
    }
    let (last, chars) = read_input(request.get("input"));
    let answer = format!("You said: {last}");
    let id = format!("resp_emu_{}", shared.next_id());
    let message = json!({"type": "message", "id": format!("msg_emu_{}", shared.next_id()), "status": "completed",
        "role": "assistant", "content": [{"type": "output_text", "text": answer, "annotations": []}]});
    let input_tokens = estimate_tokens(chars);
    let output_tokens = count_words(&answer);
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": id, "object": "response", "created_at": 1_700_000_000, "status": status,
               "model": request.get("model").cloned().unwrap_or(Value::Null), "output": output,
               "store": request.get("store").cloned().unwrap_or(json!(true)), "usage": usage,
               "parallel_tool_calls": true, "tool_choice": "auto", "tools": []})
    };
    let usage = json!({"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens});
    let whole = response("completed", json!([message]), usage);
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        return Some(crate::handler::json(StatusCode::OK, &whole));
    }
    let mut events = vec![
        (
            "response.created",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        (
            "response.output_item.added",
            json!({"output_index": 0, "item": {"type": "message", "id": message["id"], "status": "in_progress", "role": "assistant", "content": []}}),
        ),
    ];
    for word in answer.split_inclusive(' ') {
        events.push((
            "response.output_text.delta",
            json!({"item_id": message["id"], "output_index": 0, "content_index": 0, "delta": word}),
        ));
    }
    events.push((
        "response.output_item.done",
        json!({"output_index": 0, "item": message}),
    ));
    events.push(("response.completed", json!({"response": whole})));
    let mut text = String::new();
    for (n, (kind, mut data)) in events.into_iter().enumerate() {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(n);
        text.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
    }
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

/// The last user text of `input` and the characters of all its text.
fn read_input(input: Option<&Value>) -> (String, usize) {
    match input {
        Some(Value::String(s)) => (s.clone(), s.chars().count()),
        Some(Value::Array(items)) => {
            let mut last = String::new();
            let mut chars = 0;
            for item in items {
                let text = match item.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect(),
                    _ => item
                        .get("output")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                };
                chars += text.chars().count();
                if item.get("role").and_then(Value::as_str) == Some("user") {
                    last = text;
                }
            }
            (last, chars)
        }
        _ => (String::new(), 0),
    }
}
