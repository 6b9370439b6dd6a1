//! The one middleware every route goes through: request id, server span, in-flight gauges, and the
//! request's metrics, recorded when the last byte of its body has gone (or the client left).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderValue};
use http_body::Frame;
use tracing::{Instrument, Span};

use super::metrics as m;
use super::{handles, spans, Observation};
use crate::gateway::Gateway;

/// The endpoint label: a fixed set, whatever path the client sent (`/api/v1/x` counts as `/v1/x`).
pub(crate) fn route_of(path: &str) -> &'static str {
    let path = path
        .strip_prefix("/api")
        .filter(|p| p.starts_with("/v1/"))
        .unwrap_or(path);
    match path {
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/completions" => "/v1/completions",
        "/v1/embeddings" => "/v1/embeddings",
        "/v1/messages" => "/v1/messages",
        "/v1/messages/count_tokens" => "/v1/messages/count_tokens",
        "/v1/responses" => "/v1/responses",
        p if p.starts_with("/v1/responses/") => "/v1/responses/{id}",
        "/v1/models" => "/v1/models",
        p if p.starts_with("/v1/models/") => "/v1/models/{id}",
        "/v1/key" | "/v1/auth/key" => "/v1/key",
        "/health" => "/health",
        "/ready" => "/ready",
        "/metrics" => "/metrics",
        p if p.starts_with("/admin/") => "/admin",
        p if p == "/ui" || p.starts_with("/ui/") => "/ui",
        _ => "other",
    }
}

/// Probes and scrapes come every few seconds and say nothing about traffic: no span for them.
fn traced(route: &str) -> bool {
    !matches!(route, "/health" | "/ready" | "/metrics")
}

pub(crate) async fn observe(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(req.uri().path());
    let request_id = gw.next_request_id();
    let span = if traced(route) {
        spans::server(req.method(), route, req.uri().path(), &request_id, req.headers())
    } else {
        Span::none()
    };
    let obs = Arc::new(Observation::new(request_id, span.clone()));
    req.extensions_mut().insert(obs.clone());
    handles::requests_in_flight().increment(1.0);
    let mut end = End {
        obs,
        route,
        status: 0,
        started,
        first_byte: None,
        streamed: false,
    };
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    end.status = status.as_u16();
    span.record("http.response.status_code", end.status);
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let headers = response.headers_mut();
    if !headers.contains_key("x-request-id") {
        if let Ok(v) = HeaderValue::from_str(&end.obs.request_id) {
            headers.insert("x-request-id", v);
        }
    }
    if let Some(outcome) = headers
        .get(crate::cache::response::HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let outcome = match outcome {
            "hit" => "hit",
            "miss" => "miss",
            _ => "bypass",
        };
        metrics::counter!(m::RESPONSE_CACHE, "outcome" => outcome).increment(1);
    }
    end.streamed = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if end.streamed {
        handles::streams_in_flight().increment(1.0);
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(Timed {
            inner: body,
            end: Some(end),
        }),
    )
}

/// A response body that notes when its first byte went and records the request when it ends.
struct Timed {
    inner: Body,
    end: Option<End>,
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(end), Some(data)) = (self.end.as_mut(), frame.data_ref()) {
                    if end.first_byte.is_none() && !data.is_empty() {
                        end.first_byte = Some(Instant::now());
                    }
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(end) = self.end.take() {
                    end.record();
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        // The client left before the end, or the body was empty and never polled.
        if let Some(end) = self.end.take() {
            end.record();
        }
    }
}

/// What the layer knows of a request until its body ends.
struct End {
    obs: Arc<Observation>,
    route: &'static str,
    status: u16,
    started: Instant,
    first_byte: Option<Instant>,
    streamed: bool,
}

impl End {
    fn record(self) {
        let now = Instant::now();
        handles::requests(self.route, self.status).increment(1);
        handles::requests_in_flight().decrement(1.0);
        if self.streamed {
            handles::streams_in_flight().decrement(1.0);
        }
        let facts = self.obs.snapshot();
        let Some(operation) = facts.operation else {
            return;
        };
        let h = handles::genai((
            operation,
            facts.request_model,
            facts.provider,
            self.route,
            self.status,
            facts.team,
        ));
        h.duration.record(now.duration_since(self.started).as_secs_f64());
        if let Some(n) = facts.input_tokens {
            h.input_tokens.record(n as f64);
        }
        if let Some(n) = facts.output_tokens {
            h.output_tokens.record(n as f64);
        }
        let Some(first) = self.first_byte.filter(|_| (200..300).contains(&self.status)) else {
            return;
        };
        h.ttft.record(first.duration_since(self.started).as_secs_f64());
        if let Some(out) = facts.output_tokens.filter(|n| self.streamed && *n > 1) {
            h.tpot
                .record(now.duration_since(first).as_secs_f64() / (out - 1) as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn routes_are_a_fixed_set_whatever_the_path() {
        assert_eq!(route_of("/api/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(route_of("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(route_of("/admin/keys/key_1/revoke"), "/admin");
        assert_eq!(route_of("/ui/app.js"), "/ui");
        assert_eq!(route_of("/v1/no-such-thing-12345"), "other");
        assert_eq!(route_of("/api/health"), "other");
    }
}
