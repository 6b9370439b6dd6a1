//! The `emulate` directive: a request's own script for how the emulator should misbehave.
//!
//! Parsing is pure so its rules can be tested without a server; the handler only acts on the result.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

/// What one request asked the emulator to do, beyond answering normally.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Directive {
    /// Answer with an error instead of a completion.
    pub(crate) failure: Option<Failure>,
    /// Sleep before the response headers go out (time to first byte).
    pub(crate) first_byte_delay: Option<Duration>,
    /// How many content chunks a stream carries; `None` means one per word.
    pub(crate) chunks: Option<usize>,
    /// After this many content chunks, wait this long.
    pub(crate) pause: Option<(usize, Duration)>,
    /// Wait between every two data chunks of a stream.
    pub(crate) chunk_delay: Option<Duration>,
    /// While waiting inside a stream, send an SSE comment this often.
    pub(crate) keepalive_every: Option<Duration>,
    /// After this many content chunks, send OpenRouter's mid-stream error chunk and stop.
    pub(crate) error_after_chunks: Option<usize>,
    /// After this many content chunks, break the connection.
    pub(crate) reset_after_chunks: Option<usize>,
    /// Exact answer text instead of the echo.
    pub(crate) content: Option<String>,
    /// Never answer.
    pub(crate) hang: bool,
    /// Answer by calling this tool (after the `content` text, if one is given).
    pub(crate) tool_call: Option<ToolCallDirective>,
    /// Replace a streamed answer with this many bytes of this shape (see `crate::hostile`).
    pub(crate) flood: Option<(crate::hostile::FloodShape, u64)>,
    /// Send every byte of a streamed answer as its own frame, this long apart.
    pub(crate) trickle: Option<Duration>,
    /// Azure: refuse the prompt as Azure's content filter does (a 400 with `code: content_filter`).
    pub(crate) content_filter: bool,
    /// The directive's JSON text: requests carrying the same text share one `times` counter.
    pub(crate) key: String,
}

/// `"tool_call": {"name": "...", "arguments": {...}}`: the answer calls a tool.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCallDirective {
    pub(crate) name: String,
    /// A JSON object, sent as the call's arguments (a JSON string at OpenAI, an object at Anthropic
    /// and Ollama).
    pub(crate) arguments: Value,
}

/// An error the request asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    /// Fail only the first `times` requests with this directive; `None` fails them all.
    pub(crate) times: Option<u64>,
    /// Seconds for a `Retry-After` header.
    pub(crate) retry_after: Option<u64>,
    pub(crate) message: Option<String>,
    /// Use OpenRouter's error shape (integer `code`, `metadata`) instead of OpenAI's.
    pub(crate) openrouter: bool,
    /// Quote the `Authorization` header received in the error message, as some providers do.
    pub(crate) echo_auth: bool,
}

impl Directive {
    /// Reads the `emulate` member of a request body; absent means "behave normally".
    ///
    /// Unknown keys and wrongly typed values are refused, so a typo in a test fails loudly instead of
    /// silently testing the happy path.
    pub(crate) fn from_request(body: &Value) -> Result<Directive, String> {
        let Some(raw) = body.get("emulate") else {
            return Ok(Directive::default());
        };
        let Some(obj) = raw.as_object() else {
            return Err("'emulate' must be an object".to_owned());
        };
        let mut d = Directive {
            key: raw.to_string(),
            ..Directive::default()
        };
        let mut status = None;
        let (mut times, mut retry_after, mut message, mut openrouter) = (None, None, None, false);
        let mut echo_auth = false;
        let (mut pause_after, mut pause_ms) = (None, None);
        let (mut flood, mut flood_bytes) = (None, None);
        for (name, value) in obj {
            match name.as_str() {
                "status" => status = Some(uint(name, value)?),
                "times" => times = Some(uint(name, value)?),
                "retry_after" => retry_after = Some(uint(name, value)?),
                "message" => message = Some(string(name, value)?),
                "openrouter_error" => openrouter = boolean(name, value)?,
                "echo_auth" => echo_auth = boolean(name, value)?,
                "first_byte_delay_ms" => d.first_byte_delay = Some(millis(name, value)?),
                "chunks" => d.chunks = Some(positive(name, value)?),
                "pause_after_chunks" => pause_after = Some(count(name, value)?),
                "pause_ms" => pause_ms = Some(millis(name, value)?),
                "chunk_delay_ms" => d.chunk_delay = Some(millis(name, value)?),
                "keepalive_every_ms" => {
                    d.keepalive_every = Some(Duration::from_millis(positive(name, value)? as u64));
                }
                "error_after_chunks" => d.error_after_chunks = Some(count(name, value)?),
                "reset_after_chunks" => d.reset_after_chunks = Some(count(name, value)?),
                "content" => d.content = Some(string(name, value)?),
                "hang" => d.hang = boolean(name, value)?,
                "tool_call" => d.tool_call = Some(tool_call(value)?),
                "flood" => flood = Some(crate::hostile::FloodShape::parse(&string(name, value)?)?),
                "flood_bytes" => flood_bytes = Some(uint(name, value)?),
                "byte_delay_ms" => d.trickle = Some(millis(name, value)?),
                "content_filter" => d.content_filter = boolean(name, value)?,
                other => return Err(format!("unknown emulate directive '{other}'")),
            }
        }
        d.flood = match (flood, flood_bytes) {
            (Some(shape), Some(bytes)) => Some((shape, bytes)),
            (None, None) => None,
            _ => return Err("'flood' and 'flood_bytes' go together".to_owned()),
        };
        d.pause = match (pause_after, pause_ms) {
            (Some(after), Some(ms)) => Some((after, ms)),
            (None, None) => None,
            _ => return Err("'pause_after_chunks' and 'pause_ms' go together".to_owned()),
        };
        match status {
            Some(code) => {
                let status = u16::try_from(code)
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .ok_or_else(|| format!("'status' {code} is not an HTTP error status"))?;
                d.failure = Some(Failure {
                    status,
                    times,
                    retry_after,
                    message,
                    openrouter,
                    echo_auth,
                });
            }
            None if times.is_some()
                || retry_after.is_some()
                || message.is_some()
                || openrouter
                || echo_auth =>
            {
                return Err(
                    "'times', 'retry_after', 'message', 'openrouter_error' and 'echo_auth' need 'status'"
                        .to_owned(),
                );
            }
            None => {}
        }
        Ok(d)
    }
}

