//! Relaying a provider's answer to the client.
//!
//! Streamed answers pass through byte for byte as they arrive, with two exceptions that keep the
//! client's SSE stream well-formed: bytes of an event that has not finished yet are held back until its
//! blank line arrives (almost always within the same read), and if the provider fails or falls silent
//! mid-stream the partial event is dropped and a final `data: {"error":…}` event is sent instead.
//! An event longer than the provider's `max_event_bytes` is such a failure too: what is held back is
//! bounded, and finding event ends looks at each byte once ([`EventBoundaries`]), so a provider that
//! never sends a blank line costs neither unbounded memory nor quadratic time.
//! Usage is read from the events on the way past. When the client goes away, the relay is dropped,
//! which drops the upstream response and so cancels the provider's work.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use moat_wire::error::ErrorBody;
use moat_wire::openai::Usage;
use moat_wire::sse::{EventBoundaries, SseFrame, SseParser};
use tokio::time::{Instant, Sleep};

use crate::translating::{translate, AfterEnd, Interrupted};
use crate::{Phase, UpstreamError, UpstreamSettings};

mod strip;
pub use strip::{strip_usage, usage_stripper};

/// How a relayed answer ended, reported once when the relay finishes or is dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayOutcome {
    /// The last usage object seen (OpenRouter and `include_usage` streams send one near the end).
    pub usage: Option<Usage>,
    /// Bytes sent to the client.
    pub bytes: u64,
    /// The provider's stream ended cleanly.
    pub completed: bool,
    /// The client went away before the end (the upstream request was cancelled).
    pub cancelled: bool,
    /// Why the relay ended early, when it did.
    pub error: Option<String>,
}

type Reporter = Box<dyn FnOnce(RelayOutcome) + Send>;

/// Rewrites complete events on their way to the client (e.g. restoring redacted values). Gets whole
/// events only, never a piece of one; events it leaves alone go back as they came (a `Bytes` handed
/// back costs no copy).
pub type Transform = Box<dyn FnMut(Bytes) -> Bytes + Send>;

/// Calls the reporter exactly once, from `Drop`, so that a client disconnect (which drops the body
/// stream without polling it to the end) is reported too.
struct Report {
    outcome: RelayOutcome,
    reporter: Option<Reporter>,
    finished: bool,
}

impl Drop for Report {
    fn drop(&mut self) {
        if !self.finished {
            self.outcome.cancelled = true;
        }
        if let Some(report) = self.reporter.take() {
            report(std::mem::take(&mut self.outcome));
        }
    }
}

/// Why the bytes feeding a relay stopped early.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The connection to the provider failed.
    Transport(reqwest::Error),
    /// A translator ended its output with an error event of its own (the provider's stream was
    /// malformed, over the event bound, or carried an error); the reason is for the outcome.
    Stopped(String),
}

impl From<reqwest::Error> for Fault {
    fn from(e: reqwest::Error) -> Fault {
        Fault::Transport(e)
    }
}

struct RelayState<S> {
    body: S,
    /// One idle timer for the whole relay, pushed back as each piece arrives: a deadline moved later
    /// is a store into the timer's entry, where a new time-out per piece would register a timer and
    /// remove it again for every chunk.
    idle_timer: Pin<Box<Sleep>>,
    /// Where events end; fails once an unfinished event passes the bound.
    boundaries: EventBoundaries,
    /// Bytes after the last complete event, held until the event completes.
    tail: BytesMut,
    idle: Duration,
    provider: String,
    transform: Option<Transform>,
    report: Report,
}

impl<S> RelayState<S> {
    /// Notes the usage of any of `events` (complete events) that carries one; the last one wins.
    /// Almost no chunk does: one substring search rejects it with no parse and no allocation, and
    /// only the chunk with a usage object (the last, in an `include_usage` stream) is parsed.
    fn observe(&mut self, events: &[u8]) {
        if !moat_wire::usage::has_usage_object(events) {
            return;
        }
        // Events before the first that mentions usage are not parsed at all.
        let from =
            moat_wire::usage::usage_key_at(events).map_or(0, |at| moat_wire::sse::event_start(events, at));
        let mut parser = SseParser::new();
        let mut frames = Vec::new();
        // An over-long line stops the parse; usage is then what was read before it.
        let _ = parser
            .feed(&events[from..], &mut frames)
            .and_then(|()| parser.finish(&mut frames));
        for frame in frames {
            if let SseFrame::Event(event) = frame {
                if let Some(usage) = moat_wire::usage::usage_from_chunk(&event.data) {
                    self.report.outcome.usage = Some(usage);
                }
            }
        }
    }

