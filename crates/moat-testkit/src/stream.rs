//! Server-sent-event streams: a pure plan of what to send and when, and a body that plays the plan one
//! frame at a time while counting whether the client stayed to the end.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use crate::completion::{Completion, Kind};
use crate::directive::Directive;
use crate::ResponseBody;

/// The comment OpenRouter sends while a request waits; clients must skip it.
pub const KEEPALIVE_COMMENT: &str = ": OPENROUTER PROCESSING\n\n";
const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";
/// A broken body makes the server drop what it has not yet written; waiting this long first lets the
/// chunks before the break reach the client, as they would before a real connection loss.
const RESET_GRACE: Duration = Duration::from_millis(50);

/// One thing the stream does next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Send these bytes as one body frame.
    Send(Bytes),
    /// Wait, sending keep-alive comments if the plan has an interval.
    Wait(Duration),
    /// Send `data: [DONE]`; the stream has completed.
    Done,
    /// Stop here without `[DONE]`, by the emulator's choice (after a mid-stream error chunk).
    End,
    /// Send these last bytes; the stream has completed (wires without `[DONE]`: Gemini, Bedrock).
    Last(Bytes),
    /// Fail the body so the server drops the connection.
    Reset,
    /// Send a flood, one block per frame (generated as it goes, never buffered).
    Flood(crate::hostile::Flood),
}

/// A stream's whole script, decided before the first byte goes out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) steps: VecDeque<Step>,
    pub(crate) keepalive: Option<Duration>,
}

/// How a completion streams under a directive.
pub(crate) fn plan(completion: &Completion, directive: &Directive) -> Plan {
    let pieces = split(&completion.content, directive.chunks);
    let mut steps = VecDeque::new();
    steps.push_back(Step::Send(Bytes::from_static(KEEPALIVE)));
    let mut data_sent = 0usize;
    let mut send = |steps: &mut VecDeque<Step>, chunk: &Value| {
        if let (Some(delay), true) = (directive.chunk_delay, data_sent > 0) {
            steps.push_back(Step::Wait(delay));
        }
        data_sent += 1;
        match chunk {
            Value::Object(members) if completion.usage_nulls && !members.contains_key("usage") => {
                let mut chunk = members.clone();
                chunk.insert("usage".into(), Value::Null);
                steps.push_back(Step::Send(sse(&Value::Object(chunk))));
            }
            _ => steps.push_back(Step::Send(sse(chunk))),
        }
    };
    if let Some(role) = completion.role_chunk() {
        send(&mut steps, &role);
    }
    if let (Some(reasoning), Kind::Chat) = (&completion.reasoning, completion.kind) {
        for piece in split(reasoning, None) {
            send(&mut steps, &completion.reasoning_chunk(&piece));
        }
    }
    let clamp = |k: Option<usize>| k.map(|k| k.min(pieces.len()));
    let (pause, error_at, reset_at) = (
        directive.pause.map(|(k, d)| (k.min(pieces.len()), d)),
        clamp(directive.error_after_chunks),
        clamp(directive.reset_after_chunks),
    );
    // Position `sent` is the moment after `sent` content chunks have gone out.
    for sent in 0..=pieces.len() {
        if let Some((_, wait)) = pause.filter(|(k, _)| *k == sent) {
            steps.push_back(Step::Wait(wait));
        }
        if error_at == Some(sent) {
            steps.push_back(Step::Send(sse(&completion.error_chunk())));
            steps.push_back(Step::End);
            return Plan {
                steps,
                keepalive: directive.keepalive_every,
            };
        }
        if reset_at == Some(sent) {
            steps.push_back(Step::Wait(RESET_GRACE));
            steps.push_back(Step::Reset);
            return Plan {
                steps,
                keepalive: directive.keepalive_every,
            };
        }
        if let Some(piece) = pieces.get(sent) {
            send(&mut steps, &completion.content_chunk(piece));
        }
    }
    for chunk in completion.tool_call_chunks() {
        send(&mut steps, &chunk);
    }
    send(&mut steps, &completion.finish_chunk());
    send(&mut steps, &completion.usage_chunk(&pieces.concat()));
    if let Some(delay) = directive.chunk_delay {
        steps.push_back(Step::Wait(delay));
    }
    steps.push_back(Step::Done);
    Plan {
        steps,
        keepalive: directive.keepalive_every,
    }
}

/// The `pause` and `reset_after_chunks` directives at the moment after `sent` content chunks, for
/// the other wires' plans (Anthropic, Ollama): queues the pause, or the break. True when the stream
/// breaks here and nothing more may be queued.
pub(crate) fn interrupt(steps: &mut VecDeque<Step>, directive: &Directive, sent: usize) -> bool {
    if let Some((_, wait)) = directive.pause.filter(|(k, _)| *k == sent) {
        steps.push_back(Step::Wait(wait));
    }
    if directive.reset_after_chunks == Some(sent) {
        steps.push_back(Step::Wait(RESET_GRACE));
        steps.push_back(Step::Reset);
        return true;
    }
    false
}

