//! Drives the upstream emulator with a real HTTP client (reqwest over rustls) on loopback.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

mod hostile;
mod plain;
mod streaming;
mod tls;

use std::time::Duration;

use moat_testkit::TestCa;
use serde_json::Value;

/// A client trusting only `ca`, offering h2 and http/1.1 by ALPN, ignoring proxy settings.
pub fn client_for(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(ca.client_config().unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A client for plain-HTTP emulators; reqwest still wants a TLS configuration, so it gets a throwaway one.
pub fn plain_client() -> reqwest::Client {
    client_for(&TestCa::new("unused").unwrap())
}

/// A chat request body with one user message.
pub fn chat(text: &str, extra: Value) -> Value {
    let mut body = serde_json::json!({"model": "tiny", "messages": [{"role": "user", "content": text}]});
    if let (Some(target), Value::Object(extra)) = (body.as_object_mut(), extra) {
        target.extend(extra);
    }
    body
}

/// The `data:` payloads of an SSE text, parsed, without `[DONE]`.
pub fn sse_payloads(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

/// Waits up to five seconds for `check` to hold; counters move on the server's schedule.
pub async fn eventually(check: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}
