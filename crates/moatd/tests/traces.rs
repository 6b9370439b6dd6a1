//! Traces and logs from the real binary: moatd exports its request spans over OTLP (HTTP/protobuf and
//! gRPC) to a receiver the test runs, continuing the caller's `traceparent`, as one tree — the server
//! span, admission, each upstream attempt with its HTTP tries, the stream — with GenAI attributes and
//! never a prompt or an answer. `MOAT_LOG_FORMAT=json` writes one JSON object per line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod otlp;

use std::time::Duration;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use otlp::{Received, Receiver};
use serde_json::{json, Value};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const PROMPT: &str = "PROMPT-CANARY-5521 what is the capital";
const ANSWER: &str = "ANSWER-CANARY-9173 it is Paris";

async fn priced_emulator() -> Emulator {
    let models =
        json!([{"id": "tiny", "object": "model", "pricing": {"prompt": "0.0001", "completion": "0.0001"}}]);
    Emulator::start(EmulatorOptions {
        models: Some(models),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A config whose alias `fast` first tries a provider that refuses connections (two HTTP tries), then
/// the emulator.
fn config(dir: &std::path::Path, emu: &Emulator) -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let path = dir.join("moatd.toml");
    std::fs::write(
        &path,
        format!(
            "[[providers]]\nname = \"dead\"\nkind = \"openai\"\nbase_url = \"{dead_url}\"\nmax_retries = 1\nretry_base_ms = 5\nhealth_check = false\n\
             [[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\nhealth_check = false\n\
             [[models]]\nname = \"fast\"\nroute = [\"dead/tiny\", \"emu/tiny\"]\n",
            emu.base_url()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

async fn eventually_spans(receiver: &Receiver, want: impl Fn(&[Received]) -> bool) -> Vec<Received> {
    for _ in 0..300 {
        let spans = receiver.spans();
        if want(&spans) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.spans()
}

/// Spans by role: the server span, each target tried (`moat.attempt`), each HTTP try (`moat.try`), the
/// stream and admission (their names carry the model or the path).
fn role(s: &Received) -> &'static str {
    if s.span.kind == 2 {
        "request"
    } else if s.attr("moat.attempt").is_some() {
        "upstream"
    } else if s.attr("moat.try").is_some() {
        "http try"
    } else if s.span.name == "stream" {
        "stream"
    } else if s.span.name == "admission" {
        "admission"
    } else {
        "unknown"
    }
}

fn named<'a>(spans: &'a [Received], name: &str) -> Vec<&'a Received> {
    spans.iter().filter(|s| role(s) == name).collect()
}

async fn traced_request_is_one_tree(protocol: &str) {
    let emu = priced_emulator().await;
    let receiver = Receiver::start().await;
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), &emu);
    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["teams", "create", "--config", &cfg, "--name", "research"],
        None,
    );
    assert!(ok, "{err}");
    let (key, err, ok) = moatd_cmd(
        data.path(),
        &[
            "keys", "create", "--config", &cfg, "--name", "tracer", "--team", "research",
        ],
        None,
    );
    assert!(ok, "{err}");
    let endpoint = format!("http://{}", receiver.addr);
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", &cfg, "--listen", "127.0.0.1:0"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let body = json!({"model": "fast", "stream": true, "max_tokens": 20,
        "messages": [{"role": "user", "content": PROMPT}],
        "emulate": {"content": ANSWER}});
    let resp = client()
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(key.trim())
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("ANSWER-CANARY-9173") && text.contains("[DONE]"),
        "{text}"
    );

    let spans = eventually_spans(&receiver, |s| {
        !named(s, "stream").is_empty() && !named(s, "request").is_empty()
    })
    .await;
    let all: Vec<String> = spans
        .iter()
        .map(|s| format!("{} {:?}", s.span.name, s.all_attrs()))
        .collect();
    assert!(spans.iter().all(|s| s.grpc == (protocol == "grpc")), "{all:#?}");
    assert!(spans.iter().all(|s| s.service == "moatd"), "{all:#?}");
    let server = named(&spans, "request");
    assert_eq!(server.len(), 1, "{all:#?}");
    let server = server[0];
    // The caller's trace continues: same trace id, its span as our parent.
    assert_eq!(server.trace_id(), TRACE_ID);
    assert_eq!(server.parent_id(), PARENT_ID);
    assert_eq!(server.span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(server.attr("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(server.attr("gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(server.attr("gen_ai.request.model").as_deref(), Some("fast"));
    assert_eq!(server.attr("gen_ai.provider.name").as_deref(), Some("emu"));
    assert_eq!(server.attr("gen_ai.response.model").as_deref(), Some("tiny"));
    assert_eq!(server.attr("moat.team").as_deref(), Some("research"));
    let output: u64 = server
        .attr("gen_ai.usage.output_tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(output > 0, "{all:#?}");
    assert!(server.attr("gen_ai.usage.input_tokens").is_some(), "{all:#?}");
    assert!(server.attr("moat.request_id").unwrap().starts_with("moat-"));

    let children = |parent: &Received| -> Vec<&Received> {
        spans
            .iter()
            .filter(|s| s.parent_id() == parent.span_id() && s.trace_id() == TRACE_ID)
            .collect()
    };
    assert_eq!(server.span.name, "POST /v1/chat/completions");
    let mut names: Vec<&str> = children(server).iter().map(|s| role(s)).collect();
    names.sort_unstable();
    assert_eq!(names, ["admission", "stream", "upstream", "upstream"], "{all:#?}");
    let upstream: Vec<&Received> = children(server)
        .into_iter()
        .filter(|s| role(s) == "upstream")
        .collect();
    let dead = upstream
        .iter()
        .find(|s| s.attr("gen_ai.provider.name").as_deref() == Some("dead"))
        .unwrap();
    let emu_attempt = upstream
        .iter()
        .find(|s| s.attr("gen_ai.provider.name").as_deref() == Some("emu"))
        .unwrap();
    assert_eq!(dead.span.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(dead.attr("error.type").as_deref(), Some("connect"));
    assert_eq!(
        dead.span.status.as_ref().map(|s| s.code),
        Some(2),
        "STATUS_CODE_ERROR"
    );
    assert_eq!(emu_attempt.attr("gen_ai.request.model").as_deref(), Some("tiny"));
    assert_eq!(
        emu_attempt.attr("http.response.status_code").as_deref(),
        Some("200")
    );
    // Each HTTP try is a child of its attempt: the dead provider was tried twice (one retry).
    assert_eq!(dead.span.name, "chat tiny");
    assert_eq!(
        children(dead).iter().filter(|s| role(s) == "http try").count(),
        2,
        "{all:#?}"
    );
    assert_eq!(
        children(emu_attempt)
            .iter()
            .filter(|s| role(s) == "http try")
            .count(),
        1,
        "{all:#?}"
    );
    let stream = named(&spans, "stream")[0];
    assert_eq!(
        stream
            .attr("gen_ai.usage.output_tokens")
            .map(|v| v.parse::<u64>().unwrap()),
        Some(output)
    );
    assert_eq!(stream.attr("moat.cancelled").as_deref(), Some("false"));

    // Names, numbers and ids only: neither the prompt nor the answer is anywhere in a span.
    for s in &spans {
        for a in s.all_attrs() {
            assert!(!a.contains("CANARY"), "span {} carries text: {a}", s.span.name);
        }
        assert!(!s.span.name.contains("CANARY"));
        for e in &s.span.events {
            assert!(
                !format!("{e:?}").contains("CANARY"),
                "span event carries text: {e:?}"
            );
        }
    }
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_an_otlp_http_receiver_as_one_tree_without_prompts() {
    traced_request_is_one_tree("http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_an_otlp_grpc_receiver_as_one_tree_without_prompts() {
    traced_request_is_one_tree("grpc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_format_writes_one_object_per_line() {
    let emu = priced_emulator().await;
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), &emu);
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", &cfg, "--listen", "127.0.0.1:0"],
        &[("MOAT_LOG_FORMAT", "json"), ("MOAT_LOG", "debug")],
    );
    let resp = client()
        .post(daemon.url("/v1/chat/completions"))
        .json(&json!({"model": "fast", "messages": [{"role": "user", "content": PROMPT}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let log = daemon.stop();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.is_object() && v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        assert!(!line.contains("CANARY"), "prompt text in a log line: {line}");
    }
    assert!(lines.iter().any(|l| l.contains("listening on http://")), "{log}");
    assert!(lines.iter().any(|l| l.contains("falling back")), "{log}");
}