fn sse(chunk: &Value) -> Bytes {
    Bytes::from(format!("data: {chunk}\n\n"))
}

/// Splits an answer into stream pieces: one per word (each word keeps the whitespace before it), or
/// exactly `n` pieces of near-equal length, repeating the text first if it has fewer than `n` characters.
pub(crate) fn split(content: &str, n: Option<usize>) -> Vec<String> {
    let Some(n) = n else {
        let mut pieces: Vec<String> = Vec::new();
        let mut prev_space = false;
        for c in content.chars() {
            // Whitespace after a word opens the next piece, so pieces read " said:", " hi".
            let opens_piece = c.is_whitespace() && !prev_space;
            match pieces.last_mut() {
                Some(last) if !opens_piece => last.push(c),
                _ => pieces.push(c.to_string()),
            }
            prev_space = c.is_whitespace();
        }
        // Trailing whitespace belongs to the last word rather than being a piece of its own.
        if pieces.len() > 1 && pieces.last().is_some_and(|p| p.trim().is_empty()) {
            let tail = pieces.pop().unwrap_or_default();
            if let Some(last) = pieces.last_mut() {
                last.push_str(&tail);
            }
        }
        return pieces;
    };
    let (unit, separator) = if content.is_empty() {
        (".", "")
    } else {
        (content, " ")
    };
    let mut text = unit.to_owned();
    while text.chars().count() < n {
        text.push_str(separator);
        text.push_str(unit);
    }
    let chars: Vec<char> = text.chars().collect();
    let (base, extra) = (chars.len() / n, chars.len() % n);
    let mut pieces = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        pieces.push(chars[start..start + len].iter().collect());
        start += len;
    }
    pieces
}

/// How many streams ended which way; shared by every stream of one emulator.
#[derive(Debug, Default)]
pub(crate) struct StreamCounters {
    pub(crate) completed: AtomicUsize,
    pub(crate) cancelled: AtomicUsize,
}

/// Lives inside a streaming body: dropped before the plan finished means the client went away.
struct Guard {
    counters: Arc<StreamCounters>,
    finished: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.finished {
            self.counters.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct Player {
    steps: VecDeque<Step>,
    keepalive: Option<Duration>,
    guard: Guard,
}

impl Player {
    /// The next body frame, sleeping as the plan says; `None` ends the body.
    async fn next_frame(&mut self) -> Option<Result<Frame<Bytes>, io::Error>> {
        loop {
            match self.steps.pop_front()? {
                Step::Send(bytes) => return Some(Ok(Frame::data(bytes))),
                Step::Flood(mut flood) => {
                    let (frame, more) = flood.next_frame();
                    if more {
                        self.steps.push_front(Step::Flood(flood));
                    }
                    return Some(Ok(Frame::data(frame)));
                }
                Step::Wait(total) => match self.keepalive {
                    Some(every) if every < total => {
                        tokio::time::sleep(every).await;
                        self.steps.push_front(Step::Wait(total - every));
                        return Some(Ok(Frame::data(Bytes::from_static(KEEPALIVE))));
                    }
                    _ => tokio::time::sleep(total).await,
                },
                Step::Done => {
                    // Counted as the last frame is handed over, so a client that has read `[DONE]`
                    // always sees the count.
                    self.guard.finished = true;
                    self.guard.counters.completed.fetch_add(1, Ordering::SeqCst);
                    return Some(Ok(Frame::data(Bytes::from_static(DONE))));
                }
                Step::End => {
                    self.guard.finished = true;
                    return None;
                }
                Step::Last(bytes) => {
                    self.guard.finished = true;
                    self.guard.counters.completed.fetch_add(1, Ordering::SeqCst);
                    return Some(Ok(Frame::data(bytes)));
                }
                Step::Reset => {
                    self.guard.finished = true;
                    self.steps.clear();
                    return Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "emulated reset",
                    )));
                }
            }
        }
    }
}

/// A response body that plays `plan`, shaped by the directive's flood and trickle, frame by frame;
/// nothing is buffered ahead.
pub(crate) fn shaped_body(plan: Plan, directive: &Directive, counters: Arc<StreamCounters>) -> ResponseBody {
    body(
        crate::hostile::shaped(plan, directive.flood, directive.trickle),
        counters,
    )
}

