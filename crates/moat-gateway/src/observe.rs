//! What operators see of the request path: Prometheus metrics named after the OpenTelemetry GenAI
//! semantic conventions plus moat's own, request ids, and the spans OpenTelemetry exports.
//!
//! One tower layer ([`layer::observe`]) wraps every route: it gives each request its id and server
//! span, counts it, and measures it until the last byte of its body has gone (so a stream is timed to
//! its end). Handlers on the forwarding path fill in what only they know — model, provider, team,
//! tokens, cost — through the request's [`Observation`], which the audit trail feeds; the layer
//! records it all once, when the response ends.
//!
//! Labels are bounded: a team, a configured provider, a model name from a capped set, never a key,
//! a user or anything else a client can vary without limit.

mod handles;
pub(crate) mod layer;
pub(crate) mod metrics;
mod observation;
pub(crate) mod spans;

pub(crate) use observation::Observation;

/// The GenAI operation name for a forwarding path (`gen_ai.operation.name`).
pub(crate) fn operation_of(path: &str) -> &'static str {
    match path {
        "/embeddings" => "embeddings",
        "/completions" => "text_completion",
        // The Responses API is a chat in the GenAI conventions' terms.
        _ => "chat",
    }
}
