//! Chat and legacy text completions: what the emulator answers and how each response or stream chunk
//! looks on the wire. Answers are a pure function of the request, so a reply through a gateway can be
//! compared with a direct one.

use serde_json::{json, Value};

use crate::directive::ToolCallDirective;
use crate::wire::Price;

/// Which of the two completion endpoints is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `POST /chat/completions`
    Chat,
    /// `POST /completions`
    Text,
}

/// Everything needed to write one completion, streamed or not.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub(crate) kind: Kind,
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
    pub(crate) content: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) price: Price,
    /// The request's `x_probe` member, echoed so tests can see unknown fields travel both ways.
    pub(crate) probe: Value,
    /// Reasoning text, present when the request asked for reasoning it does not exclude (OpenRouter's
    /// `reasoning` object); streamed as `delta.reasoning` ahead of the answer.
    pub(crate) reasoning: Option<String>,
    /// The tool the answer calls (chat only), from the `tool_call` directive.
    pub(crate) tool_call: Option<ToolCallDirective>,
    /// Prompt tokens the simulated prefix cache served (reported in `prompt_tokens_details`).
    pub(crate) cached_tokens: u64,
    /// Outputs generated (`n`, or `best_of` when larger): usage and cost count each, and a whole
    /// answer carries `n` choices. (A stream carries one choice whatever `n` is, but bills them all.)
    pub(crate) outputs: u64,
    /// Choices a whole answer returns (`n`).
    pub(crate) choices: u64,
    /// The request asked `stream_options.include_usage`: as OpenAI documents, every chunk but the
    /// usage chunk then carries `"usage": null`.
    pub(crate) usage_nulls: bool,
}

/// `n` and the outputs generated for it (`best_of` when larger), each at least 1.
pub(crate) fn outputs_of(request: &Value) -> (u64, u64) {
    let read = |k: &str| request.get(k).and_then(Value::as_u64).filter(|&v| v > 0);
    let n = read("n").unwrap_or(1);
    (n, n.max(read("best_of").unwrap_or(1)))
}

/// What the emulator read from a completion request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prompt {
    pub(crate) model: String,
    /// The last user message (chat) or the prompt (text): what the answer echoes.
    pub(crate) last_text: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) stream: bool,
}

impl Prompt {
    /// Reads a request body; the error is a message for a 400 and names the offending parameter.
    pub(crate) fn read(kind: Kind, body: &Value) -> Result<Prompt, (String, &'static str)> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            // OpenRouter accepts a fallback list instead of a single model.
            .or_else(|| body.get("models").and_then(|m| m.get(0)).and_then(Value::as_str))
            .ok_or_else(|| ("you must provide a model parameter".to_owned(), "model"))?
            .to_owned();
        let (last_text, chars) = match kind {
            Kind::Chat => read_messages(body)?,
            Kind::Text => read_prompt(body)?,
        };
        let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        Ok(Prompt {
            model,
            last_text,
            prompt_tokens: estimate_tokens(chars),
            stream,
        })
    }
}

fn read_messages(body: &Value) -> Result<(String, usize), (String, &'static str)> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ("'messages' must be a non-empty array".to_owned(), "messages"))?;
    let mut chars = 0;
    let mut last_user = String::new();
    for message in messages {
        let text = message_text(message.get("content").unwrap_or(&Value::Null));
        chars += text.chars().count();
        if message.get("role").and_then(Value::as_str) == Some("user") {
            last_user = text;
        }
    }
    Ok((last_user, chars))
}

/// A message's text: a plain string, or the `text` parts of a multi-part content array joined by spaces.
fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn read_prompt(body: &Value) -> Result<(String, usize), (String, &'static str)> {
    let missing = || {
        (
            "'prompt' must be a string or an array of strings".to_owned(),
            "prompt",
        )
    };
    let texts: Vec<&str> = match body.get("prompt") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(missing)?,
        _ => return Err(missing()),
    };
    let chars = texts.iter().map(|t| t.chars().count()).sum();
    Ok((texts.last().copied().unwrap_or_default().to_owned(), chars))
}

/// Tokens for `chars` characters of prompt: a quarter, rounded up, at least one.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

