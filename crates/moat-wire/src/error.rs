//! The OpenAI error body: what moat sends for every failure, and what it reads from upstreams.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Sent when serializing an [`ErrorBody`] fails, which should never happen; a client must still get
/// a well-formed error rather than an empty body.
const FALLBACK: &[u8] =
    br#"{"error":{"message":"internal error","type":"server_error","code":null,"param":null}}"#;

/// `{"error": {...}}`, plus whatever else the sender put beside `error` (OpenRouter adds `user_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The error object.
///
/// `type`, `code` and `param` are written as `null` when absent instead of being left out: OpenAI
/// always sends all four keys and some SDKs index them without checking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Defaults to empty so an upstream error that has only a code is still understood.
    #[serde(default)]
    pub message: String,
    /// OpenAI's category (`"invalid_request_error"`, `"server_error"`, …).
    #[serde(default)]
    pub r#type: Option<String>,
    /// A string at OpenAI (`"model_not_found"`), the HTTP status as an integer at OpenRouter.
    #[serde(default)]
    pub code: Option<Value>,
    /// The request parameter at fault, when there is one.
    #[serde(default)]
    pub param: Option<Value>,
    /// OpenRouter puts `metadata` (provider name, raw upstream error, moderation reasons) here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorBody {
    /// An error made by moat: `kind` goes to `type`, `code` (if any) is a string as at OpenAI.
    pub fn new(message: impl Into<String>, kind: &str, code: Option<&str>) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                r#type: Some(kind.to_owned()),
                code: code.map(|c| Value::String(c.to_owned())),
                param: None,
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    /// The JSON body; never fails, so error paths have no error path of their own.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| FALLBACK.to_vec())
    }

    /// Reads an upstream's error body, accepting the shapes seen in the wild:
    /// `{"error": {...}}` (OpenAI, OpenRouter, vLLM, llama.cpp), `{"error": "text"}` (Ollama),
    /// a bare `{"message": "text", ...}`, and `{"detail": "text"}` (FastAPI-based servers).
    /// `None` when the body is none of these, so the caller can fall back to the status text.
    pub fn from_slice(body: &[u8]) -> Option<ErrorBody> {
        let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        match map.remove("error") {
            Some(Value::Object(detail)) => {
                let error = serde_json::from_value(Value::Object(detail)).ok()?;
                Some(ErrorBody { error, extra: map })
            }
            Some(Value::String(message)) => Some(ErrorBody {
                error: ErrorDetail::from_message(message),
                extra: map,
            }),
            Some(_) => None,
            None if matches!(map.get("message"), Some(Value::String(_))) => {
                let error = serde_json::from_value(Value::Object(map)).ok()?;
                Some(ErrorBody {
                    error,
                    extra: Map::new(),
                })
            }
            None => match map.remove("detail") {
                Some(Value::String(message)) => Some(ErrorBody {
                    error: ErrorDetail::from_message(message),
                    extra: map,
                }),
                _ => None,
            },
        }
    }
}

impl ErrorDetail {
    /// An error with only a message, as plain-string upstream errors give.
    pub fn from_message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    /// The code as text whether it came as a string or a number, for logs and classification.
    pub fn code_text(&self) -> Option<String> {
        match self.code.as_ref()? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
