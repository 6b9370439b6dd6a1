//! Building the chat request body: messages (history, system prompt, the new turn with images) and
//! OpenRouter's reasoning and provider preferences. Pure: bytes of files come in, JSON goes out.

use std::path::Path;

use base64::Engine;
use moat_wire::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, ProviderPreferences, Reasoning,
    StreamOptions, UsageAccounting,
};
use serde_json::{Map, Value};

use crate::invocation::Effort;
use crate::Error;

/// Images larger than this are refused: providers reject them anyway, after the upload.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// Choices that shape every request of one invocation, after the profile and the flags are merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub system: Option<String>,
    pub effort: Option<Effort>,
    pub show_reasoning: bool,
    pub sort: Option<String>,
    pub providers: Vec<String>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    /// The profile's `extra_body`, merged over the built body last.
    pub extra_body: Map<String, Value>,
}

impl Options {
    /// OpenRouter's `reasoning` object, or none when reasoning was not mentioned: servers that do not
    /// know the member then never see it. Without `-rr` the reasoning is excluded from the answer,
    /// since it would not be shown.
    pub fn reasoning(&self) -> Option<Reasoning> {
        let mut r = Reasoning::default();
        match &self.effort {
            Some(Effort::Level(level)) => r.effort = Some(level.clone()),
            Some(Effort::Tokens(n)) => r.max_tokens = Some(*n),
            None if self.show_reasoning => r.enabled = Some(true),
            None => return None,
        }
        if !self.show_reasoning {
            r.exclude = Some(true);
        }
        Some(r)
    }

    /// OpenRouter's provider preferences from `-p` and `--provider`.
    pub fn provider(&self) -> Option<ProviderPreferences> {
        if self.sort.is_none() && self.providers.is_empty() {
            return None;
        }
        Some(ProviderPreferences {
            sort: self.sort.clone().map(Value::String),
            order: (!self.providers.is_empty()).then(|| self.providers.clone()),
            ..ProviderPreferences::default()
        })
    }
}

/// An image file as an `image_url` part holding a `data:` URL.
pub fn image_part(path: &Path, bytes: &[u8]) -> Result<ContentPart, Error> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mime = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => {
            return Err(Error::usage(format!(
                "{}: only .png, .jpg, .jpeg, .gif and .webp images can be attached",
                path.display()
            )))
        }
    };
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(Error::usage(format!("{} is larger than 20 MiB", path.display())));
    }
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(ContentPart::image_url(format!("data:{mime};base64,{data}")))
}

/// The new user turn: plain text, or text followed by image parts.
pub fn user_message(prompt: &str, images: Vec<ContentPart>) -> ChatMessage {
    if images.is_empty() {
        return ChatMessage::user(prompt);
    }
    let mut parts = vec![ContentPart::text(prompt)];
    parts.extend(images);
    ChatMessage {
        role: "user".to_owned(),
        content: Some(MessageContent::Parts(parts)),
        ..ChatMessage::default()
    }
}

/// History, then the turn. A system prompt replaces the history's own (or goes first).
pub fn messages(history: &[ChatMessage], system: Option<&str>, turn: ChatMessage) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(history.len() + 2);
    let rest = match history.first() {
        Some(first) if first.role == "system" && system.is_some() => &history[1..],
        _ => history,
    };
    if let Some(system) = system {
        out.push(ChatMessage::system(system));
    }
    out.extend(rest.iter().cloned());
    out.push(turn);
    out
}

/// The JSON body for one model. Streamed requests ask for usage in the last chunk (OpenAI's
/// `stream_options`, OpenRouter's `usage.include`) so the stats line can show tokens and cost.
pub fn body(model: &str, messages: Vec<ChatMessage>, opts: &Options, stream: bool) -> Result<Vec<u8>, Error> {
    let mut request = ChatCompletionRequest::new(model, messages);
    request.max_tokens = opts.max_tokens;
    request.temperature = opts.temperature;
    request.reasoning = opts.reasoning();
    request.provider = opts.provider();
    request.usage = Some(UsageAccounting {
        include: Some(true),
        ..UsageAccounting::default()
    });
    if stream {
        request.stream = Some(true);
        request.stream_options = Some(StreamOptions {
            include_usage: Some(true),
            ..StreamOptions::default()
        });
    }
    let mut value = serde_json::to_value(&request)
        .map_err(|e| Error::usage(format!("cannot encode the request: {e}")))?;
    if let Value::Object(map) = &mut value {
        for (k, v) in &opts.extra_body {
            map.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&value).map_err(|e| Error::usage(format!("cannot encode the request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn plain_streamed_body() {
        let b = parse(&body("tiny", vec![ChatMessage::user("hi")], &Options::default(), true).unwrap());
        assert_eq!(b["model"], "tiny");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["usage"]["include"], true);
        assert!(b.get("reasoning").is_none() && b.get("provider").is_none());
        assert_eq!(b["messages"], json!([{"role": "user", "content": "hi"}]));
    }

    #[test]
    fn reasoning_and_provider_mapping() {
        let mut o = Options {
            effort: Some(Effort::Level("high".into())),
            sort: Some("price".into()),
            providers: vec!["openai".into()],
            max_tokens: Some(5),
            temperature: Some(0.5),
            ..Options::default()
        };
        let b = parse(&body("m", vec![ChatMessage::user("x")], &o, false).unwrap());
        assert_eq!(b["reasoning"], json!({"effort": "high", "exclude": true}));
        assert_eq!(b["provider"], json!({"order": ["openai"], "sort": "price"}));
        assert_eq!(
            (b["max_tokens"].clone(), b["temperature"].clone()),
            (json!(5), json!(0.5))
        );
        assert!(b.get("stream").is_none());
        o.show_reasoning = true;
        o.effort = Some(Effort::Tokens(100));
        assert_eq!(
            serde_json::to_value(o.reasoning()).unwrap(),
            json!({"max_tokens": 100})
        );
        o.effort = None;
        assert_eq!(
            serde_json::to_value(o.reasoning()).unwrap(),
            json!({"enabled": true})
        );
    }

    #[test]
    fn extra_body_wins() {
        let o = Options {
            temperature: Some(1.0),
            extra_body: json!({"temperature": 0.1, "emulate": {"chunks": 2}})
                .as_object()
                .unwrap()
                .clone(),
            ..Options::default()
        };
        let b = parse(&body("m", vec![ChatMessage::user("x")], &o, true).unwrap());
        assert_eq!(b["temperature"], 0.1);
        assert_eq!(b["emulate"]["chunks"], 2);
    }

    #[test]
    fn history_and_system() {
        let history = vec![
            ChatMessage::system("old"),
            ChatMessage::user("a"),
            ChatMessage::assistant("b"),
        ];
        let m = messages(&history, Some("new"), ChatMessage::user("c"));
        let roles: Vec<_> = m.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(m[0], ChatMessage::system("new"));
        let m = messages(&history, None, ChatMessage::user("c"));
        assert_eq!(m[0], ChatMessage::system("old"));
        assert_eq!(messages(&[], Some("s"), ChatMessage::user("c")).len(), 2);
    }

    #[test]
    fn images() {
        let part = image_part(Path::new("a.PNG"), b"\x89PNG").unwrap();
        assert_eq!(part.image_url.unwrap().url, "data:image/png;base64,iVBORw==");
        assert!(image_part(Path::new("a.bmp"), b"x").is_err());
        let m = user_message("look", vec![ContentPart::image_url("https://x/y.jpg")]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["content"][0], json!({"type": "text", "text": "look"}));
        assert_eq!(v["content"][1]["image_url"]["url"], "https://x/y.jpg");
    }
}