    /// Splits off what can go to the client now: everything up to the end of the last complete event.
    /// Only `chunk` is scanned; the held tail was scanned when it arrived.
    fn releasable(&mut self, chunk: Bytes) -> Result<Option<Bytes>, moat_wire::sse::EventTooLarge> {
        let Some(end) = self.boundaries.scan(&chunk)? else {
            self.tail.extend_from_slice(&chunk);
            return Ok(None);
        };
        let out = if self.tail.is_empty() {
            chunk.slice(..end)
        } else {
            self.tail.extend_from_slice(&chunk[..end]);
            self.tail.split().freeze()
        };
        self.tail.extend_from_slice(&chunk[end..]);
        Ok(Some(out))
    }

    fn transformed(&mut self, out: Bytes) -> Bytes {
        match &mut self.transform {
            Some(t) => t(out),
            None => out,
        }
    }

    fn fail(&mut self, message: String, code: &str) -> Bytes {
        self.tail.clear();
        self.report.outcome.error = Some(message.clone());
        self.report.finished = true;
        let body = ErrorBody::new(message, "upstream_error", Some(code));
        let json = String::from_utf8_lossy(&body.to_json_bytes()).into_owned();
        Bytes::from(moat_wire::sse::encode_data(&json))
    }
}

impl<S: Stream + Unpin> RelayState<S> {
    /// The next piece of the provider's body (`Some(None)` at its end); `None` when the idle time
    /// passed without one.
    async fn next_within_idle(&mut self) -> Option<Option<S::Item>> {
        self.idle_timer.as_mut().reset(Instant::now() + self.idle);
        poll_fn(|cx| {
            if let Poll::Ready(item) = self.body.poll_next_unpin(cx) {
                return Poll::Ready(Some(item));
            }
            self.idle_timer.as_mut().poll(cx).map(|()| None)
        })
        .await
    }
}

/// Relays a streamed (SSE) response. `on_done` is called exactly once with how it ended.
pub fn relay_stream(
    resp: reqwest::Response,
    settings: &UpstreamSettings,
    on_done: impl FnOnce(RelayOutcome) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    relay_byte_stream(resp.bytes_stream(), settings, None, Box::new(on_done))
}

/// The bound on one event of what the relay holds: the provider's own for its SSE, none for what a
/// translator wrote, which is whole events only (the translator bounds its input by the same
/// setting, and each output event is a bounded rewrite of one input event).
fn event_bound(settings: &UpstreamSettings, translated: bool) -> usize {
    if translated {
        usize::MAX
    } else {
        settings.max_event_bytes
    }
}

/// As [`relay_stream`], passing every complete event through `transform` first.
pub fn relay_stream_with(
    resp: reqwest::Response,
    settings: &UpstreamSettings,
    transform: Option<Transform>,
    on_done: impl FnOnce(RelayOutcome) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    relay_byte_stream(resp.bytes_stream(), settings, transform, Box::new(on_done))
}

/// As [`relay_stream_with`] for a provider that speaks another wire (Anthropic's events, Ollama's
/// NDJSON): its bytes go through `translator` first, so everything after it — holding back partial
/// events, reading usage for settlement, `transform`, the final error event — sees the OpenAI stream.
pub fn relay_stream_translated(
    resp: reqwest::Response,
    settings: &UpstreamSettings,
    translator: Box<dyn moat_translate::StreamTranslator>,
    transform: Option<Transform>,
    on_done: impl FnOnce(RelayOutcome) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    relay_framed(
        translated(resp.bytes_stream(), translator),
        settings,
        event_bound(settings, true),
        transform,
        Box::new(on_done),
    )
}

/// Feeds a byte stream through a translator (`crate::translating`), ending with what the translator
/// still owes. Once the translator has stopped (its final event, or an error event of its own), the
/// provider's stream is dropped rather than read to its end, and an early stop is passed on as
/// [`Fault::Stopped`].
fn translated<S>(
    body: S,
    translator: Box<dyn moat_translate::StreamTranslator>,
) -> std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, Fault>> + Send>>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    let stream = translate(body, translator, AfterEnd::Stop, |_| {});
    Box::pin(stream.map(|item| {
        item.map_err(|interrupted| match interrupted {
            Interrupted::Source(e) => Fault::Transport(e),
            Interrupted::Stopped(reason) => Fault::Stopped(reason),
        })
    }))
}