/// A response body that plays `plan` frame by frame; nothing is buffered ahead.
pub(crate) fn body(plan: Plan, counters: Arc<StreamCounters>) -> ResponseBody {
    let player = Player {
        steps: plan.steps,
        keepalive: plan.keepalive,
        guard: Guard {
            counters,
            finished: false,
        },
    };
    let frames = futures_util::stream::unfold(player, |mut player| async move {
        let frame = player.next_frame().await?;
        Some((frame, player))
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

/// A body that fails at once: headers were sent, then the connection breaks.
pub(crate) fn reset_body() -> ResponseBody {
    let frames = futures_util::stream::once(async {
        tokio::time::sleep(RESET_GRACE).await;
        Err::<Frame<Bytes>, _>(io::Error::new(io::ErrorKind::ConnectionReset, "emulated reset"))
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Price;

    fn completion(content: &str) -> Completion {
        Completion {
            kind: Kind::Chat,
            id: "chatcmpl-emu-1".to_owned(),
            created: 1,
            model: "tiny".to_owned(),
            content: content.to_owned(),
            prompt_tokens: 1,
            price: Price {
                prompt: 0.0,
                completion: 0.0,
            },
            probe: Value::Null,
            reasoning: None,
            tool_call: None,
            cached_tokens: 0,
            outputs: 1,
            choices: 1,
            usage_nulls: false,
        }
    }

    fn texts(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| match s {
                Step::Send(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn split_by_words_keeps_every_character() {
        assert_eq!(split("You said: hi", None), vec!["You", " said:", " hi"]);
        assert_eq!(split(" a  b ", None), vec![" a", "  b "]);
        assert_eq!(split("x", None), vec!["x"]);
        assert!(split("", None).is_empty());
    }

    #[test]
    fn split_into_n_pads_by_repeating() {
        assert_eq!(split("abcdefg", Some(3)), vec!["abc", "de", "fg"]);
        let many = split("ab", Some(5));
        assert_eq!(many.len(), 5);
        assert_eq!(many.concat(), "ab ab");
        assert_eq!(split("", Some(2)), vec![".", "."]);
    }

    #[test]
    fn default_plan_order() {
        let plan = plan(&completion("You said: hi"), &Directive::default());
        let t = texts(&plan);
        assert_eq!(t[0], ": OPENROUTER PROCESSING\n\n");
        assert!(t[1].contains("\"role\":\"assistant\""));
        assert!(t[2].contains("\"content\":\"You\""));
        assert!(t[5].contains("\"finish_reason\":\"stop\""));
        assert!(t[6].contains("\"choices\":[]") && t[6].contains("\"cost\""));
        assert_eq!(t[7], "Done");
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn pause_error_and_reset_positions() {
        let d = Directive {
            pause: Some((1, Duration::from_millis(9))),
            ..Directive::default()
        };
        let t = texts(&plan(&completion("a b c"), &d));
        assert!(t[2].contains("\"a\"") && t[3] == "Wait(9ms)" && t[4].contains("\" b\""));

        let d = Directive {
            error_after_chunks: Some(2),
            ..Directive::default()
        };
        let t = texts(&plan(&completion("a b c"), &d));
        assert!(t[4].contains("Emulated mid-stream failure"));
        assert_eq!(t[5], "End");
        assert_eq!(t.len(), 6);

        let d = Directive {
            reset_after_chunks: Some(99),
            ..Directive::default()
        };
        let t = texts(&plan(&completion("a b"), &d));
        assert_eq!(t[t.len() - 2..], ["Wait(50ms)", "Reset"]);
        assert!(!t.iter().any(|s| s.contains("finish_reason\":\"stop")));
    }

    #[test]
    fn reasoning_streams_before_the_answer() {
        let mut c = completion("a b");
        c.reasoning = Some("think hard".into());
        let t = texts(&plan(&c, &Directive::default()));
        assert!(t[2].contains("\"reasoning\":\"think\"") && t[3].contains("\"reasoning\":\" hard\""));
        assert!(t[4].contains("\"content\":\"a\""));
    }

    #[test]
    fn include_usage_puts_a_null_usage_in_every_other_chunk_as_openai_does() {
        let data = |c: &Completion| -> Vec<Value> {
            texts(&plan(c, &Directive::default()))
                .iter()
                .filter_map(|t| t.strip_prefix("data: "))
                .map(|t| serde_json::from_str(t.trim_end()).unwrap())
                .collect()
        };
        let without = data(&completion("a b"));
        assert_eq!(without.iter().filter(|c| c.get("usage").is_some()).count(), 1);

        let mut asked = completion("a b");
        asked.usage_nulls = true;
        let chunks = data(&asked);
        let (last, rest) = chunks.split_last().unwrap();
        assert!(last["usage"]["total_tokens"].is_u64() && last["choices"] == serde_json::json!([]));
        assert!(
            rest.len() >= 4
                && rest
                    .iter()
                    .all(|c| c["usage"].is_null() && c.get("usage").is_some())
        );
    }

    #[test]
    fn chunk_delay_between_data_chunks() {
        let d = Directive {
            chunk_delay: Some(Duration::from_millis(1)),
            ..Directive::default()
        };
        let t = texts(&plan(&completion("a b"), &d));
        let waits = t.iter().filter(|s| s.starts_with("Wait")).count();
        // role, a, b, finish, usage: four gaps, plus one before [DONE].
        assert_eq!(waits, 5);
    }
}
