//! Decoding an answer: a streamed chat completion (SSE, via `moat_wire`'s parser) or a whole JSON
//! response, into text, reasoning, usage and provider. Works on any `Read`, so it is tested on bytes.

use std::io::Read;

use moat_wire::error::ErrorBody;
use moat_wire::openai::{ChatCompletionChunk, ChatCompletionResponse, MessageContent, Usage};
use moat_wire::sse::{SseFrame, SseParser};

use crate::Error;

/// A piece of the answer as it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Reasoning(&'a str),
    Content(&'a str),
}

/// Everything known about one answer once it is complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub content: String,
    pub reasoning: String,
    pub usage: Option<Usage>,
    /// OpenRouter names the provider that served the request.
    pub provider: Option<String>,
    /// The model the server says answered (OpenRouter resolves `openrouter/auto`, aliases, fallbacks).
    pub model: Option<String>,
    pub finish_reason: Option<String>,
}

/// Reads an SSE chat stream to its end, handing each piece to `on_piece` as soon as it is decoded.
///
/// A stream that reports an error chunk (OpenRouter's mid-stream failure) or breaks off before any
/// finish reason or `[DONE]` is an error: a half answer must not look like a whole one.
pub fn read_stream(
    reader: &mut dyn Read,
    on_piece: &mut dyn FnMut(Piece<'_>) -> Result<(), Error>,
) -> Result<Answer, Error> {
    let mut parser = SseParser::new();
    let mut frames = Vec::new();
    let mut answer = Answer::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Network(format!("the answer broke off: {e}"))),
        };
        if n == 0 {
            parser.finish(&mut frames).map_err(stream_error)?;
        } else {
            parser.feed(&buf[..n], &mut frames).map_err(stream_error)?;
        }
        for frame in frames.drain(..) {
            let SseFrame::Event(event) = frame else {
                continue; // keep-alive comments such as ": OPENROUTER PROCESSING"
            };
            if event.is_done() {
                return Ok(answer);
            }
            apply_chunk(&event.data, &mut answer, on_piece)?;
        }
        if n == 0 {
            return match answer.finish_reason {
                Some(_) => Ok(answer),
                None => Err(Error::Network(
                    "the answer broke off before it was finished".into(),
                )),
            };
        }
    }
}

fn stream_error(e: moat_wire::sse::SseError) -> Error {
    Error::Network(format!("unreadable answer stream: {e}"))
}

fn apply_chunk(
    data: &str,
    answer: &mut Answer,
    on_piece: &mut dyn FnMut(Piece<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    let chunk: ChatCompletionChunk = serde_json::from_str(data).map_err(|e| {
        Error::Network(format!(
            "the server sent a chunk that is not a chat completion: {e}"
        ))
    })?;
    if let Some(error) = chunk.error {
        return Err(Error::Api {
            context: "the answer failed midway".to_owned(),
            message: error.message,
        });
    }
    if let Some(provider) = chunk.provider.filter(|p| !p.is_empty()) {
        answer.provider = Some(provider);
    }
    if !chunk.model.is_empty() {
        answer.model = Some(chunk.model);
    }
    if chunk.usage.is_some() {
        answer.usage = chunk.usage;
    }
    // Only the first choice: moat never asks for n > 1.
    if let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) {
        if let Some(text) = choice.delta.reasoning.as_deref().filter(|t| !t.is_empty()) {
            answer.reasoning.push_str(text);
            on_piece(Piece::Reasoning(text))?;
        }
        if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
            answer.content.push_str(text);
            on_piece(Piece::Content(text))?;
        }
        if choice.finish_reason.is_some() {
            answer.finish_reason = choice.finish_reason;
        }
    }
    Ok(())
}