fn relay_byte_stream<S, E>(
    body: S,
    settings: &UpstreamSettings,
    transform: Option<Transform>,
    on_done: Reporter,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Fault>,
{
    relay_framed(body, settings, event_bound(settings, false), transform, on_done)
}

fn relay_framed<S, E>(
    body: S,
    settings: &UpstreamSettings,
    max_event: usize,
    transform: Option<Transform>,
    on_done: Reporter,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Fault>,
{
    let state = RelayState {
        body,
        idle_timer: Box::pin(tokio::time::sleep(settings.timeouts.idle)),
        boundaries: EventBoundaries::new(max_event),
        tail: BytesMut::new(),
        idle: settings.timeouts.idle,
        provider: settings.name.clone(),
        transform,
        report: Report {
            outcome: RelayOutcome::default(),
            reporter: Some(on_done),
            finished: false,
        },
    };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        loop {
            match s.next_within_idle().await.ok_or(()) {
                Ok(Some(Ok(chunk))) => match s.releasable(chunk) {
                    Ok(Some(out)) => {
                        s.observe(&out);
                        let out = s.transformed(out);
                        s.report.outcome.bytes += out.len() as u64;
                        return Some((Ok(out), Some(s)));
                    }
                    Ok(None) => {}
                    Err(too_large) => {
                        // Dropping the state drops the provider's response: nothing more is read.
                        let message = format!(
                            "provider `{}` sent an event longer than {} bytes (server.max_event_bytes) (mid-stream)",
                            s.provider, too_large.limit
                        );
                        let event = s.fail(message, "upstream_event_too_large");
                        return Some((Ok(event), None));
                    }
                },
                Ok(None) => {
                    // A provider that ends without a final blank line still had its last event
                    // delivered; the parser treats EOF as its end.
                    s.report.outcome.completed = true;
                    s.report.finished = true;
                    if s.tail.is_empty() {
                        return None;
                    }
                    let rest = s.tail.split().freeze();
                    s.observe(&rest);
                    let rest = s.transformed(rest);
                    s.report.outcome.bytes += rest.len() as u64;
                    return Some((Ok(rest), None));
                }
                Ok(Some(Err(e))) => match e.into() {
                    Fault::Transport(e) => {
                        let detail = UpstreamError::from_transport(&s.provider, &e, s.idle).to_string();
                        let event = s.fail(format!("{detail} (mid-stream)"), "upstream_stream_error");
                        return Some((Ok(event), None));
                    }
                    Fault::Stopped(reason) => {
                        // The translator already wrote its error event; only the outcome is left.
                        s.tail.clear();
                        s.report.outcome.error = Some(reason);
                        s.report.finished = true;
                        return None;
                    }
                },
                Err(_) => {
                    let err = UpstreamError::Timeout {
                        provider: s.provider.clone(),
                        phase: Phase::Idle,
                        after: s.idle,
                    };
                    let event = s.fail(format!("{err} (mid-stream)"), "upstream_timeout");
                    return Some((Ok(event), None));
                }
            }
        }
    })
}

/// Reads a whole (non-streamed) response body, with the idle time-out between pieces and the
/// provider's `max_response_bytes` bound.
pub async fn read_body(resp: reqwest::Response, settings: &UpstreamSettings) -> Result<Bytes, UpstreamError> {
    read_capped(resp, settings, settings.max_response_bytes).await
}

pub(crate) async fn read_capped(
    resp: reqwest::Response,
    settings: &UpstreamSettings,
    limit: usize,
) -> Result<Bytes, UpstreamError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(UpstreamError::TooLarge {
            provider: settings.name.clone(),
            limit,
        });
    }
    let mut body = resp.bytes_stream();
    let mut buf = BytesMut::new();
    let idle = settings.timeouts.idle;
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    provider: settings.name.clone(),
                    phase: Phase::Idle,
                    after: idle,
                })
            }
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(UpstreamError::from_transport(&settings.name, &e, idle)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(UpstreamError::TooLarge {
                        provider: settings.name.clone(),
                        limit,
                    });
                }
                if buf.is_empty() && body.size_hint().1 == Some(0) {
                    return Ok(chunk);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

/// Usage from a whole JSON response body, if it has one.
pub fn usage_of(body: &[u8]) -> Option<Usage> {
    moat_wire::usage::usage_from_response(body)
}

#[cfg(test)]
mod tests;
