//! The Response object: the members echoed from the request, and a whole chat answer as output items.

use moat_wire::openai::{ChatCompletionResponse, MessageContent, Usage};
use serde_json::{json, Map, Value};

use super::items::{function_call_item, message_item, output_text_part, reasoning_item, ItemIds};
use super::types::ResponsesRequest;

/// The parts of a Response object that do not depend on the answer, made once per request and shared
/// by every event of a stream (so the id is the same throughout).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    object: Map<String, Value>,
}

impl Envelope {
    /// `id` is moatd's response id, `created_at` Unix seconds, `model` the name the client asked for.
    pub fn new(req: &ResponsesRequest, id: &str, created_at: u64) -> Self {
        let format = req
            .text
            .as_ref()
            .and_then(|t| t.get("format"))
            .cloned()
            .unwrap_or_else(|| json!({"type": "text"}));
        let effort = req.reasoning.as_ref().and_then(|r| r.get("effort")).cloned();
        let object = json!({
            "id": id,
            "object": "response",
            "created_at": created_at,
            "status": "in_progress",
            "background": false,
            "error": null,
            "incomplete_details": null,
            "instructions": req.instructions.clone().unwrap_or(Value::Null),
            "max_output_tokens": req.max_output_tokens,
            "model": req.model.clone().unwrap_or_default(),
            "output": [],
            "parallel_tool_calls": req.parallel_tool_calls.unwrap_or(true),
            "previous_response_id": req.previous_response_id,
            "reasoning": {"effort": effort, "summary": null},
            "store": req.stores(),
            "temperature": req.temperature.unwrap_or(1.0),
            "text": {"format": format},
            "tool_choice": req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            "tools": req.tools.clone().unwrap_or_default(),
            "top_p": req.top_p.unwrap_or(1.0),
            "truncation": "disabled",
            "usage": null,
            "user": req.user,
            "metadata": req.metadata.clone().unwrap_or_else(|| json!({})),
        });
        Envelope {
            object: match object {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        }
    }

    /// The response id.
    pub fn id(&self) -> &str {
        self.object.get("id").and_then(Value::as_str).unwrap_or("")
    }

    /// The Response object before any output: `status: in_progress`.
    pub fn in_progress(&self) -> Value {
        Value::Object(self.object.clone())
    }

    /// The finished Response object.
    pub(crate) fn finished(&self, status: Status, output: Vec<Value>, usage: Option<&Usage>) -> Value {
        let mut object = self.object.clone();
        object.insert("status".into(), json!(status.name()));
        object.insert("output".into(), Value::Array(output));
        object.insert("usage".into(), usage.map_or(Value::Null, usage_object));
        if let Some(reason) = status.incomplete_reason() {
            object.insert("incomplete_details".into(), json!({"reason": reason}));
        }
        if let Status::Failed { code, message } = &status {
            object.insert("error".into(), json!({"code": code, "message": message}));
        }
        Value::Object(object)
    }
}

/// How a response ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    Completed,
    /// Stopped by the output cap (`max_output_tokens`) or a content filter.
    Incomplete(&'static str),
    Failed {
        code: String,
        message: String,
    },
}

impl Status {
    /// From a chat `finish_reason`.
    pub(crate) fn from_finish(reason: Option<&str>) -> Status {
        match reason {
            Some("length") => Status::Incomplete("max_output_tokens"),
            Some("content_filter") => Status::Incomplete("content_filter"),
            _ => Status::Completed,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Incomplete(_) => "incomplete",
            Status::Failed { .. } => "failed",
        }
    }

    fn incomplete_reason(&self) -> Option<&'static str> {
        match self {
            Status::Incomplete(reason) => Some(reason),
            _ => None,
        }
    }

    /// The status of the items of a response that ended this way.
    pub(crate) fn item_status(&self) -> &'static str {
        match self {
            Status::Completed => "completed",
            _ => "incomplete",
        }
    }
}

/// Chat usage in the Responses shape.
pub fn usage_object(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens(), "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens()},
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
    })
}

/// A whole chat answer as the finished Response object: reasoning (when the provider returned it),
/// then the message, then each tool call as a `function_call` item.
pub fn to_response(answer: &ChatCompletionResponse, envelope: &Envelope) -> Value {
    let mut ids = ItemIds::new(envelope.id());
    let choice = answer.choices.first();
    let status = Status::from_finish(choice.and_then(|c| c.finish_reason.as_deref()));
    let mut output = Vec::new();
    if let Some(message) = choice.map(|c| &c.message) {
        let reasoning = message
            .reasoning
            .as_deref()
            .or_else(|| message.extra.get("reasoning_content").and_then(Value::as_str))
            .unwrap_or("");
        if !reasoning.is_empty() {
            output.push(reasoning_item(&ids.next("rs"), reasoning));
        }
        let text: String = match &message.content {
            Some(MessageContent::Text(t)) => t.clone(),
            Some(c @ MessageContent::Parts(_)) => c.texts().collect(),
            None => String::new(),
        };
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(output_text_part(&text));
        }
        if let Some(refusal) = message.refusal.as_deref().filter(|r| !r.is_empty()) {
            content.push(json!({"type": "refusal", "refusal": refusal}));
        }
        let calls = message.tool_calls.as_deref().unwrap_or_default();
        // A turn that only calls tools has no message item, as at OpenAI.
        if !content.is_empty() || calls.is_empty() {
            if content.is_empty() {
                content.push(output_text_part(""));
            }
            output.push(message_item(&ids.next("msg"), content, status.item_status()));
        }
        for call in calls {
            let id = ids.next("fc");
            let call_id = match call.id.as_str() {
                "" => format!("call_{id}"),
                given => given.to_owned(),
            };
            output.push(function_call_item(
                &id,
                &call_id,
                &call.function.name,
                &call.function.arguments,
                status.item_status(),
            ));
        }
    }
    envelope.finished(status, output, answer.usage.as_ref())
}
