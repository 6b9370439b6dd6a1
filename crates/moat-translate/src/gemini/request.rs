//! OpenAI chat request → Gemini `GenerateContentRequest` body.

use std::collections::HashMap;

use moat_wire::openai::{ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Stop};
use serde_json::{json, Map, Value};

use crate::anthropic::outbound_parse_data_url as parse_data_url;
use crate::TranslateError;

/// Gemini members a client may set directly (as unknown members of its OpenAI request); they are
/// forwarded. Everything else unknown is dropped, because Gemini refuses unknown members.
const PASSED_THROUGH: [&str; 3] = ["safetySettings", "cachedContent", "labels"];

/// The `generateContent` body for an OpenAI chat request (the model goes in the path, not here).
///
/// System and developer messages become `systemInstruction`; assistant turns are `model` turns with
/// `functionCall` parts; tool results become `functionResponse` parts named after the call they
/// answer; consecutive turns of one role are merged. Sampling settings go to `generationConfig`.
pub fn to_generate_request(req: &ChatCompletionRequest) -> Result<Value, TranslateError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for m in &req.messages {
        for call in m.tool_calls.iter().flatten() {
            call_names.insert(&call.id, &call.function.name);
        }
        let (role, parts) = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(texts(m.content.as_ref()).map(|t| json!({"text": t})));
                continue;
            }
            "assistant" => ("model", model_parts(m)?),
            "tool" | "function" => ("user", vec![function_response(m, &call_names)?]),
            _ => ("user", content_parts(m.content.as_ref())?),
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    if turns.is_empty() {
        return Err(TranslateError::InvalidRequest(
            "`messages` needs at least one user or assistant message with content".into(),
        ));
    }
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let config = generation_config(req)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if let Some(tools) = &req.tools {
        let declarations: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.function.as_ref())
            .map(|f| {
                let mut d = json!({"name": f.name});
                if let Some(desc) = &f.description {
                    d["description"] = json!(desc);
                }
                // JSON Schema as OpenAI clients write it (`parameters` would take only Gemini's
                // OpenAPI subset and refuse `additionalProperties` and friends).
                if let Some(p) = &f.parameters {
                    d["parametersJsonSchema"] = p.clone();
                }
                d
            })
            .collect();
        if !declarations.is_empty() {
            body.insert("tools".into(), json!([{"functionDeclarations": declarations}]));
        }
    }
    if let Some(choice) = tool_config(req.tool_choice.as_ref()) {
        body.insert("toolConfig".into(), choice);
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

fn generation_config(req: &ChatCompletionRequest) -> Result<Map<String, Value>, TranslateError> {
    let mut c = Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            c.insert(k.to_owned(), v);
        }
    };
    set("temperature", req.temperature.map(Value::from));
    set("topP", req.top_p.map(Value::from));
    set("topK", req.top_k.map(Value::from));
    set(
        "maxOutputTokens",
        req.max_completion_tokens.or(req.max_tokens).map(Value::from),
    );
    set(
        "stopSequences",
        req.stop.as_ref().map(|s| match s {
            Stop::One(s) => json!([s]),
            Stop::Many(v) => json!(v),
        }),
    );
    set("candidateCount", req.n.map(Value::from));
    set("seed", req.seed.map(Value::from));
    set("presencePenalty", req.presence_penalty.map(Value::from));
    set("frequencyPenalty", req.frequency_penalty.map(Value::from));
    if let Some(rf) = &req.response_format {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => set("responseMimeType", Some(json!("application/json"))),
            Some("json_schema") => {
                set("responseMimeType", Some(json!("application/json")));
                set("responseJsonSchema", rf.pointer("/json_schema/schema").cloned());
            }
            Some("text") | None => {}
            Some(other) => {
                return Err(TranslateError::InvalidRequest(format!(
                    "response_format type `{other}` has no Gemini form"
                )))
            }
        }
    }
    if let Some(effort) = req.reasoning_effort.as_deref() {
        let budget = match effort {
            "none" | "minimal" => 0,
            "low" => 1024,
            "medium" => 8192,
            _ => 24576,
        };
        set("thinkingConfig", Some(json!({"thinkingBudget": budget})));
    }
    Ok(c)
}