fn tool_call(value: &Value) -> Result<ToolCallDirective, String> {
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("'tool_call' needs a 'name' string")?;
    let arguments = match value.get("arguments") {
        None => Value::Object(serde_json::Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err("'tool_call.arguments' must be an object".to_owned()),
    };
    Ok(ToolCallDirective {
        name: name.to_owned(),
        arguments,
    })
}

fn uint(name: &str, value: &Value) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("'{name}' must be a non-negative integer"))
}

fn count(name: &str, value: &Value) -> Result<usize, String> {
    usize::try_from(uint(name, value)?).map_err(|_| format!("'{name}' is too large"))
}

fn positive(name: &str, value: &Value) -> Result<usize, String> {
    match count(name, value)? {
        0 => Err(format!("'{name}' must be at least 1")),
        n => Ok(n),
    }
}

fn millis(name: &str, value: &Value) -> Result<Duration, String> {
    uint(name, value).map(Duration::from_millis)
}

fn string(name: &str, value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("'{name}' must be a string"))
}

fn boolean(name: &str, value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("'{name}' must be true or false"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_directive_is_default() {
        let d = Directive::from_request(&json!({"model": "tiny"})).unwrap();
        assert_eq!(d, Directive::default());
    }

    #[test]
    fn parses_every_field() {
        let body = json!({"emulate": {
            "status": 429, "times": 2, "retry_after": 3, "message": "slow down", "openrouter_error": true,
            "first_byte_delay_ms": 5, "chunks": 7, "pause_after_chunks": 1, "pause_ms": 50,
            "chunk_delay_ms": 2, "keepalive_every_ms": 10, "error_after_chunks": 4,
            "reset_after_chunks": 6, "content": "hi", "hang": false
        }});
        let d = Directive::from_request(&body).unwrap();
        let f = d.failure.clone().unwrap();
        assert_eq!(f.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!((f.times, f.retry_after, f.openrouter), (Some(2), Some(3), true));
        assert_eq!(f.message.as_deref(), Some("slow down"));
        assert_eq!(d.first_byte_delay, Some(Duration::from_millis(5)));
        assert_eq!(d.chunks, Some(7));
        assert_eq!(d.pause, Some((1, Duration::from_millis(50))));
        assert_eq!(d.keepalive_every, Some(Duration::from_millis(10)));
        assert_eq!((d.error_after_chunks, d.reset_after_chunks), (Some(4), Some(6)));
        assert_eq!(d.content.as_deref(), Some("hi"));
        assert_eq!(d.key, body["emulate"].to_string());
        let t =
            Directive::from_request(&json!({"emulate": {"tool_call": {"name": "f", "arguments": {"a": 1}}}}))
                .unwrap()
                .tool_call
                .unwrap();
        assert_eq!((t.name.as_str(), t.arguments.clone()), ("f", json!({"a": 1})));
    }

    #[test]
    fn refuses_mistakes() {
        for bad in [
            json!({"emulate": 1}),
            json!({"emulate": {"stauts": 500}}),
            json!({"emulate": {"status": 200}}),
            json!({"emulate": {"status": 99999}}),
            json!({"emulate": {"times": 1}}),
            json!({"emulate": {"pause_ms": 10}}),
            json!({"emulate": {"chunks": 0}}),
            json!({"emulate": {"keepalive_every_ms": 0}}),
            json!({"emulate": {"hang": "yes"}}),
            json!({"emulate": {"chunk_delay_ms": -1}}),
            json!({"emulate": {"tool_call": {"arguments": {}}}}),
            json!({"emulate": {"tool_call": {"name": "f", "arguments": "{}"}}}),
        ] {
            assert!(Directive::from_request(&bad).is_err(), "accepted {bad}");
        }
    }
}
