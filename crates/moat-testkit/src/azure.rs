//! Azure OpenAI as the emulator speaks it: deployment paths
//! (`/openai/deployments/{deployment}/chat/completions|completions|embeddings`) that require an
//! `api-version` query parameter, `GET /openai/models`, the `api-key` header or an Entra ID bearer
//! token issued by [`crate::cloud`], Azure's error shapes, and its content filter (the
//! `content_filter` directive refuses the prompt with Azure's 400). Answers are the OpenAI side's.

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::completion::Kind;
use crate::handler::{generate, json, Endpoint};
use crate::server::Shared;
use crate::ResponseBody;

/// Answers the request if it is one of Azure's; `None` leaves it to the other wires.
pub(crate) async fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response<ResponseBody>> {
    let rest = path.strip_prefix("/openai/")?;
    let api_version = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned());
    if api_version.is_none_or(|v| v.is_empty()) {
        return Some(error(StatusCode::NOT_FOUND, "404", "Resource not found"));
    }
    if !authorized(shared, headers) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        ));
    }
    if method == Method::GET && rest == "models" {
        let data: Vec<Value> = shared
            .models
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .map(|id| {
                json!({"id": id, "object": "model", "created_at": 1_700_000_000, "status": "succeeded",
                             "capabilities": {"chat_completion": true}})
            })
            .collect();
        return Some(json(StatusCode::OK, &json!({"object": "list", "data": data})));
    }
    let (deployment, operation) = rest.strip_prefix("deployments/")?.split_once('/')?;
    let endpoint = match (method, operation) {
        (&Method::POST, "chat/completions") => Endpoint::Complete(Kind::Chat),
        (&Method::POST, "completions") => Endpoint::Complete(Kind::Text),
        (&Method::POST, "embeddings") => Endpoint::Embeddings,
        _ => return Some(error(StatusCode::NOT_FOUND, "404", "Resource not found")),
    };
    let Some(mut request) = crate::cloud::object(body) else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body is not valid JSON.",
        ));
    };
    if let Ok(d) = shared.directive_for(&request) {
        if d.content_filter {
            return Some(content_filtered());
        }
    }
    // The deployment decides the model; whatever `model` the body names is ignored, as at Azure.
    request["model"] = json!(deployment);
    let body = Bytes::from(request.to_string());
    Some(generate(shared, &endpoint, &body, None, false).await)
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    if shared.api_key.is_none() && shared.entra.is_none() {
        return true;
    }
    let key = headers.get("api-key").and_then(|v| v.to_str().ok());
    if key.is_some() && key == shared.api_key.as_deref() {
        return true;
    }
    crate::cloud::bearer(headers).is_some_and(|t| shared.issued.bearer_valid(t))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<ResponseBody> {
    json(status, &json!({"error": {"code": code, "message": message}}))
}

/// Azure's refusal of a prompt its content filter flagged.
fn content_filtered() -> Response<ResponseBody> {
    json(
        StatusCode::BAD_REQUEST,
        &json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                "hate": {"filtered": false, "severity": "safe"},
                "jailbreak": {"filtered": false, "detected": false},
                "self_harm": {"filtered": false, "severity": "safe"},
                "sexual": {"filtered": false, "severity": "safe"},
                "violence": {"filtered": true, "severity": "medium"}}}}}),
    )
}
