//! The response side of an attempt: a streamed answer relayed as it arrives (with placeholders
//! restored and usage the client did not ask for taken out) and settled by its [`Outcome`] when it
//! ends, or a whole answer read within limits; and the per-request log line.

use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use moat_policy::pricing::Price;
use moat_upstream::relay::{self, RelayOutcome};
use moat_upstream::{UpstreamError, UpstreamSettings};
use moat_wire::openai::Usage;

use super::outcome::{Attempt, Outcome};
use crate::handlers::translated::Translation;
use crate::privacy::{Redactions, StreamRestorer};

/// A streamed answer: relayed as it arrives; `outcome` settles when it ends, however it ends.
pub(super) fn streamed_response(
    resp: moat_upstream::UpstreamResponse,
    settings: &UpstreamSettings,
    by: Attempt,
    (redactions, strip_usage): (Option<Redactions>, bool),
    outcome: Outcome,
) -> Response {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let transform: Option<relay::Transform> = match (redactions.map(StreamRestorer::new), strip_usage) {
        (None, false) => None,
        (None, true) => Some(relay::usage_stripper()),
        (Some(mut r), false) => Some(Box::new(move |bytes: Bytes| Bytes::from(r.transform(&bytes)))),
        (Some(mut r), true) => Some(Box::new(move |bytes: Bytes| {
            relay::strip_usage(Bytes::from(r.transform(&bytes)))
        })),
    };
    let translator = by.log.translation.stream();
    // A translated stream is OpenAI's SSE whatever the provider labelled its own (NDJSON, say).
    let content_type = content_type.filter(|_| translator.is_none());
    let on_done = move |relay: RelayOutcome| outcome.streamed(by, relay, status);
    let body: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>> =
        match translator {
            Some(t) => Box::pin(relay::relay_stream_translated(
                resp, settings, t, transform, on_done,
            )),
            None => Box::pin(relay::relay_stream_with(resp, settings, transform, on_done)),
        };
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("text/event-stream")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells a reverse proxy in front of moatd (nginx) not to buffer the stream either.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A whole answer as read, before it is settled and sent.
pub(super) struct WholeAnswer {
    pub(super) status: StatusCode,
    content_type: Option<HeaderValue>,
    pub(super) body: Bytes,
    pub(super) usage: Option<Usage>,
}

/// Reads a whole answer within limits (a failure here can still fall back: nothing went to the
/// client yet), in OpenAI's shape, with redacted values restored.
pub(super) async fn read_whole(
    resp: moat_upstream::UpstreamResponse,
    settings: &UpstreamSettings,
    translation: &Translation,
    redactions: Option<&Redactions>,
) -> Result<WholeAnswer, UpstreamError> {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = translation.whole(relay::read_body(resp, settings).await?)?;
    let usage = relay::usage_of(&body);
    let body = match redactions {
        Some(r) => Bytes::from(r.restore_json(&body)),
        None => body,
    };
    Ok(WholeAnswer {
        status,
        content_type,
        body,
        usage,
    })
}

impl WholeAnswer {
    /// The answer passed on byte for byte.
    pub(super) fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            self.content_type
                .unwrap_or(HeaderValue::from_static("application/json")),
        );
        response
    }
}

/// Copies the few client headers providers act on (see `moat_upstream::client::FORWARDED_HEADERS`).
pub(super) fn forwarded_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in &moat_upstream::FORWARDED_HEADERS {
        if let Some(v) = incoming.get(name) {
            out.insert(name.clone(), v.clone());
        }
    }
    out
}

/// The per-request log line's fields. Names, ids, sizes and usage only: never keys or text.
pub(super) struct RequestLog {
    pub(super) request_id: String,
    pub(super) provider: String,
    pub(super) model: String,
    pub(super) started: Instant,
    /// The answering model's price, for settling when the provider reports no cost.
    pub(super) price: Option<Price>,
    /// How this provider's answer is read back into OpenAI's shape.
    pub(super) translation: Translation,
    /// The request counted against its target's in-flight count and cap until this log is dropped.
    pub(super) in_flight: crate::routing::InFlight,
    /// A streamed answer's span, ended when the stream ends.
    pub(super) stream_span: Option<crate::observe::spans::Step>,
}

impl RequestLog {
    pub(super) fn answered(&self, usage: Option<&Usage>) {
        if let Some(u) = usage {
            self.in_flight.settle(u.prompt_tokens + u.completion_tokens);
        }
        tracing::debug!(
            request_id = %self.request_id,
            provider = %self.provider,
            model = %self.model,
            elapsed_us = self.started.elapsed().as_micros() as u64,
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            cost = usage.and_then(|u| u.cost),
            "answered"
        );
    }

    /// Ends a streamed answer's span with what the relay saw.
    pub(super) fn stream_ended(&mut self, outcome: &RelayOutcome) {
        let Some(step) = self.stream_span.take() else {
            return;
        };
        step.span.record("moat.bytes", outcome.bytes);
        step.span.record("moat.cancelled", outcome.cancelled);
        if let Some(u) = &outcome.usage {
            step.span.record("gen_ai.usage.input_tokens", u.prompt_tokens);
            step.span
                .record("gen_ai.usage.output_tokens", u.completion_tokens);
        }
        if outcome.completed || outcome.cancelled {
            step.ok();
        }
    }

    pub(super) fn stream_finished(&self, outcome: RelayOutcome) {
        let usage = outcome.usage.as_ref();
        if let Some(u) = usage {
            self.in_flight.settle(u.prompt_tokens + u.completion_tokens);
        }
        tracing::debug!(
            request_id = %self.request_id,
            provider = %self.provider,
            model = %self.model,
            elapsed_us = self.started.elapsed().as_micros() as u64,
            bytes = outcome.bytes,
            completed = outcome.completed,
            cancelled = outcome.cancelled,
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            cost = usage.and_then(|u| u.cost),
            "stream finished"
        );
        if let Some(error) = outcome.error {
            tracing::warn!(request_id = %self.request_id, %error, "stream ended early");
        }
    }
}
