//! Logging and trace export for `moatd serve`: log lines on stderr (text, or one JSON object per line
//! with `MOAT_LOG_FORMAT=json`) filtered by `MOAT_LOG`, and, when an OTLP endpoint is configured by the
//! standard `OTEL_EXPORTER_OTLP_*` variables, the gateway's request spans exported over OTLP
//! (HTTP/protobuf by default, gRPC with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`).

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the request spans (`moat_gateway::observe::spans`): exported, kept out of log lines.
const SPAN_TARGET: &str = "moat::request";

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes the spans still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                eprintln!("moatd: flushing traces: {e}");
            }
        }
    }
}

/// Which wire the OTLP exporter speaks, from `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or
/// `OTEL_EXPORTER_OTLP_PROTOCOL`; `None` when no endpoint is set (no export).
fn otlp_protocol(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<Protocol>> {
    let endpoint = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|v| env(v).is_some_and(|s| !s.trim().is_empty()));
    if !endpoint {
        return Ok(None);
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match protocol.as_deref().map(str::trim) {
        None | Some("" | "http/protobuf") => Ok(Some(Protocol::HttpBinary)),
        Some("grpc") => Ok(Some(Protocol::Grpc)),
        Some(other) => anyhow::bail!("OTEL_EXPORTER_OTLP_PROTOCOL={other:?}: use http/protobuf or grpc"),
    }
}

/// Sets up logging and, when configured, trace export. Call inside the Tokio runtime (the gRPC
/// exporter needs it).
pub fn init() -> anyhow::Result<Telemetry> {
    let env = |name: &str| std::env::var(name).ok();
    let json = match env("MOAT_LOG_FORMAT").as_deref().map(str::trim) {
        None | Some("" | "text") => false,
        Some("json") => true,
        Some(other) => anyhow::bail!("MOAT_LOG_FORMAT={other:?}: use text or json"),
    };
    let filter = EnvFilter::try_from_env("MOAT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Request spans go to the exporter only: in log lines their attributes would repeat on every line.
    let no_request_spans = filter_fn(|meta| !(meta.is_span() && meta.target() == SPAN_TARGET));
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .with_filter(no_request_spans)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_filter(filter)
            .with_filter(no_request_spans)
            .boxed()
    };
    let provider = match otlp_protocol(&env)? {
        None => None,
        Some(protocol) => {
            let builder = opentelemetry_otlp::SpanExporter::builder();
            let exporter = match protocol {
                Protocol::Grpc => builder.with_tonic().with_protocol(protocol).build(),
                _ => builder.with_http().with_protocol(protocol).build(),
            }
            .context("setting up the OTLP trace exporter")?;
            let service = env("OTEL_SERVICE_NAME").unwrap_or_else(|| "moatd".to_string());
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name(service).build())
                    .build(),
            )
        }
    };
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("moatd"))
            // Source locations, threads, timing and targets say nothing about the request.
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_filter(Targets::new().with_target(SPAN_TARGET, Level::INFO))
    });
    // Without an exporter there is no second layer at all: an absent (`None`) layer counts as one
    // that wants every span, so every request's spans would be built, entered and closed for nobody.
    match otel {
        Some(otel) => tracing_subscriber::registry().with(fmt).with(otel).try_init()?,
        None => tracing_subscriber::registry().with(fmt).try_init()?,
    }
    Ok(Telemetry { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn protocol_follows_the_standard_variables() {
        assert!(otlp_protocol(&env_of(&[])).unwrap().is_none());
        let http = otlp_protocol(&env_of(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318",
        )]));
        assert!(matches!(http.unwrap(), Some(Protocol::HttpBinary)));
        let grpc = otlp_protocol(&env_of(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]));
        assert!(matches!(grpc.unwrap(), Some(Protocol::Grpc)));
        let bad = otlp_protocol(&env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]));
        assert!(bad.is_err());
    }
}