fn tool_config(choice: Option<&Value>) -> Option<Value> {
    let config = match choice? {
        Value::String(s) => match s.as_str() {
            "none" => json!({"mode": "NONE"}),
            "required" => json!({"mode": "ANY"}),
            _ => json!({"mode": "AUTO"}),
        },
        obj => match obj.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            None => json!({"mode": "AUTO"}),
        },
    };
    Some(json!({"functionCallingConfig": config}))
}

/// A user message's content as Gemini parts.
fn content_parts(content: Option<&MessageContent>) -> Result<Vec<Value>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) if t.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(vec![json!({"text": t})]),
        Some(MessageContent::Parts(parts)) => parts.iter().filter_map(|p| part(p).transpose()).collect(),
    }
}

/// One content part. Images in `data:` URLs are sent inline; `http(s)` and `gs://` image URLs as
/// `fileData` (Gemini fetches them); other part kinds (audio, files) are refused, because dropping
/// what the user attached would change the question silently.
fn part(part: &ContentPart) -> Result<Option<Value>, TranslateError> {
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
                return Ok(Some(json!({"inlineData": {"mimeType": mime, "data": data}})));
            }
            if ["http://", "https://", "gs://"]
                .iter()
                .any(|p| url.starts_with(p))
            {
                return Ok(Some(
                    json!({"fileData": {"mimeType": image_mime(url), "fileUri": url}}),
                ));
            }
            Err(TranslateError::InvalidRequest(
                "image_url must be a data: URL or an http(s)/gs:// URL".into(),
            ))
        }
        other => Err(TranslateError::InvalidRequest(format!(
            "content part type `{other}` has no Gemini form here"
        ))),
    }
}

/// The image type from a URL's extension (Gemini wants one with `fileData`); JPEG when unknown.
fn image_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("heic") => "image/heic",
        _ => "image/jpeg",
    }
}

fn model_parts(m: &ChatMessage) -> Result<Vec<Value>, TranslateError> {
    let mut parts = content_parts(m.content.as_ref())?;
    for call in m.tool_calls.iter().flatten() {
        let args = call.function.arguments.trim();
        let args: Value = if args.is_empty() {
            json!({})
        } else {
            serde_json::from_str(args).map_err(|_| {
                TranslateError::InvalidRequest(format!(
                    "tool call `{}`: `arguments` is not valid JSON",
                    call.id
                ))
            })?
        };
        let mut fc = json!({"name": call.function.name, "args": args});
        // Gemini's own call ids look like anything; ids moat made up (`call_<n>`) are not sent back.
        if !call.id.is_empty() && !is_made_up_id(&call.id) {
            fc["id"] = json!(call.id);
        }
        parts.push(json!({"functionCall": fc}));
    }
    Ok(parts)
}

/// The ids [`super::to_chat_response`] invents for calls Gemini sent without one.
pub(super) fn made_up_id(n: usize) -> String {
    format!("call_{n}")
}

fn is_made_up_id(id: &str) -> bool {
    id.strip_prefix("call_")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A tool result as a `functionResponse` part: named after the call it answers, with the result as
/// an object (a JSON object result as it is, anything else as `{"content": text}`).
fn function_response(m: &ChatMessage, call_names: &HashMap<&str, &str>) -> Result<Value, TranslateError> {
    let id = m.tool_call_id.as_deref().unwrap_or("");
    let name = call_names.get(id).copied().or(m.name.as_deref()).ok_or_else(|| {
        TranslateError::InvalidRequest(format!(
            "tool message for call `{id}`: no earlier assistant tool call has that id"
        ))
    })?;
    let text = texts(m.content.as_ref()).collect::<Vec<_>>().join("\n");
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => Value::Object(o),
        _ => json!({"content": text}),
    };
    let mut fr = json!({"name": name, "response": response});
    if !id.is_empty() && !is_made_up_id(id) {
        fr["id"] = json!(id);
    }
    Ok(json!({"functionResponse": fr}))
}
