//! Azure OpenAI: the wire is OpenAI's (requests and answers pass unchanged), except for errors.
//! Azure's content filter refuses a prompt with a 400 whose `code` is `content_filter` and whose
//! `innererror.content_filter_result` says which categories tripped at what severity; the message
//! Azure writes is long and generic. [`error_to_openai`] says plainly what was refused and why,
//! keeps OpenAI's shape and the `content_filter` code (which moatd's opt-in content-policy fallback
//! recognises), and fills in the `type` Azure leaves `null`.

use moat_wire::error::ErrorBody;
use serde_json::{json, Value};

/// An Azure error answer in OpenAI's shape, with content-filter refusals explained.
pub fn error_to_openai(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let Some(mut err) = ErrorBody::from_slice(body) else {
        let kind = default_type(status);
        return (
            status,
            ErrorBody::new(format!("provider answered {status}"), kind, None).to_json_bytes(),
        );
    };
    let code = err.error.code_text();
    let inner_code = err
        .error
        .extra
        .get("innererror")
        .and_then(|i| i.get("code"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if code.as_deref() == Some("content_filter")
        || inner_code.as_deref() == Some("ResponsibleAIPolicyViolation")
    {
        let tripped = tripped_categories(err.error.extra.get("innererror"));
        let what = match err.error.param.as_ref().and_then(Value::as_str) {
            Some("prompt") | None => "the prompt",
            Some(_) => "the request",
        };
        let why = if tripped.is_empty() {
            String::new()
        } else {
            format!(": {}", tripped.join(", "))
        };
        err.error.message = format!(
            "Azure OpenAI's content filter refused {what}{why}. Rephrase it, or send it to a provider with another content policy."
        );
        err.error.r#type = Some("invalid_request_error".into());
        err.error.code = Some(json!("content_filter"));
    }
    if err.error.r#type.as_deref().is_none_or(str::is_empty) {
        err.error.r#type = Some(default_type(status).into());
    }
    // Azure adds `status` inside the error object; OpenAI does not have it.
    err.error.extra.remove("status");
    (status, err.to_json_bytes())
}

fn default_type(status: u16) -> &'static str {
    match status {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// `"violence (medium)"` for each category the filter flagged, plus detections such as `jailbreak`.
fn tripped_categories(inner: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(results)) = inner.and_then(|i| i.get("content_filter_result")) else {
        return Vec::new();
    };
    results
        .iter()
        .filter(|(_, r)| r.get("filtered").and_then(Value::as_bool) == Some(true))
        .map(|(name, r)| match r.get("severity").and_then(Value::as_str) {
            Some(sev) => format!("{} ({sev})", name.replace('_', " ")),
            None => name.replace('_', " "),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(status: u16, body: Value) -> (u16, Value) {
        let (s, b) = error_to_openai(status, body.to_string().as_bytes());
        (s, serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn a_content_filter_refusal_is_explained() {
        let (s, v) = read(
            400,
            json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                "hate": {"filtered": false, "severity": "safe"},
                "self_harm": {"filtered": true, "severity": "high"},
                "violence": {"filtered": true, "severity": "medium"},
                "jailbreak": {"filtered": true, "detected": true}}}}}),
        );
        assert_eq!(s, 400);
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.starts_with("Azure OpenAI's content filter refused the prompt: "),
            "{m}"
        );
        assert!(m.contains("self harm (high)") && m.contains("violence (medium)") && m.contains("jailbreak"));
        assert!(!m.contains("hate"));
        assert_eq!(v["error"]["code"], "content_filter");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"].get("status").is_none());
    }

    #[test]
    fn other_errors_keep_their_meaning_and_get_a_type() {
        let (s, v) = read(
            400,
            json!({"error": {"message": "This model's maximum context length is 8192 tokens.",
            "type": null, "param": "messages", "code": "context_length_exceeded"}}),
        );
        assert_eq!(
            (s, v["error"]["code"].as_str(), v["error"]["type"].as_str()),
            (
                400,
                Some("context_length_exceeded"),
                Some("invalid_request_error")
            )
        );
        let (s, v) = read(
            401,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}),
        );
        assert_eq!(
            (s, v["error"]["type"].as_str()),
            (401, Some("authentication_error"))
        );
        let (s, v) = read(
            404,
            json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}),
        );
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (404, Some("DeploymentNotFound"))
        );
        let (s, b) = error_to_openai(502, b"<html>bad gateway</html>");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!((s, v["error"]["type"].as_str()), (502, Some("server_error")));
    }
}