/// A whole (non-streamed) chat response.
pub fn from_response(body: &[u8]) -> Result<Answer, Error> {
    let response: ChatCompletionResponse = serde_json::from_slice(body)
        .map_err(|e| Error::Network(format!("the server's answer is not a chat completion: {e}")))?;
    let provider = response.provider.filter(|p| !p.is_empty());
    let choice = response.choices.into_iter().next();
    let (content, reasoning, finish_reason) = match choice {
        Some(c) => (
            c.message.content.as_ref().map(text_of).unwrap_or_default(),
            c.message.reasoning.unwrap_or_default(),
            c.finish_reason,
        ),
        None => Default::default(),
    };
    Ok(Answer {
        content,
        reasoning,
        usage: response.usage,
        provider,
        model: (!response.model.is_empty()).then_some(response.model),
        finish_reason,
    })
}

fn text_of(content: &MessageContent) -> String {
    content.texts().collect::<Vec<_>>().join("")
}

/// The one-line message of an error response body, or the status text when the body says nothing.
pub fn error_message(status: u16, body: &[u8]) -> String {
    let message = ErrorBody::from_slice(body)
        .map(|b| b.error.message)
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned()
        });
    let hint = match status {
        401 => " (check the key: `moat doctor`, `moat login`)",
        402 => " (out of credits or over the key's spend limit)",
        _ => "",
    };
    let message = message.lines().next().unwrap_or_default().to_owned();
    match message.is_empty() {
        true => format!("HTTP {status}{hint}"),
        false => format!("HTTP {status}: {message}{hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(bytes: &[u8]) -> (Result<Answer, Error>, Vec<String>) {
        let mut seen = Vec::new();
        let mut on = |p: Piece<'_>| {
            seen.push(match p {
                Piece::Reasoning(t) => format!("R:{t}"),
                Piece::Content(t) => format!("C:{t}"),
            });
            Ok(())
        };
        // One byte at a time: chunk boundaries must not matter.
        let mut reader = OneByte(bytes);
        let r = read_stream(&mut reader, &mut on);
        (r, seen)
    }

    struct OneByte<'a>(&'a [u8]);
    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    const STREAM: &str = ": OPENROUTER PROCESSING\n\n\
        data: {\"model\":\"m\",\"provider\":\"Emu\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
        data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"think\"}}]}\n\n\
        data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n\
        data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n\
        data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,\"cost\":0.5}}\n\n\
        data: [DONE]\n\n";

    #[test]
    fn decodes_a_stream() {
        let (answer, seen) = collect(STREAM.as_bytes());
        let answer = answer.unwrap();
        assert_eq!(seen, ["R:think", "C:Hel", "C:lo"]);
        assert_eq!(answer.content, "Hello");
        assert_eq!(answer.provider.as_deref(), Some("Emu"));
        assert_eq!(answer.model.as_deref(), Some("m"));
        assert_eq!(answer.usage.unwrap().cost, Some(0.5));
    }

    #[test]
    fn broken_and_failed_streams_are_errors() {
        let cut = &STREAM[..STREAM.find("lo\"").unwrap()];
        assert!(matches!(collect(cut.as_bytes()).0, Err(Error::Network(_))));
        let failed = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n\
            data: {\"error\":{\"code\":\"server_error\",\"message\":\"boom\"},\"choices\":[]}\n\n";
        let (r, seen) = collect(failed.as_bytes());
        assert_eq!(seen, ["C:a"]);
        assert!(r.unwrap_err().to_string().contains("boom"));
        // No [DONE] but a finish reason: complete.
        let no_done =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}";
        assert_eq!(collect(no_done.as_bytes()).0.unwrap().content, "a");
        assert!(collect(b"data: not json\n\n").0.is_err());
    }

    #[test]
    fn whole_response_and_errors() {
        let body = br#"{"model":"m","provider":"P","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning":"r"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
        let a = from_response(body).unwrap();
        assert_eq!((a.content.as_str(), a.reasoning.as_str()), ("hi", "r"));
        assert_eq!(a.provider.as_deref(), Some("P"));
        let e = error_message(401, br#"{"error":{"message":"Incorrect API key","type":"x"}}"#);
        assert!(
            e.starts_with("HTTP 401: Incorrect API key") && e.contains("moat login"),
            "{e}"
        );
        assert_eq!(error_message(502, b""), "HTTP 502");
        assert_eq!(error_message(500, b"oops\nmore"), "HTTP 500: oops");
    }
}
