//! OpenAI chat request → Bedrock `Converse` body.

use moat_wire::openai::{ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Stop};
use serde_json::{json, Map, Value};

use crate::anthropic::outbound_parse_data_url as parse_data_url;
use crate::TranslateError;

/// Converse members a client may set directly (as unknown members of its OpenAI request); they are
/// forwarded. Other unknown members are dropped: Converse validates its input strictly.
const PASSED_THROUGH: [&str; 5] = [
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "guardrailConfig",
    "performanceConfig",
    "requestMetadata",
];

/// The Converse body for an OpenAI chat request (the model id goes in the path, not here).
///
/// System and developer messages become `system` blocks; assistant tool calls `toolUse` blocks;
/// tool results `toolResult` blocks in a user turn; consecutive turns of one role are merged, as
/// Converse wants them alternating. `max_tokens`, `temperature`, `top_p` and `stop` go to
/// `inferenceConfig`; `tools` and `tool_choice` to `toolConfig`.
pub fn to_converse_request(req: &ChatCompletionRequest) -> Result<Value, TranslateError> {
    if let Some(kind) = req
        .response_format
        .as_ref()
        .and_then(|rf| rf.get("type"))
        .and_then(Value::as_str)
        .filter(|t| *t != "text")
    {
        return Err(TranslateError::InvalidRequest(format!(
            "response_format `{kind}` has no Bedrock Converse form; describe the format in the prompt or use a tool"
        )));
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::InvalidRequest(
            "`n` > 1 has no Bedrock Converse form: send several requests".into(),
        ));
    }
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(texts(m.content.as_ref()).map(|t| json!({"text": t})));
                continue;
            }
            "assistant" => ("assistant", assistant_blocks(m)?),
            "tool" | "function" => ("user", vec![tool_result(m)]),
            _ => ("user", content_blocks(m.content.as_ref())?),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if turns.is_empty() {
        return Err(TranslateError::InvalidRequest(
            "`messages` needs at least one user or assistant message with content".into(),
        ));
    }
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(n) = req.max_completion_tokens.or(req.max_tokens) {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        // OpenAI's range is 0..2; Bedrock's models take 0..1.
        inference.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    if let Some(stop) = &req.stop {
        let list = match stop {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        };
        inference.insert("stopSequences".into(), json!(list));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(config) = tool_config(req) {
        body.insert("toolConfig".into(), config);
    }
    for key in PASSED_THROUGH {
        if let Some(v) = req.extra.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    Ok(Value::Object(body))
}

fn texts(content: Option<&MessageContent>) -> impl Iterator<Item = &str> {
    content
        .into_iter()
        .flat_map(|c| c.texts())
        .filter(|t| !t.is_empty())
}

fn tool_config(req: &ChatCompletionRequest) -> Option<Value> {
    let tools: Vec<Value> = req
        .tools
        .iter()
        .flatten()
        .filter_map(|t| t.function.as_ref())
        .map(|f| {
            let mut spec = json!({
                "name": f.name,
                "inputSchema": {"json": f.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}))},
            });
            if let Some(d) = &f.description {
                spec["description"] = json!(d);
            }
            json!({"toolSpec": spec})
        })
        .collect();
    if tools.is_empty() {
        return None;
    }
    let mut config = json!({"tools": tools});
    // Converse has no "none": the tools stay declared (a conversation with tool blocks needs them)
    // and the model chooses, as with "auto".
    let choice = match req.tool_choice.as_ref() {
        Some(Value::String(s)) if s == "required" => Some(json!({"any": {}})),
        Some(Value::String(s)) if s == "auto" => Some(json!({"auto": {}})),
        Some(v @ Value::Object(_)) => v
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|name| json!({"tool": {"name": name}})),
        _ => None,
    };
    if let Some(choice) = choice {
        config["toolChoice"] = choice;
    }
    Some(config)
}

fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Value>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) if t.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(vec![json!({"text": t})]),
        Some(MessageContent::Parts(parts)) => parts.iter().filter_map(|p| block(p).transpose()).collect(),
    }
}

/// One content part. Images come as bytes (a `data:` URL) or from S3 (`s3://`); Bedrock cannot
/// fetch `http(s)` URLs, and other part kinds (audio, files) have no form here: both are refused
/// rather than silently dropped.
fn block(part: &ContentPart) -> Result<Option<Value>, TranslateError> {
    match part.r#type.as_str() {
        "text" => Ok(part
            .text
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| json!({"text": t}))),
        "image_url" => {
            let Some(url) = part.image_url.as_ref().map(|u| u.url.as_str()) else {
                return Ok(None);
            };
            if let Some((mime, data)) = parse_data_url(url) {
                let format = image_format(mime).ok_or_else(|| {
                    TranslateError::InvalidRequest(format!(
                        "image type `{mime}`: Bedrock takes png, jpeg, gif or webp"
                    ))
                })?;
                return Ok(Some(
                    json!({"image": {"format": format, "source": {"bytes": data}}}),
                ));
            }
            if url.starts_with("s3://") {
                let format = image_format_of_path(url);
                return Ok(Some(
                    json!({"image": {"format": format, "source": {"s3Location": {"uri": url}}}}),
                ));
            }
            Err(TranslateError::InvalidRequest(
                "image_url for Bedrock must be a data: URL or an s3:// URL (Bedrock does not fetch http URLs)".into(),
            ))
        }
        other => Err(TranslateError::InvalidRequest(format!(
            "content part type `{other}` has no Bedrock Converse form here"
        ))),
    }
}

fn image_format(mime: &str) -> Option<&'static str> {
    match mime {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn image_format_of_path(url: &str) -> &'static str {
    match url.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "png",
        Some("gif") => "gif",
        Some("webp") => "webp",
        _ => "jpeg",
    }
}

fn assistant_blocks(m: &ChatMessage) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = content_blocks(m.content.as_ref())?;
    for call in m.tool_calls.iter().flatten() {
        let args = call.function.arguments.trim();
        let input: Value = if args.is_empty() {
            json!({})
        } else {
            serde_json::from_str(args).map_err(|_| {
                TranslateError::InvalidRequest(format!(
                    "tool call `{}`: `arguments` is not valid JSON",
                    call.id
                ))
            })?
        };
        blocks.push(json!({"toolUse": {"toolUseId": call.id, "name": call.function.name, "input": input}}));
    }
    Ok(blocks)
}

/// A tool result: a JSON object result as a `json` block, anything else as `text`.
fn tool_result(m: &ChatMessage) -> Value {
    let text = texts(m.content.as_ref()).collect::<Vec<_>>().join("\n");
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => json!([{"json": v}]),
        _ => json!([{"text": text}]),
    };
    json!({"toolResult": {"toolUseId": m.tool_call_id.clone().unwrap_or_default(), "content": content}})
}
