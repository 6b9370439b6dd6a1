//! Error body tests: moat-made errors, the upstream shapes `from_slice` accepts, and round trips.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::test_support::{assert_round_trip, j_string, j_u64, Obj};

/// An error object with all four keys present, since `ErrorDetail` writes them even when `None`;
/// also used for the `error` member of stream chunks.
pub(crate) fn error_detail_json() -> BoxedStrategy<Value> {
    let nullable = |s: BoxedStrategy<Value>| prop_oneof![Just(Value::Null), s].boxed();
    Obj::new()
        .req("message", j_string())
        .req("type", nullable(j_string()))
        .req("code", nullable(prop_oneof![j_string(), j_u64()].boxed()))
        .req("param", nullable(j_string()))
        .build()
}

proptest! {
    #[test]
    fn error_body_round_trips(json in Obj::new().req("error", error_detail_json()).build()) {
        assert_round_trip::<ErrorBody>(&json)?;
    }
}

#[test]
fn moat_error_has_all_four_keys() {
    let body = ErrorBody::new(
        "model not allowed",
        "invalid_request_error",
        Some("model_not_allowed"),
    );
    let json: Value = serde_json::from_slice(&body.to_json_bytes()).unwrap();
    assert_eq!(
        json,
        json!({"error": {
            "message": "model not allowed",
            "type": "invalid_request_error",
            "code": "model_not_allowed",
            "param": null
        }})
    );

    let json = serde_json::to_value(ErrorBody::new("boom", "server_error", None)).unwrap();
    assert_eq!(json["error"]["code"], Value::Null);
    assert!(json["error"].as_object().unwrap().contains_key("code"));
    assert!(json["error"].as_object().unwrap().contains_key("param"));
}

#[test]
fn fallback_is_a_valid_error_body() {
    let body = ErrorBody::from_slice(FALLBACK).unwrap();
    assert_eq!(body.error.message, "internal error");
    assert_eq!(body.error.r#type.as_deref(), Some("server_error"));
}

#[test]
fn openai_error() {
    let raw = br#"{
      "error": {
        "message": "The model `gpt-5-turbo` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": null,
        "code": "model_not_found"
      }
    }"#;
    let body = ErrorBody::from_slice(raw).unwrap();
    assert_eq!(body.error.r#type.as_deref(), Some("invalid_request_error"));
    assert_eq!(body.error.code, Some(json!("model_not_found")));
    assert_eq!(body.error.code_text().as_deref(), Some("model_not_found"));
    assert_eq!(body.error.param, None);
    assert!(body.extra.is_empty());
}

#[test]
fn openrouter_error_with_integer_code_and_metadata() {
    let raw = br#"{
      "error": {
        "code": 403,
        "message": "Input flagged by moderation",
        "metadata": {
          "reasons": ["violence"],
          "flagged_input": "...",
          "provider_name": "OpenAI",
          "model_slug": "openai/gpt-4o"
        }
      },
      "user_id": "user_2abc"
    }"#;
    let body = ErrorBody::from_slice(raw).unwrap();
    assert_eq!(body.error.code, Some(json!(403)));
    assert_eq!(body.error.code_text().as_deref(), Some("403"));
    assert_eq!(body.error.r#type, None);
    assert_eq!(body.error.extra["metadata"]["provider_name"], "OpenAI");
    assert_eq!(body.extra["user_id"], "user_2abc");

    // Re-serialized, nothing is lost and the missing OpenAI keys appear as null.
    let out = serde_json::to_value(&body).unwrap();
    assert_eq!(out["error"]["metadata"]["reasons"], json!(["violence"]));
    assert_eq!(out["error"]["type"], Value::Null);
    assert_eq!(out["error"]["param"], Value::Null);
    assert_eq!(out["user_id"], "user_2abc");
}

#[test]
fn plain_string_errors() {
    let body = ErrorBody::from_slice(br#"{"error":"model 'llama9' not found"}"#).unwrap();
    assert_eq!(body.error.message, "model 'llama9' not found");
    assert_eq!(body.error.code, None);

    let body =
        ErrorBody::from_slice(br#"{"message":"bad request","type":"BadRequestError","code":400}"#).unwrap();
    assert_eq!(body.error.message, "bad request");
    assert_eq!(body.error.code, Some(json!(400)));

    let body = ErrorBody::from_slice(br#"{"detail":"Not Found"}"#).unwrap();
    assert_eq!(body.error.message, "Not Found");
}

#[test]
fn non_errors_are_rejected() {
    assert_eq!(ErrorBody::from_slice(b"<html>502 Bad Gateway</html>"), None);
    assert_eq!(ErrorBody::from_slice(b""), None);
    assert_eq!(ErrorBody::from_slice(br#"["error"]"#), None);
    assert_eq!(ErrorBody::from_slice(br#"{"error": 5}"#), None);
    assert_eq!(ErrorBody::from_slice(br#"{"choices": []}"#), None);
    assert_eq!(ErrorBody::from_slice(br#"{"detail": [{"loc": ["body"]}]}"#), None);
}
