//! The conformance cases: what every provider kind must do, each written once over a [`Kind`]. The
//! client always speaks OpenAI's chat to moatd; what the emulator receives is the kind's own wire.

use std::sync::Arc;
use std::time::Duration;

use moat_gateway::admin::{self, LimitSpec, NewKey};
use moat_store::{GroupBy, SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

use super::common::*;
use super::{Kind, PROVIDER_KEY};

/// An emulator that knows one model and checks the provider key (on the wires that have keys).
async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions {
        api_key: Some(PROVIDER_KEY.into()),
        models: Some(
            json!([{"id": "tiny", "object": "model", "created": 1_700_000_000, "owned_by": "emulator"}]),
        ),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A gateway with one provider `p` of `kind` aimed at `emu`, with `extra` provider keys. Health
/// checks stay off (their probes would add to the emulator's request log) unless `extra` turns them
/// on; prices are set so usage turns into cost.
async fn gateway_for(kind: &Kind, emu: &Emulator, extra: &str, store: Arc<dyn Store>) -> TestGateway {
    let health = if extra.contains("health_check") {
        ""
    } else {
        "health_check = false\n"
    };
    let toml = format!(
        "[[providers]]\nname = \"p\"\n{}retry_base_ms = 10\n{health}{extra}\n[providers.prices]\n\"*\" = [1.0, 2.0]\n",
        (kind.provider)(emu)
    );
    gateway_with_store(&toml, store).await
}

async fn plain_gateway(kind: &Kind, emu: &Emulator, extra: &str) -> TestGateway {
    gateway_for(kind, emu, extra, Arc::new(SqliteStore::open_memory().unwrap())).await
}

fn ask() -> Value {
    json!({"model": "p/tiny", "max_tokens": 64, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"}
    ]})
}

fn stream(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

/// `body` carrying the `emulate` directive, which is also set as the emulator's default: wires
/// whose translation drops unknown members (Gemini, Bedrock) cannot carry it to the emulator.
fn with_emulate(emu: &Emulator, mut body: Value, emulate: Value) -> Value {
    emu.set_directive(Some(emulate.clone()));
    body["emulate"] = emulate;
    body
}

async fn text_of(gw: &TestGateway, body: &Value) -> String {
    let resp = gw.chat(None, body).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The data events of a stream that are JSON (everything but `[DONE]`).
fn chunks(text: &str) -> Vec<Value> {
    data_events(text)
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("not JSON ({e}): {d}")))
        .collect()
}

fn has_usage(v: &Value) -> bool {
    v["usage"]["prompt_tokens"].as_u64().is_some_and(|n| n > 0)
        && v["usage"]["completion_tokens"].as_u64().is_some_and(|n| n > 0)
}

pub async fn plain(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    let resp = gw.chat(None, &ask()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "p");
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    assert!(body["created"].as_u64().is_some_and(|t| t > 0), "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "You said: hello there");
    assert_eq!(choice["finish_reason"], "stop");
    assert!(has_usage(&body), "{body}");
    let sent = emu.requests().last().unwrap().clone();
    assert_eq!(sent.path, kind.chat_path);
    if kind.model_in_path {
        assert!(
            sent.path.contains("/tiny"),
            "the provider's own model name: {}",
            sent.path
        );
    } else {
        assert_eq!(
            sent.json().unwrap()["model"],
            "tiny",
            "the provider's own model name"
        );
    }
}

pub async fn streamed(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    let resp = gw.chat(None, &stream(ask())).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = resp.text().await.unwrap();
    assert_eq!(data_events(&text).last().unwrap(), "[DONE]", "{text}");
    let chunks = chunks(&text);
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert!(c.get("error").is_none(), "{c}");
    }
    assert_eq!(streamed_text(&text), "You said: hello there");
    assert!(
        chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"),
        "{text}"
    );
    assert_eq!(emu.requests().last().unwrap().path, kind.stream_path);
}

/// One answer's tool call: (name, arguments as JSON).
fn whole_call(body: &Value) -> (String, Value) {
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert!(call["id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    assert_eq!(call["type"], "function", "{body}");
    let args = call["function"]["arguments"].as_str().unwrap();
    (
        call["function"]["name"].as_str().unwrap().to_owned(),
        serde_json::from_str(args).unwrap(),
    )
}

/// A stream's tool call, put together from its deltas as a client does.
fn streamed_call(chunks: &[Value]) -> (String, Value) {
    let (mut name, mut args) = (String::new(), String::new());
    for c in chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], 0, "{c}");
            name.push_str(call["function"]["name"].as_str().unwrap_or(""));
            args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    (name, serde_json::from_str(&args).unwrap_or(Value::Null))
}

pub async fn tools(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    let mut body = ask();
    body["tools"] = json!([{"type": "function", "function": {"name": "weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let call = json!({"tool_call": {"name": "weather", "arguments": {"city": "Oslo"}}});
    let expected = ("weather".to_owned(), json!({"city": "Oslo"}));

    let resp = gw
        .chat(None, &with_emulate(&emu, body.clone(), call.clone()))
        .await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(whole_call(&answer), expected);
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");

    let text = text_of(&gw, &with_emulate(&emu, stream(body.clone()), call)).await;
    let chunks = chunks(&text);
    assert_eq!(streamed_call(&chunks), expected, "{text}");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"),
        "{text}"
    );

    // The next turn carries the call and its result back; the provider takes it.
    let id = answer["choices"][0]["message"]["tool_calls"][0]["id"].clone();
    body["messages"].as_array_mut().unwrap().extend([
        answer["choices"][0]["message"].clone(),
        json!({"role": "tool", "tool_call_id": id, "content": "rain"}),
    ]);
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

fn metered_key(store: &dyn Store) -> String {
    let new = NewKey {
        name: "k".into(),
        limits: LimitSpec {
            budget: Some("5/day".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    admin::create_key(store, &secret(), &new, moat_gateway::ledger::now())
        .unwrap()
        .key
}

fn tokens(v: &Value) -> (u64, u64) {
    (
        v["usage"]["prompt_tokens"].as_u64().unwrap(),
        v["usage"]["completion_tokens"].as_u64().unwrap(),
    )
}

pub async fn usage(kind: &Kind) {
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let key = metered_key(store.as_ref());
    let gw = gateway_for(kind, &emu, "", store.clone()).await;

    let whole: Value = gw.chat(Some(&key), &ask()).await.json().await.unwrap();
    let whole = tokens(&whole);
    // The client did not ask for usage, but a metered stream needs it: moatd asks the provider, and
    // the client's stream stays as it asked for it, without usage.
    let resp = gw.chat(Some(&key), &stream(ask())).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(chunks(&text).iter().all(|c| c.get("usage").is_none()), "{text}");
    // A client that asks for usage gets it once, in the last chunk.
    let mut asked = stream(ask());
    asked["stream_options"] = json!({"include_usage": true});
    let resp = gw.chat(Some(&key), &asked).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let chunks = chunks(&text);
    assert_eq!(chunks.iter().filter(|c| has_usage(c)).count(), 1, "{text}");
    let asked = tokens(chunks.last().unwrap());
    // The same request streamed without asking reported the same usage to moatd.
    let streamed = asked;

    let want = (whole.0 + streamed.0 + asked.0, whole.1 + streamed.1 + asked.1);
    let mut got = (0, 0);
    let settled = eventually(Duration::from_secs(5), || {
        store.flush().unwrap();
        let lines = store.usage_report(GroupBy::Key, 0).unwrap();
        got = lines
            .iter()
            .fold((0, 0), |(p, c), l| (p + l.prompt_tokens, c + l.completion_tokens));
        got == want
    })
    .await;
    assert!(settled, "settled {got:?}, reported {want:?}");
    let spent: u64 = store
        .usage_report(GroupBy::Key, 0)
        .unwrap()
        .iter()
        .map(|l| l.cost_nanos)
        .sum();
    assert!(spent > 0, "priced usage costs something");
}

pub async fn errors(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    for (status, message) in [(400, "context too long for tiny"), (404, "no such model")] {
        let before = emu.requests().len();
        let body = with_emulate(&emu, ask(), json!({"status": status, "message": message}));
        let (got, err) = error_of(gw.chat(None, &body).await).await;
        assert_eq!(got, status, "{err}");
        assert_eq!(err["error"]["message"], message, "{err}");
        assert_eq!(emu.requests().len(), before + 1, "a {status} is not retried");
    }
    let (got, err) = error_of(
        gw.chat(
            None,
            &with_emulate(&emu, ask(), json!({"status": 500, "message": "boom"})),
        )
        .await,
    )
    .await;
    assert!(got >= 500, "{got}: {err}");
    // A transient failure is retried on the same provider.
    let before = emu.requests().len();
    let body = with_emulate(&emu, ask(), json!({"status": 503, "times": 1}));
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(emu.requests().len(), before + 2);
}

pub async fn cut_streams(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    let long = |emulate: Value| {
        let mut body = stream(ask());
        body["messages"][1]["content"] = json!("a b c d e f");
        with_emulate(&emu, body, emulate)
    };
    // The provider's own in-band error passes on as an error event after what came before it.
    let text = text_of(&gw, &long(json!({"error_after_chunks": 2}))).await;
    assert!(streamed_text(&text).starts_with("You"), "{text}");
    assert!(
        chunks(&text).iter().any(|c| c["error"]["message"].is_string()),
        "{text}"
    );
    assert_ne!(data_events(&text).last().unwrap(), "[DONE]", "{text}");
    // A broken connection: moatd ends the stream with its own error event.
    let text = text_of(&gw, &long(json!({"reset_after_chunks": 2}))).await;
    assert!(streamed_text(&text).starts_with("You"), "{text}");
    let last = chunks(&text).pop().unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_error", "{text}");
    assert_ne!(data_events(&text).last().unwrap(), "[DONE]", "{text}");
}

pub async fn timeouts(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(
        kind,
        &emu,
        "first_byte_timeout_ms = 300\nidle_timeout_ms = 400\nmax_retries = 0\n",
    )
    .await;
    let late = with_emulate(&emu, ask(), json!({"first_byte_delay_ms": 5000}));
    let (status, err) = error_of(gw.chat(None, &late).await).await;
    assert_eq!(status, 504, "{err}");
    assert_eq!(err["error"]["code"], "upstream_timeout");
    let hung = with_emulate(&emu, ask(), json!({"hang": true}));
    let (status, _) = error_of(gw.chat(None, &hung).await).await;
    assert_eq!(status, 504);
    // Silence in the middle of a stream.
    let mut body = stream(ask());
    body["messages"][1]["content"] = json!("a b c d e f");
    let body = with_emulate(&emu, body, json!({"pause_after_chunks": 1, "pause_ms": 3000}));
    let text = text_of(&gw, &body).await;
    assert!(streamed_text(&text).starts_with("You"), "{text}");
    let last = chunks(&text).pop().unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{text}");
}

pub async fn client_leaves(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    let mut body = stream(ask());
    body["messages"][1]["content"] = json!("a b c d e f g h i j k l m n o p");
    let body = with_emulate(&emu, body, json!({"chunk_delay_ms": 200}));
    let mut resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(resp);
    assert!(
        eventually(Duration::from_secs(10), || emu.cancelled_streams() == 1).await,
        "the upstream stream was not cancelled"
    );
}

pub async fn models(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    let list: Value = client()
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    if !kind.lists_models {
        // No model list on this wire: nothing is fetched, nothing is listed, nothing fails.
        assert!(ids.is_empty(), "{list}");
        assert!(emu.requests().is_empty());
        return;
    }
    assert_eq!(ids, ["p/tiny"], "{list}");
    assert_eq!(list["data"][0]["object"], "model");
}

pub async fn health(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "health_check = true\nhealth_check_interval_ms = 50\n").await;
    let probed = eventually(Duration::from_secs(10), || {
        emu.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == kind.health_path)
    })
    .await;
    assert!(probed, "no probe at {}", kind.health_path);
    let mut report: Value;
    let healthy = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            report = client()
                .get(gw.url("/ready"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let p = &report["providers"][0];
            if p["last_check"].is_string() && p["last_error"].is_null() {
                break true;
            }
            if tokio::time::Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    assert!(healthy, "the probe did not pass: {report}");
    assert_eq!(report["providers"][0]["state"], "healthy", "{report}");
}

pub async fn embeddings(kind: &Kind) {
    let emu = emulator().await;
    let gw = plain_gateway(kind, &emu, "").await;
    let before = emu.requests().len();
    let resp = client()
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "p/tiny", "input": "x"}))
        .send()
        .await
        .unwrap();
    if kind.embeddings {
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert!(body["data"][0]["embedding"].is_array(), "{body}");
        return;
    }
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chat completions only"),
        "{err}"
    );
    assert_eq!(emu.requests().len(), before, "nothing was sent");
}
