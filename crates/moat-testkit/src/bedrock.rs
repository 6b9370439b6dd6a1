//! AWS Bedrock Runtime's Converse API as the emulator speaks it: `POST /model/{modelId}/converse`
//! and `/converse-stream` (answered in AWS's binary event-stream framing), every request's SigV4
//! signature verified (recomputed with the `aws-sigv4` crate from the keys in
//! [`crate::cloud::AwsAccount`] or temporary keys STS issued), Converse's input rules checked
//! (alternating turns starting with the user, `toolConfig` present when tool blocks are, no unknown
//! members), and Bedrock's errors (`x-amzn-ErrorType` and `{"message"}`).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::completion::{count_words, estimate_tokens};
use crate::handler::json;
use crate::server::Shared;
use crate::stream::{self, Plan, Step};
use crate::ResponseBody;

const KNOWN_MEMBERS: [&str; 10] = [
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
];

/// Answers the request if it is one of Bedrock's; `None` leaves it to the other wires.
pub(crate) async fn route(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Option<Response<ResponseBody>> {
    if parts.method == Method::GET && parts.uri.path() == "/ping" {
        return Some(json(StatusCode::OK, &json!({"status": "healthy"})));
    }
    let rest = parts.uri.path().strip_prefix("/model/")?;
    let (model, stream) = match rest.rsplit_once('/')? {
        (m, "converse") => (m, false),
        (m, "converse-stream") => (m, true),
        _ => return None,
    };
    if parts.method != Method::POST {
        return Some(error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation",
        ));
    }
    if let Err((status, kind, message)) = verify(shared, parts, body) {
        return Some(error(status, kind, &message));
    }
    // The model id arrives percent-encoded (`anthropic.claude-v2%3A1`); any id is served.
    let _model = percent_decode(model);
    Some(converse(shared, body, stream).await)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<ResponseBody> {
    let mut response = json(status, &json!({"message": message}));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )) {
        response.headers_mut().insert("x-amzn-errortype", v);
    }
    response
}

fn exception_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

type Refusal = (StatusCode, &'static str, String);

/// Checks the request's SigV4 signature by computing it again from the keys the emulator knows.
fn verify(shared: &Shared, parts: &http::request::Parts, body: &Bytes) -> Result<(), Refusal> {
    let denied = |m: &str| (StatusCode::FORBIDDEN, "UnrecognizedClientException", m.to_owned());
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    // A Bedrock API key travels as a bearer token instead of a signature.
    if let (Some(key), Some(bearer)) = (&shared.api_key, crate::cloud::bearer(&parts.headers)) {
        return if bearer == key {
            Ok(())
        } else {
            Err(denied("The security token included in the request is invalid."))
        };
    }
    let Some(account) = &shared.aws else {
        return Ok(());
    };
    let auth = header("authorization").ok_or_else(|| denied("Missing Authentication Token"))?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| denied("Authorization header requires AWS4-HMAC-SHA256"))?;
    let field = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|f| f.strip_prefix(name))
            .ok_or_else(|| denied("Authorization header is malformed"))
    };
    let credential = field("Credential=")?;
    let signed_headers = field("SignedHeaders=")?;
    let presented = field("Signature=")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, _date, region, service, "aws4_request"] = scope[..] else {
        return Err(denied("Credential should be scoped to a valid region"));
    };
    if region != account.region || service != "bedrock" {
        return Err(denied(
            "Credential should be scoped to the correct region and service 'bedrock'",
        ));
    }
    let (secret, session) = if key_id == account.access_key_id {
        (account.secret_access_key.clone(), None)
    } else if let Some((secret, session)) = shared.issued.aws_temp(key_id) {
        if header("x-amz-security-token") != Some(session.as_str()) {
            return Err(denied("The security token included in the request is invalid."));
        }
        (secret, Some(session))
    } else {
        return Err(denied("The security token included in the request is invalid."));
    };
    let time = header("x-amz-date")
        .and_then(parse_amz_date)
        .ok_or_else(|| denied("X-Amz-Date is missing or malformed"))?;
    let skew = SystemTime::now()
        .duration_since(time)
        .unwrap_or_else(|e| e.duration());
    if skew > Duration::from_secs(300) {
        return Err(denied("Signature expired"));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    let headers: Vec<(&str, &str)> = names
        .iter()
        .filter(|n| !matches!(**n, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|n| Some((*n, header(n)?)))
        .collect();
    let identity: Identity = Credentials::new(key_id, secret, session, None, "emulator").into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| denied(&e.to_string()))?
        .into();
    let host = header("host").unwrap_or("localhost");
    let url = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let signable = SignableRequest::new(
        parts.method.as_str(),
        url,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| denied(&e.to_string()))?;
    let (_, expected) = sign(signable, &params)
        .map_err(|e| denied(&e.to_string()))?
        .into_parts();
    if expected != presented {
        return Err((
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.".to_owned(),
        ));
    }
    Ok(())
}

