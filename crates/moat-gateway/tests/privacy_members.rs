//! Privacy over the whole request, through the real request path: a secret anywhere in a body (every
//! member of every endpoint and wire, object keys, URLs, text files inside `data:` URLs, split
//! across messages, hidden by invisible characters) never reaches a cloud upstream; content the scan
//! cannot read stays local unless allowed; personal data redacted by default reaches cloud providers
//! as placeholders and local ones as written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

const AWS: &str = "AKIAQ3EGRTPRZ5J4KF6D";
const GITHUB: &str = "ghp_R8mK2vQ9xL4pN7bW3cZ6tY1hJ5sD0fGaE2uO";
/// A Luhn-valid Visa number.
const CARD: &str = "4539 1488 0343 6467";

async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default()).await.unwrap()
}

/// Everything the emulator received, as one string.
fn received(emu: &Emulator) -> String {
    emu.requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

fn b64(s: &str) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

fn chat_with(extra: Value) -> Value {
    let mut body = json!({"model": "cloud/tiny", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// (endpoint, what the case is, body) for every place the issue found a secret slipping through.
fn cases() -> Vec<(&'static str, &'static str, Value)> {
    let user = |content: Value| json!([{"role": "user", "content": content}]);
    vec![
        (
            "/v1/completions",
            "suffix",
            json!({"model": "cloud/tiny", "prompt": "hi", "suffix": format!("key {AWS}")}),
        ),
        (
            "/v1/completions",
            "nested prompt",
            json!({"model": "cloud/tiny", "prompt": [[format!("key {AWS}")]]}),
        ),
        (
            "/v1/embeddings",
            "input list",
            json!({"model": "cloud/tiny", "input": ["fine", format!("key {AWS}")]}),
        ),
        (
            "/v1/chat/completions",
            "tool description",
            chat_with(
                json!({"tools": [{"type": "function", "function": {"name": "f", "description": format!("use {AWS}")}}]}),
            ),
        ),
        (
            "/v1/chat/completions",
            "tool parameter schema",
            chat_with(
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"k": {"type": "string", "default": AWS}}}}}]}),
            ),
        ),
        (
            "/v1/chat/completions",
            "instructions",
            chat_with(json!({"instructions": format!("key {AWS}")})),
        ),
        (
            "/v1/chat/completions",
            "prediction",
            chat_with(json!({"prediction": {"type": "content", "content": format!("key {AWS}")}})),
        ),
        (
            "/v1/chat/completions",
            "metadata",
            chat_with(json!({"metadata": {"deploy": AWS}})),
        ),
        ("/v1/chat/completions", "stop", chat_with(json!({"stop": [AWS]}))),
        (
            "/v1/chat/completions",
            "response_format schema",
            chat_with(
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"description": AWS}}}}),
            ),
        ),
        (
            "/v1/chat/completions",
            "unknown member",
            chat_with(json!({"x_anything": {"deep": [AWS]}})),
        ),
        (
            "/v1/chat/completions",
            "object key",
            chat_with(json!({"metadata": {AWS: "v"}})),
        ),
        (
            "/v1/chat/completions",
            "message name",
            json!({"model": "cloud/tiny", "messages": [{"role": "user", "name": AWS, "content": "hi"}]}),
        ),
        (
            "/v1/chat/completions",
            "unknown message member",
            json!({"model": "cloud/tiny", "messages": [{"role": "user", "content": "hi", "x_note": AWS}]}),
        ),
        (
            "/v1/chat/completions",
            "image URL query string",
            json!({"model": "cloud/tiny", "messages": user(json!([{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": format!("https://img.example.org/a.png?X-Amz-Credential={AWS}")}}]))}),
        ),
        (
            "/v1/chat/completions",
            "text file part",
            json!({"model": "cloud/tiny", "messages": user(json!([{"type": "text", "text": "read"}, {"type": "file", "file": {"filename": "a.txt", "file_data": format!("data:text/plain;base64,{}", b64(&format!("aws_access_key_id = {AWS}\n")))}}]))}),
        ),
        (
            "/v1/chat/completions",
            "split across messages",
            json!({"model": "cloud/tiny", "messages": [{"role": "user", "content": format!("the token is {}", &GITHUB[..20])}, {"role": "user", "content": format!("{} ok?", &GITHUB[20..])}]}),
        ),
        (
            "/v1/chat/completions",
            "split across parts",
            json!({"model": "cloud/tiny", "messages": user(json!([{"type": "text", "text": &AWS[..8]}, {"type": "text", "text": &AWS[8..]}]))}),
        ),
        (
            "/v1/chat/completions",
            "zero-width characters",
            json!({"model": "cloud/tiny", "messages": user(json!(format!("key {}\u{200B}{}\u{00AD}{}", &AWS[..6], &AWS[6..12], &AWS[12..])))}),
        ),
        (
            "/v1/messages",
            "Anthropic tool description",
            json!({"model": "cloud/tiny", "max_tokens": 10, "messages": user(json!("hi")), "tools": [{"name": "t", "description": format!("use {AWS}"), "input_schema": {"type": "object"}}]}),
        ),
        (
            "/v1/messages",
            "Anthropic unknown top-level member",
            json!({"model": "cloud/tiny", "max_tokens": 10, "messages": user(json!("hi")), "x_context": format!("key {AWS}")}),
        ),
    ]
}

async fn send(gw: &TestGateway, path: &str, body: &Value) -> reqwest::Response {
    client().post(gw.url(path)).json(body).send().await.unwrap()
}

#[tokio::test]
async fn a_secret_in_any_member_never_reaches_a_cloud_upstream() {
    for (config, code) in [
        ("[privacy]\nsecrets = \"block\"\n", "policy_blocked"),
        ("", "policy_local_only"),
    ] {
        let cloud = emulator().await;
        let gw = gateway(&format!("{config}{}", provider("cloud", &cloud.base_url()))).await;
        for (path, case, body) in cases() {
            let r = send(&gw, path, &body).await;
            assert_eq!(r.status(), 403, "{case} ({path}) was not stopped");
            let text = r.text().await.unwrap();
            // Anthropic's error shape has no `code`: its type says the same.
            let shaped = text.contains(code) || (path == "/v1/messages" && text.contains("permission_error"));
            assert!(shaped, "{case}: {text}");
            assert!(
                !text.contains(&AWS[4..]) && !text.contains(&GITHUB[4..20]),
                "{case}: the error echoes no secret"
            );
        }
        assert!(
            cloud.requests().is_empty(),
            "nothing reached the cloud: {}",
            received(&cloud)
        );
    }
}

#[tokio::test]
async fn the_same_requests_without_the_secret_go_through() {
    // The cases are real requests: without the secret, each is answered.
    let cloud = emulator().await;
    let gw = gateway(&format!(
        "[privacy]\nsecrets = \"block\"\n{}",
        provider("cloud", &cloud.base_url())
    ))
    .await;
    // (A prompt of arrays of strings is not a valid completion request anyway: the provider refuses
    // it, but only after receiving it, which is why its secret had to be stopped.)
    for (path, case, body) in cases().into_iter().filter(|c| c.1 != "nested prompt") {
        let clean: Value = serde_json::from_str(
            &body
                .to_string()
                .replace(AWS, "not-a-secret")
                .replace(&GITHUB[..20], "hello")
                .replace(&GITHUB[20..], "world")
                .replace(&AWS[..8], "split")
                .replace(&AWS[8..], "text")
                .replace(&AWS[..6], "zero")
                .replace(&AWS[6..12], "width")
                .replace(&AWS[12..], "chars")
                .replace(
                    &b64(&format!("aws_access_key_id = {AWS}\n")),
                    &b64("nothing to see\n"),
                ),
        )
        .unwrap();
        let r = send(&gw, path, &clean).await;
        assert_eq!(r.status(), 200, "{case}: {}", r.text().await.unwrap());
    }
}

#[tokio::test]
async fn content_the_scan_cannot_read_stays_on_local_providers_unless_allowed() {
    let png = format!(
        "data:image/png;base64,{}",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk".repeat(4)
    );
    let body = json!({"model": "cloud/tiny", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": png}},
    ]}]});
    let cloud = emulator().await;
    let home = emulator().await;
    let providers = format!(
        "{}{}local = true\n[[models]]\nname = \"smart\"\nroute = [\"cloud/tiny\", \"home/tiny\"]\n",
        provider("cloud", &cloud.base_url()),
        provider("home", &home.base_url())
    );
    let gw = gateway(&providers).await;
    let r = gw.chat(None, &body).await;
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("policy_uninspectable"))
    );
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("messages[0].content[1].image_url.url") && message.contains("image/png"),
        "{message}"
    );
    assert!(!message.contains("iVBOR"), "the content is never echoed");
    let mut routed = body.clone();
    routed["model"] = json!("smart");
    let r = gw.chat(None, &routed).await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["x-moat-provider"].to_str().unwrap()
        ),
        (200, "home")
    );
    assert!(cloud.requests().is_empty());
    // Allowed by `secrets = "allow"`, or for this content alone.
    for config in [
        "[privacy]\nsecrets = \"allow\"\n",
        "[privacy]\ndetectors = { uninspectable = \"allow\" }\n",
    ] {
        let gw = gateway(&format!("{config}{providers}")).await;
        assert_eq!(gw.chat(None, &body).await.status(), 200, "{config}");
    }
    assert_eq!(cloud.requests().len(), 2);
}

