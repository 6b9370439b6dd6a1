//! The spans of a request, named and attributed for OpenTelemetry (`otel.*` fields are read by
//! `tracing-opentelemetry`; the `gen_ai.*` ones follow the GenAI semantic conventions). Child spans
//! take their parent explicitly, so they need not be entered across awaits. A span holds names,
//! numbers and ids, never a prompt, an answer or a key.

use http::HeaderMap;
use opentelemetry::propagation::Extractor;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads W3C trace context (`traceparent`, `tracestate`) from request headers.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The server span of one request, continuing the caller's trace when it sent a `traceparent`
/// (read by the propagator the binary installs; without one this is a no-op).
pub(crate) fn server(
    method: &http::Method,
    route: &'static str,
    path: &str,
    request_id: &str,
    headers: &HeaderMap,
) -> Span {
    let span = tracing::info_span!(
        target: "moat::request",
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route,
        url.path = path,
        http.response.status_code = Empty,
        moat.request_id = request_id,
        moat.team = Empty,
        gen_ai.operation.name = Empty,
        gen_ai.request.model = Empty,
        gen_ai.provider.name = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        error.type = Empty,
    );
    if headers.contains_key("traceparent") {
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
        let _ = span.set_parent(parent);
    }
    span
}

/// A child span that is marked failed unless [`Step::ok`] is called before it ends, so an early
/// return (`?`) leaves an error on the trace without any code at the return.
pub(crate) struct Step {
    pub(crate) span: Span,
    ok: bool,
}

impl Step {
    pub(crate) fn ok(mut self) {
        self.ok = true;
    }

    pub(crate) fn fail(&self, error_type: &str) {
        self.span.record("error.type", error_type);
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.ok {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}

/// Admission: the key, the body, the policy and the budget hold.
pub(crate) fn admission(parent: &Span) -> Step {
    Step {
        span: tracing::info_span!(
            target: "moat::request",
            parent: parent,
            "admission",
            otel.status_code = Empty,
            error.type = Empty,
        ),
        ok: false,
    }
}

/// One target tried (its own retries are its children, see `moat_upstream`).
pub(crate) fn attempt(parent: &Span, operation: &'static str, provider: &str, model: &str, n: usize) -> Step {
    Step {
        span: tracing::info_span!(
            target: "moat::request",
            parent: parent,
            "upstream",
            otel.name = format!("{operation} {model}"),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = operation,
            gen_ai.provider.name = provider,
            gen_ai.request.model = model,
            moat.attempt = n as u64,
            http.response.status_code = Empty,
            error.type = Empty,
        ),
        ok: false,
    }
}

/// A streamed answer being relayed, from its first byte to its end.
pub(crate) fn stream(parent: &Span, provider: &str, model: &str) -> Step {
    Step {
        span: tracing::info_span!(
            target: "moat::request",
            parent: parent,
            "stream",
            otel.status_code = Empty,
            gen_ai.provider.name = provider,
            gen_ai.response.model = model,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            moat.bytes = Empty,
            moat.cancelled = Empty,
            error.type = Empty,
        ),
        ok: false,
    }
}