/// `20240102T030405Z` → a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 || !s.ends_with('Z') || s.as_bytes().get(8) != Some(&b'T') {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    let t = time::OffsetDateTime::parse(&rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// The last user turn's text and the prompt's size, checking Converse's rules on the way.
fn read(request: &Value) -> Result<(String, usize), String> {
    let obj = request.as_object().ok_or("Malformed input request")?;
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_MEMBERS.contains(&k.as_str())) {
        return Err(format!(
            "Malformed input request: extraneous key [{unknown}] is not permitted"
        ));
    }
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("The model returned the following errors: messages: at least one message is required")?;
    let mut chars: usize = obj
        .get("system")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .map(|t| t.chars().count())
        .sum();
    let mut last = String::new();
    let mut expect = "user";
    let mut tool_blocks = false;
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != expect {
            return Err(if expect == "user" && last.is_empty() && chars == 0 {
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.".to_owned()
            } else {
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".to_owned()
            });
        }
        expect = if role == "user" { "assistant" } else { "user" };
        let blocks = m
            .get("content")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or("The content field in the Message object is empty.")?;
        let mut texts = Vec::new();
        for b in blocks {
            if let Some(t) = b.get("text").and_then(Value::as_str) {
                texts.push(t.to_owned());
            } else if let Some(tr) = b.get("toolResult") {
                tool_blocks = true;
                for c in tr.get("content").and_then(Value::as_array).into_iter().flatten() {
                    texts.push(match c.get("text").and_then(Value::as_str) {
                        Some(t) => t.to_owned(),
                        None => c.get("json").map(Value::to_string).unwrap_or_default(),
                    });
                }
            } else if b.get("toolUse").is_some() {
                tool_blocks = true;
            }
        }
        let text = texts.join(" ");
        chars += text.chars().count();
        if role == "user" {
            last = text;
        }
    }
    if tool_blocks && obj.get("toolConfig").is_none() {
        return Err(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                .to_owned(),
        );
    }
    Ok((last, chars))
}

async fn converse(shared: &Shared, body: &Bytes, stream: bool) -> Response<ResponseBody> {
    let Some(request) = crate::cloud::object(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "Malformed request body",
        );
    };
    let (last, chars) = match read(&request) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, "ValidationException", &message),
    };
    let directive = match shared.directive_for(&Value::Null) {
        Ok(d) => d,
        Err(message) => return error(StatusCode::BAD_REQUEST, "ValidationException", &message),
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
            return error(failure.status, exception_for(failure.status), &message);
        }
    }
    let text = match (&directive.tool_call, &directive.content) {
        (Some(_), content) => content.clone().unwrap_or_default(),
        (None, content) => crate::cloud::answer_text(&last, content.as_deref()),
    };
    let input = estimate_tokens(chars);
    let output = count_words(&text);
    let usage = json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
    let call_id = format!("tooluse_emu{}", shared.next_id());
    let stop = if directive.tool_call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    if !stream {
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(json!({"text": text}));
        }
        if let Some(c) = &directive.tool_call {
            content.push(json!({"toolUse": {"toolUseId": call_id, "name": c.name, "input": c.arguments}}));
        }
        return json(
            StatusCode::OK,
            &json!({"output": {"message": {"role": "assistant", "content": content}},
                    "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 1}}),
        );
    }
    let mut steps = VecDeque::new();
    steps.push_back(Step::Send(event("messageStart", &json!({"role": "assistant"}))));
    let pieces = stream::split(&text, directive.chunks);
    for sent in 0..=pieces.len() {
        if stream::interrupt(&mut steps, &directive, sent) {
            return streaming(steps, shared);
        }
        if directive.error_after_chunks == Some(sent) {
            // A modelled failure mid-stream: an exception message, and the stream ends.
            steps.push_back(Step::Send(exception(
                "modelStreamErrorException",
                "The model stream failed.",
            )));
            steps.push_back(Step::End);
            return streaming(steps, shared);
        }
        let Some(piece) = pieces.get(sent) else { break };
        if let (Some(d), true) = (directive.chunk_delay, sent > 0) {
            steps.push_back(Step::Wait(d));
        }
        steps.push_back(Step::Send(event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
        )));
    }
    steps.push_back(Step::Send(event(
        "contentBlockStop",
        &json!({"contentBlockIndex": 0}),
    )));
    if let Some(c) = &directive.tool_call {
        let args = c.arguments.to_string();
        let (a, b) = args.split_at(args.len() / 2);
        steps.push_back(Step::Send(event(
            "contentBlockStart",
            &json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": call_id, "name": c.name}}}),
        )));
        for piece in [a, b] {
            steps.push_back(Step::Send(event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": piece}}}),
            )));
        }
        steps.push_back(Step::Send(event(
            "contentBlockStop",
            &json!({"contentBlockIndex": 1}),
        )));
    }
    steps.push_back(Step::Send(event("messageStop", &json!({"stopReason": stop}))));
    steps.push_back(Step::Last(event(
        "metadata",
        &json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    )));
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
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    response
}

/// One event-stream message: `:event-type`, `:content-type` and `:message-type` headers (strings)
/// and the JSON payload, with Bedrock's `p` padding member, framed with both CRC-32s.
fn event(kind: &str, payload: &Value) -> Bytes {
    let mut payload = payload.clone();
    payload["p"] = json!("abcdefghijklmnopqrstuvwxyzABCDEF"[..(kind.len() % 26) + 2]);
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        &payload.to_string(),
    )
}

/// An exception message (`:message-type: exception`), as Bedrock ends a failed stream.
fn exception(kind: &str, message: &str) -> Bytes {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        &json!({"message": message}).to_string(),
    )
}

fn frame(fields: &[(&str, &str)], payload: &str) -> Bytes {
    let mut headers = Vec::new();
    for &(name, value) in fields {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(payload.as_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}