#[tokio::test]
async fn payment_cards_are_redacted_for_cloud_providers_by_default_wherever_they_are() {
    let cloud = emulator().await;
    let home = emulator().await;
    let gw = gateway(&format!(
        "{}{}local = true\n",
        provider("cloud", &cloud.base_url()),
        provider("home", &home.base_url())
    ))
    .await;
    let body = |model: &str| {
        json!({"model": model,
            "messages": [{"role": "user", "content": format!("charge card {CARD} please")}],
            "metadata": {"card": CARD},
            "tools": [{"type": "function", "function": {"name": "pay", "description": format!("default card {CARD}")}}]})
    };
    let r = gw.chat(None, &body("cloud/tiny")).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        format!("You said: charge card {CARD} please")
    );
    let sent: Value = cloud.requests()[0].json().unwrap();
    assert!(!sent.to_string().contains(CARD), "{sent}");
    assert_eq!(sent["metadata"]["card"], "[PAYMENT_CARD_1]");
    assert_eq!(
        sent["tools"][0]["function"]["description"],
        "default card [PAYMENT_CARD_1]"
    );
    // A local provider gets the request as written.
    assert_eq!(gw.chat(None, &body("home/tiny")).await.status(), 200);
    let sent: Value = home.requests()[0].json().unwrap();
    assert_eq!(sent["metadata"]["card"], CARD);
    // Emails stay as they are.
    let r = gw
        .chat(None, &json!({"model": "cloud/tiny", "messages": [{"role": "user", "content": "mail dave@tailspin.io"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert!(received(&cloud).contains("dave@tailspin.io"));
}

#[tokio::test]
async fn deep_bodies_are_inspected_to_the_parser_limit_and_refused_past_it() {
    let cloud = emulator().await;
    let gw = gateway(&format!(
        "[privacy]\nsecrets = \"block\"\n{}",
        provider("cloud", &cloud.base_url())
    ))
    .await;
    // 100 levels of nesting (50 objects, 50 arrays): inside serde_json's limit of 128; the
    // secret at the bottom is found.
    let mut deep = json!(format!("key {AWS}"));
    for _ in 0..50 {
        deep = json!({"x": [deep]});
    }
    let r = gw.chat(None, &chat_with(json!({"x_deep": deep}))).await;
    assert_eq!(r.status(), 403);
    // Past the limit: refused as malformed, before anything is scanned or forwarded.
    let text = format!(
        "{{\"model\": \"cloud/tiny\", \"messages\": [], \"x\": {}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    assert!(cloud.requests().is_empty());
}

#[tokio::test]
async fn placeholders_in_tool_call_arguments_are_restored_whole_and_streamed() {
    let cloud = emulator().await;
    let gw = gateway(&provider("cloud", &cloud.base_url())).await;
    // The emulator calls the tool with the arguments the request scripts: the card in them is
    // redacted on the way out, so the provider answers with the placeholder, which moatd restores.
    let ask = |stream: bool| {
        json!({"model": "cloud/tiny", "stream": stream,
            "messages": [{"role": "user", "content": "pay it"}],
            "emulate": {"tool_call": {"name": "pay", "arguments": {"card": CARD}}, "chunks": 7}})
    };
    let whole: Value = gw.chat(None, &ask(false)).await.json().await.unwrap();
    let args = whole["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(args).unwrap()["card"], CARD);
    let text = gw.chat(None, &ask(true)).await.text().await.unwrap();
    let args: String = data_events(&text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap()["card"],
        CARD,
        "{text}"
    );
    assert!(
        !received(&cloud).contains(CARD),
        "the card never reached the provider"
    );
}
