//! A broken provider's streams, for fault-injection tests: floods of any size (valid events, lines
//! that never end an event, a line that never ends, random bytes) generated a frame at a time so a
//! gigabyte costs the emulator one 64 KiB block, and answers trickled one byte per frame.
//!
//! Asked for with the `emulate` directive: `"flood": "events" | "lines" | "no_newline" | "garbage"`
//! with `"flood_bytes": N` replaces the answer; `"byte_delay_ms": N` sends every byte of the stream as
//! its own frame, N ms apart.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::stream::{Plan, Step};

/// Each flood frame (the last may be shorter).
const BLOCK: usize = 64 * 1024;

/// What a flood consists of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloodShape {
    /// Whole OpenAI chat chunks, each a valid event: a huge but well-formed answer.
    Events,
    /// `data: …` lines with no blank line between them: one event that never ends.
    Lines,
    /// Bytes with no line end at all: one line that never ends (SSE or NDJSON).
    NoNewline,
    /// Pseudo-random bytes.
    Garbage,
}

impl FloodShape {
    pub(crate) fn parse(name: &str) -> Result<FloodShape, String> {
        match name {
            "events" => Ok(FloodShape::Events),
            "lines" => Ok(FloodShape::Lines),
            "no_newline" => Ok(FloodShape::NoNewline),
            "garbage" => Ok(FloodShape::Garbage),
            other => Err(format!(
                "'flood' {other:?} is not one of events, lines, no_newline, garbage"
            )),
        }
    }

    /// One block of this shape; a flood repeats it.
    fn block(self) -> Bytes {
        let unit: Vec<u8> = match self {
            FloodShape::Events => {
                let text = "flood ".repeat(30);
                format!(
                    "data: {{\"id\":\"chatcmpl-flood\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"tiny\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
                )
                .into_bytes()
            }
            FloodShape::Lines => format!("data: {}\n", "x".repeat(250)).into_bytes(),
            FloodShape::NoNewline => vec![b'x'; 256],
            FloodShape::Garbage => {
                let mut state = 0x9E37_79B9_7F4A_7C15u64;
                (0..BLOCK)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 24) as u8
                    })
                    .collect()
            }
        };
        // Whole units only, so every block of `events` is whole events.
        Bytes::from(unit.repeat((BLOCK / unit.len()).max(1)))
    }
}

/// A flood in progress: the block to repeat and how many bytes are still to go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flood {
    block: Bytes,
    remaining: u64,
}

impl Flood {
    pub(crate) fn new(shape: FloodShape, bytes: u64) -> Flood {
        Flood {
            block: shape.block(),
            remaining: bytes,
        }
    }

    /// The next frame and whether any bytes are left after it.
    pub(crate) fn next_frame(&mut self) -> (Bytes, bool) {
        let len = self.block.len() as u64;
        // Whole blocks while they fit, then the rest (a partial `events` block still ends the
        // flood on whatever it cut; the events before it were whole).
        let take = len.min(self.remaining);
        self.remaining -= take;
        let frame = self
            .block
            .slice(..usize::try_from(take).unwrap_or(self.block.len()));
        (frame, self.remaining > 0)
    }
}

/// A wire's plan with the directive's hostile shapes applied: a flood replaces the answer (then the
/// stream ends, with `[DONE]` only after a flood of whole events), and a trickle sends every byte as
/// its own frame.
pub(crate) fn shaped(plan: Plan, flood: Option<(FloodShape, u64)>, trickle: Option<Duration>) -> Plan {
    let mut plan = match flood {
        None => plan,
        Some((shape, bytes)) => {
            let mut steps = VecDeque::new();
            steps.push_back(Step::Flood(Flood::new(shape, bytes)));
            steps.push_back(match shape {
                FloodShape::Events => Step::Done,
                _ => Step::End,
            });
            Plan {
                steps,
                keepalive: plan.keepalive,
            }
        }
    };
    if let Some(gap) = trickle {
        let mut steps = VecDeque::new();
        for step in plan.steps {
            match step {
                Step::Send(bytes) => {
                    for i in 0..bytes.len() {
                        if !steps.is_empty() {
                            steps.push_back(Step::Wait(gap));
                        }
                        steps.push_back(Step::Send(bytes.slice(i..=i)));
                    }
                }
                other => steps.push_back(other),
            }
        }
        plan.steps = steps;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut f: Flood) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let (frame, more) = f.next_frame();
            out.extend_from_slice(&frame);
            if !more {
                return out;
            }
        }
    }

    #[test]
    fn floods_have_their_size_and_shape() {
        let events = drain(Flood::new(FloodShape::Events, 3 * BLOCK as u64));
        assert_eq!(events.len(), 3 * BLOCK);
        let text = String::from_utf8(events).unwrap();
        let first = text.split("\n\n").next().unwrap();
        let json: serde_json::Value = serde_json::from_str(first.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(json["object"], "chat.completion.chunk");
        let lines = drain(Flood::new(FloodShape::Lines, 100_000));
        assert_eq!(lines.len(), 100_000);
        assert!(!lines.windows(2).any(|w| w == b"\n\n"));
        let none = drain(Flood::new(FloodShape::NoNewline, 70_000));
        assert!(!none.contains(&b'\n') && none.len() == 70_000);
        let garbage = drain(Flood::new(FloodShape::Garbage, 1000));
        assert_eq!(garbage.len(), 1000);
    }

    #[test]
    fn a_trickle_sends_one_byte_per_frame() {
        let plan = Plan {
            steps: VecDeque::from([Step::Send(Bytes::from_static(b"abc")), Step::Done]),
            keepalive: None,
        };
        let gap = Duration::from_millis(1);
        let t = shaped(plan, None, Some(gap));
        assert_eq!(
            Vec::from(t.steps),
            vec![
                Step::Send(Bytes::from_static(b"a")),
                Step::Wait(gap),
                Step::Send(Bytes::from_static(b"b")),
                Step::Wait(gap),
                Step::Send(Bytes::from_static(b"c")),
                Step::Done
            ]
        );
    }
}