/// Tokens of an answer: its whitespace-separated words.
pub(crate) fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

impl Completion {
    /// The answer text for a prompt: the scripted content, or an echo of what the user said.
    pub(crate) fn answer_for(prompt: &Prompt, scripted: Option<&str>) -> String {
        match scripted {
            Some(text) => text.to_owned(),
            None => format!("You said: {}", prompt.last_text),
        }
    }

    /// OpenAI's `usage`, with OpenRouter's cost fields, for an answer of `answer` text.
    pub(crate) fn usage(&self, answer: &str) -> Value {
        let completion_tokens = count_words(answer) * self.outputs;
        let prompt_cost = self.prompt_tokens as f64 * self.price.prompt;
        let completion_cost = completion_tokens as f64 * self.price.completion;
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
            "cost": prompt_cost + completion_cost,
            "is_byok": false,
            "cost_details": {
                "upstream_inference_cost": null,
                "upstream_inference_prompt_cost": prompt_cost,
                "upstream_inference_completions_cost": completion_cost
            }
        })
    }

    /// The reasoning the emulator "does" for a request: `Some` when the request carries a `reasoning`
    /// object that is not `"enabled": false` or `"exclude": true`, as OpenRouter returns reasoning.
    pub(crate) fn reasoning_for(prompt: &Prompt, request: &Value) -> Option<String> {
        let reasoning = request.get("reasoning")?.as_object()?;
        let off = |key: &str, value: bool| reasoning.get(key).and_then(Value::as_bool) == Some(value);
        if off("enabled", false) || off("exclude", true) {
            return None;
        }
        Some(format!("Thinking about \"{}\".", prompt.last_text))
    }

    /// The dollars [`Completion::usage`] reports for `answer`.
    pub(crate) fn cost(&self, answer: &str) -> f64 {
        self.prompt_tokens as f64 * self.price.prompt
            + (count_words(answer) * self.outputs) as f64 * self.price.completion
    }

    fn object(&self, streaming: bool) -> &'static str {
        match (self.kind, streaming) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Text, _) => "text_completion",
        }
    }

    fn envelope(&self, streaming: bool, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": self.object(streaming),
            "created": self.created,
            "model": self.model,
            "provider": "Emu",
            "system_fingerprint": "fp_emulator",
            "choices": choices,
            "x_emulator": {"echo_unknown": self.probe},
        })
    }

    /// The whole non-streaming response.
    pub(crate) fn response(&self) -> Value {
        let choice = match self.kind {
            Kind::Chat => json!({
                "index": 0,
                "message": self.message(),
                "logprobs": null,
                "finish_reason": self.finish_reason(),
                "native_finish_reason": self.finish_reason()
            }),
            Kind::Text => {
                json!({"index": 0, "text": self.content, "logprobs": null, "finish_reason": "stop"})
            }
        };
        let choices: Vec<Value> = (0..self.choices)
            .map(|i| {
                let mut c = choice.clone();
                c["index"] = json!(i);
                c
            })
            .collect();
        let mut body = self.envelope(false, Value::from(choices));
        body["usage"] = self.usage(&self.content);
        body
    }

    /// The first chunk of a chat stream, announcing the assistant role; text streams have none.
    pub(crate) fn role_chunk(&self) -> Option<Value> {
        match self.kind {
            Kind::Chat => Some(self.envelope(
                true,
                json!([{
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": null,
                    "finish_reason": null
                }]),
            )),
            Kind::Text => None,
        }
    }

    /// One piece of the answer.
    pub(crate) fn content_chunk(&self, piece: &str) -> Value {
        let choice = match self.kind {
            Kind::Chat => {
                json!({"index": 0, "delta": {"content": piece}, "logprobs": null, "finish_reason": null})
            }
            Kind::Text => json!({"index": 0, "text": piece, "logprobs": null, "finish_reason": null}),
        };
        self.envelope(true, json!([choice]))
    }

    /// The assistant message of a whole chat response; `reasoning` only when there is some, as at
    /// OpenRouter.
    fn message(&self) -> Value {
        let mut message = json!({"role": "assistant", "content": self.content, "refusal": null});
        if let Some(call) = &self.tool_call {
            if self.content.is_empty() {
                message["content"] = Value::Null;
            }
            message["tool_calls"] = json!([{
                "id": self.tool_call_id(),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments.to_string()}
            }]);
        }
        if let Some(reasoning) = &self.reasoning {
            message["reasoning"] = json!(reasoning);
        }
        message
    }

    /// One piece of the reasoning (chat only: text completions have no reasoning channel).
    pub(crate) fn reasoning_chunk(&self, piece: &str) -> Value {
        let choice = json!({"index": 0, "delta": {"content": "", "reasoning": piece}, "logprobs": null, "finish_reason": null});
        self.envelope(true, json!([choice]))
    }

    fn finish_reason(&self) -> &'static str {
        match self.tool_call {
            Some(_) => "tool_calls",
            None => "stop",
        }
    }

    fn tool_call_id(&self) -> String {
        format!("call_{}", self.id)
    }

    /// The chunks of the tool call, as OpenAI streams one: id and name first, then the arguments in
    /// two pieces.
    pub(crate) fn tool_call_chunks(&self) -> Vec<Value> {
        let Some(call) = &self.tool_call else {
            return Vec::new();
        };
        let args = call.arguments.to_string();
        let (a, b) = args.split_at(args.len() / 2);
        let delta = |call: Value| {
            let choice =
                json!({"index": 0, "delta": {"tool_calls": [call]}, "logprobs": null, "finish_reason": null});
            self.envelope(true, json!([choice]))
        };
        vec![
            delta(
                json!({"index": 0, "id": self.tool_call_id(), "type": "function", "function": {"name": call.name, "arguments": ""}}),
            ),
            delta(json!({"index": 0, "function": {"arguments": a}})),
            delta(json!({"index": 0, "function": {"arguments": b}})),
        ]
    }

    /// The chunk that carries the `finish_reason`.
    pub(crate) fn finish_chunk(&self) -> Value {
        let choice = match self.kind {
            Kind::Chat => json!({
                "index": 0,
                "delta": {},
                "logprobs": null,
                "finish_reason": self.finish_reason(),
                "native_finish_reason": self.finish_reason()
            }),
            Kind::Text => json!({"index": 0, "text": "", "logprobs": null, "finish_reason": "stop"}),
        };
        self.envelope(true, json!([choice]))
    }

    /// The last data chunk before `[DONE]`: no choices, only usage for what was streamed.
    pub(crate) fn usage_chunk(&self, streamed: &str) -> Value {
        let mut chunk = self.envelope(true, json!([]));
        chunk["usage"] = self.usage(streamed);
        chunk
    }

    /// OpenRouter's mid-stream failure: an `error` member and `finish_reason: "error"`.
    pub(crate) fn error_chunk(&self) -> Value {
        let choice = match self.kind {
            Kind::Chat => json!({"index": 0, "delta": {"content": ""}, "finish_reason": "error"}),
            Kind::Text => json!({"index": 0, "text": "", "finish_reason": "error"}),
        };
        let mut chunk = self.envelope(true, json!([choice]));
        chunk["error"] = json!({"code": "server_error", "message": "Emulated mid-stream failure"});
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(kind: Kind) -> Completion {
        Completion {
            kind,
            id: "chatcmpl-emu-1".to_owned(),
            created: 1,
            model: "tiny".to_owned(),
            content: "You said: hi there".to_owned(),
            prompt_tokens: 3,
            price: Price {
                prompt: 1.0,
                completion: 2.0,
            },
            probe: json!({"a": 1}),
            reasoning: None,
            tool_call: None,
            cached_tokens: 0,
            outputs: 1,
            choices: 1,
            usage_nulls: false,
        }
    }

    #[test]
    fn reads_chat_prompt() {
        let body = json!({"model": "tiny", "stream": true, "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "you"}]},
            {"role": "assistant", "content": "ok"}
        ]});
        let p = Prompt::read(Kind::Chat, &body).unwrap();
        assert_eq!(p.last_text, "hello you");
        assert_eq!(p.prompt_tokens, 5); // 8 + 9 + 2 = 19 chars
        assert!(p.stream);
        assert_eq!(Completion::answer_for(&p, None), "You said: hello you");
        assert_eq!(Completion::answer_for(&p, Some("x")), "x");
    }

    #[test]
    fn reads_text_prompt_and_fallback_model() {
        let body = json!({"models": ["a", "b"], "prompt": ["one", "two"]});
        let p = Prompt::read(Kind::Text, &body).unwrap();
        assert_eq!(
            (p.model.as_str(), p.last_text.as_str(), p.prompt_tokens),
            ("a", "two", 2)
        );
        assert_eq!(
            Prompt::read(Kind::Text, &json!({"model": "a"})).unwrap_err().1,
            "prompt"
        );
        assert_eq!(
            Prompt::read(Kind::Chat, &json!({"messages": []})).unwrap_err().1,
            "model"
        );
    }

    #[test]
    fn token_rules() {
        assert_eq!(estimate_tokens(0), 1);
        assert_eq!(estimate_tokens(9), 3);
        assert_eq!(count_words("  a b\tc\n"), 3);
    }

    #[test]
    fn chat_response_shape() {
        let r = completion(Kind::Chat).response();
        assert_eq!(r["object"], "chat.completion");
        assert_eq!(r["choices"][0]["message"]["refusal"], Value::Null);
        assert_eq!(r["usage"]["completion_tokens"], 4);
        assert_eq!(r["usage"]["total_tokens"], 7);
        assert_eq!(r["usage"]["cost"], 11.0);
        assert_eq!(r["x_emulator"]["echo_unknown"]["a"], 1);
        assert_eq!(r["choices"][0]["message"]["reasoning"], Value::Null);
    }

    #[test]
    fn reasoning_only_when_asked_and_not_excluded() {
        let p = Prompt::read(
            Kind::Chat,
            &json!({"model": "m", "messages": [{"role": "user", "content": "q"}]}),
        )
        .unwrap();
        let ask = |r: Value| Completion::reasoning_for(&p, &json!({"reasoning": r}));
        assert_eq!(
            ask(json!({"effort": "high"})).as_deref(),
            Some("Thinking about \"q\".")
        );
        assert_eq!(
            ask(json!({"enabled": true})).as_deref(),
            Some("Thinking about \"q\".")
        );
        assert_eq!(ask(json!({"effort": "low", "exclude": true})), None);
        assert_eq!(ask(json!({"enabled": false})), None);
        assert_eq!(Completion::reasoning_for(&p, &json!({})), None);
        let mut c = completion(Kind::Chat);
        c.reasoning = Some("r".into());
        assert_eq!(c.response()["choices"][0]["message"]["reasoning"], "r");
        assert_eq!(c.reasoning_chunk("r")["choices"][0]["delta"]["reasoning"], "r");
    }

    #[test]
    fn tool_call_answers() {
        let mut c = completion(Kind::Chat);
        c.content = String::new();
        c.tool_call = Some(ToolCallDirective {
            name: "weather".into(),
            arguments: json!({"city": "Oslo"}),
        });
        let r = c.response();
        let m = &r["choices"][0]["message"];
        assert_eq!(m["content"], Value::Null);
        assert_eq!(m["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(r["choices"][0]["finish_reason"], "tool_calls");
        let chunks = c.tool_call_chunks();
        assert_eq!(
            chunks[0]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "call_chatcmpl-emu-1"
        );
        let args: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
            .collect();
        assert_eq!(args, "{\"city\":\"Oslo\"}");
        assert_eq!(c.finish_chunk()["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn chunk_shapes() {
        let c = completion(Kind::Chat);
        assert_eq!(
            c.role_chunk().unwrap()["choices"][0]["delta"]["role"],
            "assistant"
        );
        assert_eq!(c.content_chunk("x")["object"], "chat.completion.chunk");
        assert_eq!(c.finish_chunk()["choices"][0]["finish_reason"], "stop");
        assert_eq!(c.usage_chunk("a b")["choices"], json!([]));
        assert_eq!(c.error_chunk()["error"]["code"], "server_error");
        let t = completion(Kind::Text);
        assert!(t.role_chunk().is_none());
        assert_eq!(t.content_chunk("x")["choices"][0]["text"], "x");
        assert_eq!(t.response()["object"], "text_completion");
    }
}
